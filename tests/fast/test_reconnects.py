"""A stage link lost and re-established mid-conversation: the next turn must still be heard and answered right.

Regressions for three defects of commit 3bd3778:
(a) the user speaks while the reply's LLM or TTS link is being reconnected: the turn machine's transition check
    failed in a task (``assert to in ALLOWED[...]``), which took the STT link down with it (then (b));
(b) only the STT link is re-established: its new stream's clock restarts at 0 while the VAD's goes on, so the next
    commit names a range the new STT stream never had;
(c) only the VAD link is re-established: now the VAD's clock restarts, and the commit names the wrong span.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable, Iterator
from typing import TYPE_CHECKING

import pytest

from tests.fast.fake_stages import FakeStage, FakeStages
from tests.fast.realtime_client import Realtime, reply_of, until
from tests.fast.tone_words import silence_pcm, words_pcm

if TYPE_CHECKING:
    from tests.fast.conftest import Gateway

COMPLETED = "conversation.item.input_audio_transcription.completed"


async def answered_turn(client: Realtime, words: str) -> tuple[str, str]:
    """Says ``words`` after a short silence; the transcript and the reply of that turn (whatever they are)."""
    begin = client.mark()
    await client.say(silence_pcm(300) + words_pcm(words))
    i_text, text = await client.wait_for(COMPLETED, begin)
    _, done = await client.wait_for("response.done", i_text)
    return text["transcript"], reply_of(done) if done["response"]["status"] == "completed" else done["response"][
        "status"
    ]


async def reopened(fake: FakeStage, start: str) -> None:
    """Drops the gateway's link to ``fake`` and waits until the gateway has opened a new stream there."""
    before = len(fake.connections)
    assert await fake.drop_connections() >= 1
    await until(
        lambda: any(start in c.messages for c in fake.connections[before:]), f"a new {fake.stage} stream ({start})"
    )


def tracebacks(gateway: Gateway, offset: int) -> str:
    """The gateway's logged tracebacks since ``offset``: each with the two lines before it, up to its exception."""
    lines, out, i = gateway.log_since(offset).splitlines(), [], 0
    while i < len(lines):
        if lines[i].startswith("Traceback"):
            end = next((j for j in range(i + 1, len(lines)) if lines[j][:1] not in (" ", "\t", "")), len(lines) - 1)
            out += lines[max(0, i - 2) : end + 1]
            i = end
        i += 1
    return "\n".join(out)[-4000:]


@contextlib.contextmanager
def gateway_log_on_failure(gateway: Gateway) -> Iterator[None]:
    """A failing test shows what the gateway logged as broken meanwhile; a passing one must have logged nothing."""
    offset = gateway.log_size()
    try:
        yield
    except AssertionError as failure:
        logged = tracebacks(gateway, offset)
        raise AssertionError(f"{failure}\n--- gateway log ---\n{logged}" if logged else str(failure)) from None
    logged = tracebacks(gateway, offset)
    assert not logged, f"the gateway logged a traceback:\n{logged}"


@pytest.mark.parametrize("final", ["ready_at_turn_end", "after_turn_end"])
@pytest.mark.parametrize("stage", ["llm", "tts"])
async def test_speech_while_the_reply_link_reconnects_is_answered(
    stage: str, final: str, connect: Callable[..., Awaitable[Realtime]], fakes: FakeStages, gateway: Gateway
) -> None:
    """The turn's reply needs a link that is being re-established when the user speaks again.

    ``final``: the transcript is in when the VAD ends the turn (the speculative decode at the pause), or comes only
    after it; the reply starts from the VAD's or the STT's event. On 3bd3778 the second is the assertion in a task.
    """
    client = await connect()
    with gateway_log_on_failure(gateway):
        assert await answered_turn(client, "alpha bravo") == ("alpha bravo", "You said alpha bravo. That is all.")
        link = getattr(fakes, stage)
        link.hold_accepts()  # the restarted stage is slow to take connections: the reconnect stays pending
        assert await link.drop_connections() >= 1

        begin = client.mark()
        if final == "after_turn_end":
            fakes.stt.hold_finals()
        await client.say(silence_pcm(300) + words_pcm("charlie delta"))
        if final == "after_turn_end":
            await client.wait_for("input_audio_buffer.committed", begin)
            fakes.stt.release_finals()
        _, text = await client.wait_for(COMPLETED, begin)
        assert text["transcript"] == "charlie delta"
        await until(lambda: link.pending_accepts >= 1, f"the gateway reconnecting to the {stage} service for the reply")

        # While that reconnect is pending the user speaks again, and the gateway hears it at once: it never waits on
        # a connect (one deaf while it connects would notice only when its connect gives up, after 3 s).
        again = client.mark()
        saying = asyncio.create_task(client.say(silence_pcm(100) + words_pcm("echo foxtrot")))
        try:
            await client.wait_for("input_audio_buffer.speech_started", again, timeout=1.5)
        finally:
            link.release_accepts()
            await saying

        answer = lambda e: e["type"] == "response.done" and "echo foxtrot" in reply_of(e)  # noqa: E731
        _, done = await client.wait_for(answer, again, what="answer to 'echo foxtrot'")
        assert done["response"]["status"] == "completed", client.summary(begin)
        assert reply_of(done) == "You said echo foxtrot. That is all."


async def test_the_turn_after_an_stt_reconnect_is_transcribed(
    client: Realtime, fakes: FakeStages, gateway: Gateway
) -> None:
    with gateway_log_on_failure(gateway):
        first = await answered_turn(client, "alpha bravo charlie")
        assert first == ("alpha bravo charlie", "You said alpha bravo charlie. That is all.")
        await reopened(fakes.stt, "stt.start")  # only the STT stream starts again, at stream time 0
        begin = client.mark()
        heard = await answered_turn(client, "delta echo foxtrot")
        assert heard == ("delta echo foxtrot", "You said delta echo foxtrot. That is all."), client.summary(begin)


async def test_the_turn_after_a_vad_reconnect_is_transcribed_from_its_own_audio(
    client: Realtime, fakes: FakeStages, gateway: Gateway
) -> None:
    with gateway_log_on_failure(gateway):
        first = await answered_turn(client, "alpha bravo charlie")
        assert first == ("alpha bravo charlie", "You said alpha bravo charlie. That is all.")
        await reopened(fakes.vad, "vad.start")  # only the VAD stream starts again, at stream time 0
        begin = client.mark()
        heard = await answered_turn(client, "delta echo foxtrot")
        # Exactly the words of this turn: not the earlier turn's, which the STT holds at the span the VAD now names.
        assert heard == ("delta echo foxtrot", "You said delta echo foxtrot. That is all."), client.summary(begin)
