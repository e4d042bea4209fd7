"""Languages: the reply answers in the language the user spoke (the LLM told so, each TTS piece named), a session can
pin the STT language, a model that lacks it says so; client events we don't take are named in the error."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

from services.common.messages import (
    LlmDelta,
    LlmDone,
    LlmGenerate,
    SttCommit,
    SttFinal,
    TtsSpeak,
    VadSpeechStarted,
    VadSpeechStopped,
)
from services.gateway.language import language_note, reply_language
from tests.fast.fake_stages import FakeStages
from tests.fast.realtime_client import Realtime, reply_of, until
from tests.fast.test_turn_machine import Driver, sent
from tests.fast.tone_words import silence_pcm, words_pcm


def turn_in(d: Driver, text: str, language: str | None, at_ms: int = 500) -> LlmGenerate:
    d.audio(at_ms + 2500)
    d.stage("vad", VadSpeechStarted(start_ms=at_ms, voice_start_ms=at_ms + 100))
    out = d.stage("vad", VadSpeechStopped(end_ms=at_ms + 1800, voice_end_ms=at_ms + 1500, detected_ms=at_ms + 2000))
    (commit,) = sent(out, SttCommit)
    final = SttFinal(request_id=commit.request_id, text=text, language=language, audio_ms=1800, decode_ms=90)
    (generate,) = sent(d.stage("stt", final), LlmGenerate)
    return generate


def answer(d: Driver, generate: LlmGenerate, text: str) -> list[TtsSpeak]:
    out = d.stage("llm", LlmDelta(request_id=generate.request_id, text=text))
    out += d.stage("llm", LlmDone(request_id=generate.request_id, finish_reason="stop"))
    return sent(out, TtsSpeak)


def test_the_note_and_the_reply_language():
    assert language_note("en") is None and language_note(None) is None and language_note("en-gb") is None
    assert language_note("fr") == "The user speaks French. Answer in French only."
    assert "'xh'" in (language_note("xh") or "")
    assert reply_language("en", "es") == "es"  # what the user spoke wins over the hint
    assert reply_language("de", None) == "de" and reply_language(None, None) is None


def test_a_french_turn_is_answered_in_french_and_an_english_one_in_english():
    d = Driver()
    generate = turn_in(d, "Quelle est la capitale de la France ?", "fr")
    note = generate.messages[-1]
    assert (note.role, note.content) == ("system", "The user speaks French. Answer in French only.")
    assert generate.messages[-2].content == "Quelle est la capitale de la France ?"
    pieces = answer(d, generate, "La capitale de la France est Paris.")
    assert pieces and {p.language for p in pieces} == {"fr"}

    generate = turn_in(d, "And of Spain?", "en", at_ms=4000)
    assert generate.messages[-1].role == "user"  # no note for English: the history alone
    assert {p.language for p in answer(d, generate, "Madrid.")} == {"en"}


def test_without_a_detected_language_the_pinned_one_is_used():
    d = Driver(language="es")
    generate = turn_in(d, "Hola", None)
    assert generate.messages[-1].content == "The user speaks Spanish. Answer in Spanish only."


async def test_a_session_pins_the_stt_language_and_can_go_back_to_detection(
    client: Realtime, fakes: FakeStages
) -> None:
    async def pin(language: str | None) -> dict:
        mark = client.mark()
        transcription = {"language": language}
        await client.send({"type": "session.update", "session": {"audio": {"input": {"transcription": transcription}}}})
        _, updated = await client.wait_for("session.updated", mark)
        return updated["session"]["audio"]["input"]["transcription"]

    assert await pin("fr") == {"language": "fr"}
    await until(lambda: fakes.stt.starts[-1].language == "fr", "a new STT stream, in French")
    turn = client.mark()
    await client.say(silence_pcm(100) + words_pcm("alpha bravo"))
    _, done = await client.wait_for("response.done", turn)
    assert reply_of(done) == "You said alpha bravo. That is all."
    assert fakes.llm.prompts[-1][-1].content == "The user speaks French. Answer in French only."
    assert {p.language for p in fakes.tts.spoken} == {"fr"}
    assert await pin(None) == {}  # detect per turn
    await until(lambda: fakes.stt.starts[-1].language is None, "a new STT stream that detects")


async def test_a_language_the_stt_model_lacks_is_refused_with_a_clear_error(
    client: Realtime, fakes: FakeStages
) -> None:
    fakes.stt.languages = {"en"}  # an English-only model, as tiny.en
    mark = client.mark()
    session = {"audio": {"input": {"transcription": {"language": "de"}}}}
    await client.send({"type": "session.update", "session": session})
    _, error = await client.wait_for(lambda e: e["type"] == "error", mark)
    assert error["error"]["code"] == "invalid_language"
    assert "'de'" in error["error"]["message"] and "English-only" in error["error"]["message"]
    _, updated = await client.wait_for("session.updated", mark + 1)
    assert updated["session"]["audio"]["input"]["transcription"] == {"language": "en"}
    await until(lambda: fakes.stt.starts[-1].language == "en", "back on a stream the model takes")
    turn = client.mark()
    await client.say(silence_pcm(100) + words_pcm("charlie delta"))
    _, done = await client.wait_for("response.done", turn)
    assert reply_of(done) == "You said charlie delta. That is all."


async def test_unsupported_and_unknown_client_events_are_named(connect: Callable[..., Awaitable[Realtime]]) -> None:
    client = await connect()
    for kind, code, says in [
        ("output_audio_buffer.clear", "unsupported_event", "not supported"),
        ("conversation.item.delete", "unsupported_event", "not supported"),
        ("no.such.event", "unknown_event", "unknown event type"),
    ]:
        mark = client.mark()
        await client.send({"type": kind, "event_id": "e9"})
        _, error = await client.wait_for(lambda e: e["type"] == "error", mark)
        assert error["error"]["code"] == code and f"'{kind}'" in error["error"]["message"], error
        assert says in error["error"]["message"]
