"""Bad input and unreachable stages give ``error`` events, and the conversation goes on."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable

import pytest

from tests.fast.fake_stages import FakeStages
from tests.fast.realtime_client import Realtime, reply_of
from tests.fast.tone_words import silence_pcm, words_pcm


def error_with(code: str) -> Callable[[dict], bool]:
    return lambda e: e["type"] == "error" and e["error"]["code"] == code


async def test_bad_client_events_get_errors_and_the_session_goes_on(client: Realtime) -> None:
    begin = client.mark()
    bad: dict[str, str | bytes] = {
        "invalid_json": "{not json",
        "unknown_event": json.dumps({"type": "no.such.event"}),
        "invalid_audio": json.dumps(
            {"type": "input_audio_buffer.append", "audio": "!!! not base64 !!!", "event_id": "e1"}
        ),
        "unexpected_binary": b"\x00\x01",
    }
    for code, frame in bad.items():
        mark = client.mark()
        await client.send(frame)
        _, error = await client.wait_for(error_with(code), mark)
        assert error["error"]["message"]
    _, error = await client.wait_for(error_with("invalid_audio"), begin)
    assert error["error"]["event_id"] == "e1"

    turn = client.mark()
    await client.say(silence_pcm(100) + words_pcm("alpha bravo"))
    _, done = await client.wait_for("response.done", turn)
    assert done["response"]["status"] == "completed"
    assert reply_of(done) == "You said alpha bravo. That is all."


@pytest.mark.parametrize("stage", ["llm", "tts"])
async def test_a_stage_refusing_connections_gives_an_error_not_a_hang(
    stage: str, connect: Callable[..., Awaitable[Realtime]], fakes: FakeStages
) -> None:
    fake = getattr(fakes, stage)
    fake.refuse_connections(True)
    client = await connect()
    _, error = await client.wait_for(error_with("upstream_unavailable"))
    assert f"{stage} service" in error["error"]["message"]

    begin = client.mark()
    await client.say(silence_pcm(100) + words_pcm("alpha bravo"))
    i_text, text = await client.wait_for("conversation.item.input_audio_transcription.completed", begin)
    assert text["transcript"] == "alpha bravo"
    _, error = await client.wait_for(
        lambda e: e["type"] == "error" and f"{stage} service" in e["error"]["message"], i_text
    )
    assert not [e for _, e in client.find("response.done", begin) if e["response"]["status"] == "completed"]

    fake.refuse_connections(False)  # the stage is back: the next turn reaches it
    again = client.mark()
    await client.say(silence_pcm(100) + words_pcm("charlie delta"))
    i_text, _ = await client.wait_for("conversation.item.input_audio_transcription.completed", again)
    _, done = await client.wait_for("response.done", i_text)
    assert done["response"]["status"] == "completed", client.summary(begin)
    assert reply_of(done) == "You said charlie delta. That is all."
