"""The reply started at a pause, before the turn is sure: held from the client, thrown away if the user goes on."""

from __future__ import annotations

from tests.fast.fake_stages import FakeStages
from tests.fast.realtime_client import Realtime, reply_of, until
from tests.fast.tone_words import silence_pcm, words_pcm

COMPLETED = "conversation.item.input_audio_transcription.completed"


async def long_turns(client: Realtime) -> None:
    """The turn ends after 1.2 s of silence: a pause of a few hundred ms leaves it open (and starts speculation)."""
    turn_detection = {"type": "server_vad", "silence_duration_ms": 1200}
    await client.send({"type": "session.update", "session": {"audio": {"input": {"turn_detection": turn_detection}}}})
    await client.wait_for("session.updated")


def response_ids(client: Realtime, after: int) -> set[str]:
    """Every response id the client was told anything about."""
    ids = set()
    for event in client.events[after:]:
        if "response_id" in event:
            ids.add(event["response_id"])
        if isinstance(event.get("response"), dict):
            ids.add(event["response"]["id"])
    return ids


async def test_no_audio_of_a_discarded_speculative_reply_ever_reaches_the_client(
    client: Realtime, fakes: FakeStages
) -> None:
    await long_turns(client)
    begin = client.mark()
    await client.say(silence_pcm(100) + words_pcm("alpha bravo") + silence_pcm(400))
    # At the pause the transcript so far is decoded and a reply to it starts, audio and all…
    await until(lambda: any(p[-1].content == "alpha bravo" for p in fakes.llm.prompts), "a reply to the pause")
    await until(lambda: fakes.tts.frames_sent >= 5, "the held reply's audio made")
    held_frames = fakes.tts.frames_sent
    # …but the turn is not over, so the client hears nothing of it.
    assert not response_ids(client, begin), client.summary(begin)

    await client.say(words_pcm("charlie delta"))  # the user goes on
    _, text = await client.wait_for(COMPLETED, begin)
    assert text["transcript"] == "alpha bravo charlie delta"
    _, done = await client.wait_for("response.done", begin)
    assert done["response"]["status"] == "completed", client.summary(begin)
    assert reply_of(done) == "You said alpha bravo charlie delta. That is all."
    assert fakes.llm.received("llm.cancel") >= 1  # the held reply was stopped at the stages
    # The client was told of exactly one reply, the real one: no event, no audio of the discarded one.
    assert response_ids(client, begin) == {done["response"]["id"]}
    assert held_frames >= 5


async def test_a_held_reply_is_released_when_the_pause_ends_the_turn(client: Realtime, fakes: FakeStages) -> None:
    begin = client.mark()  # default turn detection: the fake VAD ends a turn after 250 ms, the pause comes at 150 ms
    await client.say(silence_pcm(100) + words_pcm("alpha bravo"))
    _, text = await client.wait_for(COMPLETED, begin)
    assert text["transcript"] == "alpha bravo"
    _, done = await client.wait_for("response.done", begin)
    assert done["response"]["status"] == "completed", client.summary(begin)
    assert reply_of(done) == "You said alpha bravo. That is all."
    assert len([p for p in fakes.llm.prompts if p[-1].content == "alpha bravo"]) == 1  # started once, at the pause
