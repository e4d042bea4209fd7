"""The turn machine as a table: events in, commands out — no sockets, no models, no clock."""

from __future__ import annotations

from typing import Any, Literal

import pytest

from services.common import realtime as rt
from services.common.messages import (
    LlmCancel,
    LlmDelta,
    LlmDone,
    LlmGenerate,
    SttBegin,
    SttCommit,
    SttFinal,
    TtsCancel,
    TtsDone,
    TtsSpeak,
    TtsStarted,
    VadPause,
    VadSpeechResumed,
    VadSpeechStarted,
    VadSpeechStopped,
)
from services.gateway.commands import AudioIn, Command, Emit, FromStage, Send, StageDown, StartTimer, TimerFired
from services.gateway.ids import Ids
from services.gateway.machine import TurnMachine
from services.gateway.session_state import SessionState
from services.gateway.settings import GatewaySettings
from services.gateway.stream_time import StreamClock
from services.gateway.utterance import Turn

PCM_20MS_16K = bytes(640)


class Driver:
    """A machine and a record of everything it asked for."""

    def __init__(self, **config: Any) -> None:
        self.config = SessionState(**config)
        self.machine = TurnMachine(
            self.config, GatewaySettings(stage_timeout_s=30, speculative_pause_ms=150, speculative_reply=True), Ids("t")
        )
        self.now = 100.0
        self.log: list[Command] = []

    def __call__(self, event: Any, advance: float = 0.01) -> list[Command]:
        self.now += advance
        commands = self.machine.handle(event, self.now)
        self.log += commands
        return commands

    def stage(self, stage: str, message: Any) -> list[Command]:
        return self(FromStage(stage, message))  # type: ignore[arg-type]

    def audio(self, until_ms: float) -> None:
        self(AudioIn(until_ms))


def types(commands: list[Command]) -> list[str]:
    return [c.event.type for c in commands if isinstance(c, Emit)]


def sent(commands: list[Command], kind: type) -> list[Any]:
    return [c.message for c in commands if isinstance(c, Send) and isinstance(c.message, kind)]


def event(commands: list[Command], type_: str) -> Any:
    return next(c.event for c in commands if isinstance(c, Emit) and c.event.type == type_)


def spoken_turn(d: Driver, text: str = "What is the capital of France?") -> str:
    """A whole user turn up to the reply's LLM request; returns the response id."""
    d.audio(3000)
    d.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    out = d.stage("vad", VadSpeechStopped(end_ms=2300, voice_end_ms=2000, detected_ms=2500))
    (commit,) = sent(out, SttCommit)
    out = d.stage("stt", SttFinal(request_id=commit.request_id, text=text, language="en", audio_ms=1800, decode_ms=90))
    (generate,) = sent(out, LlmGenerate)
    return generate.request_id


def test_a_spoken_turn_is_transcribed_answered_and_spoken():
    d = Driver()
    d.audio(3000)
    out = d.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    assert types(out) == ["input_audio_buffer.speech_started"]
    assert sent(out, SttBegin) == [SttBegin(start_ms=500)]
    out = d.stage("vad", VadSpeechStopped(end_ms=2300, voice_end_ms=2000, detected_ms=2500))
    assert types(out) == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
    ]
    (commit,) = sent(out, SttCommit)
    assert (commit.start_ms, commit.end_ms, commit.keep_open) == (500, 2300, False)
    assert any(isinstance(c, StartTimer) for c in out)
    final = SttFinal(request_id=commit.request_id, text="Hi there.", language="en", audio_ms=1800, decode_ms=90)
    out = d.stage("stt", final)
    assert types(out) == [
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.done",
        "response.created",
        "response.output_item.added",
        "response.content_part.added",
    ]
    (generate,) = sent(out, LlmGenerate)
    assert generate.messages[-1].content == "Hi there."
    rid = generate.request_id
    d.stage("llm", LlmDelta(request_id=rid, text="Hello, "))
    out = d.stage("llm", LlmDelta(request_id=rid, text="how are you?"))
    pieces = sent(d.log, TtsSpeak)
    assert [p.text for p in pieces] == ["Hello,"]
    out = d.stage("llm", LlmDone(request_id=rid, finish_reason="stop"))
    pieces = sent(d.log, TtsSpeak)
    assert [p.text for p in pieces] == ["Hello,", "how are you?"]
    for piece in pieces:
        out = d.stage("tts", TtsStarted(request_id=piece.request_id, sample_rate=16000))
        assert types(out) == ["response.output_audio_transcript.delta"]
        out = [c for _ in range(5) for c in d.stage("tts", PCM_20MS_16K)]  # the resampler holds a few ms back
        assert set(types(out)) == {"response.output_audio.delta"}
        out = d.stage("tts", TtsDone(request_id=piece.request_id))
    done = event(out, "response.done")
    assert done.response.status == "completed"
    assert done.timings["voice_to_voice_ms"] > 0
    assert d.machine.history.messages()[-1].content == "Hello, how are you?"
    assert d.machine.turn is Turn.LISTENING and not d.machine.reply_in_flight


def test_barge_in_cancels_the_reply_and_keeps_only_what_was_heard():
    d = Driver()
    rid = spoken_turn(d)
    d.stage("llm", LlmDelta(request_id=rid, text="Paris is the capital. "))
    d.stage("llm", LlmDelta(request_id=rid, text="It has many museums and parks. "))
    speaks = sent(d.log, TtsSpeak)
    assert len(speaks) == 2
    d.stage("tts", TtsStarted(request_id=speaks[0].request_id, sample_rate=16000))
    for _ in range(50):  # 1 s of audio sent, in 0.5 s of wall time
        d(FromStage("tts", PCM_20MS_16K), advance=0.01)
    out = d.stage("vad", VadSpeechStarted(start_ms=5000, voice_start_ms=5100))
    assert types(out)[0] == "input_audio_buffer.speech_started"  # first: clients stop playback on it
    assert sent(out, LlmCancel) and sent(out, TtsCancel)
    done = event(out, "response.done")
    assert (done.response.status, done.response.status_details.reason) == ("cancelled", "turn_detected")
    item = d.machine.history.get(done.response.output[0].id)
    assert item is not None and item.audio_ms <= 1000.0 and item.text in "Paris is the capital."
    # The cancelled reply's stragglers are dropped by comparison.
    assert d.stage("llm", LlmDelta(request_id=rid, text="And more.")) == []
    assert d.stage("tts", PCM_20MS_16K) == []
    assert d.stage("tts", TtsDone(request_id=speaks[1].request_id, cancelled=True)) == []
    assert d.machine.turn is Turn.USER_SPEAKING


def test_speech_after_a_fully_sent_reply_truncates_it_to_what_can_have_been_played():
    d = Driver()
    rid = spoken_turn(d)
    d.stage("llm", LlmDelta(request_id=rid, text="Paris is the capital. "))
    d.stage("llm", LlmDone(request_id=rid, finish_reason="stop"))
    (speak,) = sent(d.log, TtsSpeak)
    d.stage("tts", TtsStarted(request_id=speak.request_id, sample_rate=16000))
    for _ in range(100):  # 2 s of audio sent at once
        d(FromStage("tts", PCM_20MS_16K), advance=0.0)
    out = d.stage("tts", TtsDone(request_id=speak.request_id))
    assert event(out, "response.done").response.status == "completed"
    out = d(FromStage("vad", VadSpeechStarted(start_ms=5000, voice_start_ms=5100)), advance=0.5)
    truncated = event(out, "conversation.item.truncated")
    assert 400 <= truncated.audio_end_ms <= 600
    assert not sent(out, LlmCancel)


def test_a_pause_then_more_speech_discards_the_speculative_transcript_and_reply():
    d = Driver()
    d.audio(4000)
    d.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    out = d.stage("vad", VadPause(end_ms=1500))
    (speculative,) = sent(out, SttCommit)
    assert speculative.keep_open and speculative.end_ms == 1650
    assert types(out) == []  # nothing the client sees: the turn is not over
    out = d.stage(
        "stt", SttFinal(request_id=speculative.request_id, text="What is", language="en", audio_ms=1000, decode_ms=80)
    )
    (held,) = sent(out, LlmGenerate)  # the reply starts on the speculative transcript, held back
    assert held.messages[-1].content == "What is" and types(out) == []
    out = d.stage("llm", LlmDelta(request_id=held.request_id, text="It is, "))
    (speak,) = sent(out, TtsSpeak)
    assert types(d.stage("tts", TtsStarted(request_id=speak.request_id, sample_rate=16000))) == []
    assert all(types(d.stage("tts", PCM_20MS_16K)) == [] for _ in range(5))
    out = d.stage("vad", VadSpeechResumed(start_ms=1900))  # the user goes on
    assert types(out) == [] and sent(out, LlmCancel) and sent(out, TtsCancel)
    out = d.stage("vad", VadSpeechStopped(end_ms=3300, voice_end_ms=3000, detected_ms=3500))
    (commit,) = sent(out, SttCommit)
    assert commit.request_id != speculative.request_id and (commit.start_ms, commit.end_ms) == (500, 3300)
    out = d.stage(
        "stt",
        SttFinal(request_id=commit.request_id, text="What is the time?", language="en", audio_ms=2800, decode_ms=80),
    )
    assert event(out, "conversation.item.input_audio_transcription.completed").transcript == "What is the time?"
    (generate,) = sent(out, LlmGenerate)
    assert generate.request_id != held.request_id
    d.stage("llm", LlmDelta(request_id=generate.request_id, text="It is noon. "))
    (speak,) = sent(d.log, TtsSpeak)[-1:]
    d.stage("tts", TtsStarted(request_id=speak.request_id, sample_rate=16000))
    for _ in range(5):
        d.stage("tts", PCM_20MS_16K)
    d.stage("llm", LlmDone(request_id=generate.request_id, finish_reason="stop"))
    done = event(d.stage("tts", TtsDone(request_id=speak.request_id)), "response.done")
    # Timed as this turn's reply, not from the discarded one's start.
    assert {"voice_to_voice_ms", "stt_wait_ms", "end_of_turn_ms"} <= set(done.timings)
    assert done.timings["llm_first_clause_ms"] <= 50
    seen = [c.event for c in d.log if isinstance(c, Emit)]
    assert not [
        e
        for e in seen
        if held.request_id in (getattr(e, "response_id", None), getattr(getattr(e, "response", None), "id", None))
    ]


def test_a_held_reply_is_released_when_the_pause_ends_the_turn():
    d = Driver()
    d.audio(4000)
    d.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    (speculative,) = sent(d.stage("vad", VadPause(end_ms=2000)), SttCommit)
    out = d.stage(
        "stt", SttFinal(request_id=speculative.request_id, text="Hello.", language="en", audio_ms=1500, decode_ms=80)
    )
    (held,) = sent(out, LlmGenerate)
    d.stage("llm", LlmDelta(request_id=held.request_id, text="Hi there."))
    d.stage("llm", LlmDone(request_id=held.request_id, finish_reason="stop"))
    (speak,) = sent(d.log, TtsSpeak)
    d.stage("tts", TtsStarted(request_id=speak.request_id, sample_rate=16000))
    for _ in range(10):
        d.stage("tts", PCM_20MS_16K)
    assert not [c for c in d.log if isinstance(c, Emit) and c.event.type.startswith("response.")]
    d.stage("tts", TtsDone(request_id=speak.request_id))  # the whole reply is ready before the turn is confirmed
    out = d(FromStage("vad", VadSpeechStopped(end_ms=2300, voice_end_ms=2000, detected_ms=2500)), advance=0.25)
    kinds = types(out)
    assert kinds[:6] == [
        "input_audio_buffer.speech_stopped",
        "input_audio_buffer.committed",
        "conversation.item.added",
        "conversation.item.input_audio_transcription.completed",
        "conversation.item.done",
        "response.created",
    ]
    assert kinds[-1] == "response.done" and "response.output_audio.delta" in kinds
    done = event(out, "response.done")
    assert done.response.status == "completed" and done.response.id == held.request_id
    # The reply's audio reached the client only now: voice-to-voice counts from the last voice to the release.
    assert done.timings["voice_to_voice_ms"] >= 250
    assert (
        done.timings["reply_held_ms"] >= 250
        and done.timings["response_first_audio_ms"] == done.timings["reply_held_ms"]
    )
    assert not sent(out, LlmGenerate)


def test_speculative_replies_can_be_turned_off():
    d = Driver()
    d.machine.settings = GatewaySettings(stage_timeout_s=30, speculative_pause_ms=150, speculative_reply=False)
    d.audio(4000)
    d.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    (speculative,) = sent(d.stage("vad", VadPause(end_ms=2000)), SttCommit)
    out = d.stage(
        "stt", SttFinal(request_id=speculative.request_id, text="Hello.", language="en", audio_ms=1500, decode_ms=80)
    )
    assert out == []


def test_a_pause_that_ends_the_turn_reuses_the_speculative_transcript():
    d = Driver()
    d.audio(4000)
    d.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    (speculative,) = sent(d.stage("vad", VadPause(end_ms=2000)), SttCommit)
    d.stage(
        "stt", SttFinal(request_id=speculative.request_id, text="Hello.", language="en", audio_ms=1500, decode_ms=80)
    )
    out = d.stage("vad", VadSpeechStopped(end_ms=2300, voice_end_ms=2000, detected_ms=2500))
    assert not sent(out, SttCommit)
    assert "conversation.item.input_audio_transcription.completed" in types(out)
    assert "response.created" in types(out)  # the reply started at the pause, released now
    assert len(sent(d.log, LlmGenerate)) == 1


def test_an_empty_transcript_ends_the_turn_without_a_reply():
    d = Driver()
    d.audio(3000)
    d.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    (commit,) = sent(d.stage("vad", VadSpeechStopped(end_ms=900, voice_end_ms=700, detected_ms=1100)), SttCommit)
    out = d.stage("stt", SttFinal(request_id=commit.request_id, text=" ", language="en", audio_ms=400, decode_ms=50))
    assert types(out) == ["conversation.item.input_audio_transcription.completed"]
    assert not d.machine.reply_in_flight and d.machine.turn is Turn.LISTENING


def test_speech_while_a_reply_waits_for_its_llm_link_cancels_it_cleanly():
    """Regression (defect 1): speech during a stage reconnect used to reach an assert in the old machine."""
    d = Driver()
    rid = spoken_turn(d)
    out = d.stage("vad", VadSpeechStarted(start_ms=5000, voice_start_ms=5100))
    assert event(out, "response.done").response.status == "cancelled"
    out = d(StageDown("llm", "upstream_unavailable", "llm service at ws://x is unavailable: refused"))
    assert types(out) == ["error"]  # the reply is already over: one error, no second response.done
    assert d.stage("llm", LlmDelta(request_id=rid, text="late")) == []
    assert d.machine.turn is Turn.USER_SPEAKING


def test_an_llm_that_cannot_be_reached_fails_the_reply_once():
    d = Driver()
    spoken_turn(d)
    out = d(StageDown("llm", "upstream_unavailable", "llm service at ws://x is unavailable: refused"))
    assert types(out) == [
        "error",
        "response.output_audio.done",
        "response.output_audio_transcript.done",
        "response.content_part.done",
        "response.output_item.done",
        "response.done",
    ]
    assert event(out, "response.done").response.status == "failed"


def test_a_silent_llm_times_out_and_a_busy_one_does_not():
    d = Driver()
    rid = spoken_turn(d)
    (timer,) = [c for c in d.log if isinstance(c, StartTimer) and c.key[0] == "reply_watchdog"]
    d.stage("llm", LlmDelta(request_id=rid, text="Paris"))
    out = d(TimerFired(timer.key))
    assert "error" not in types(out) and any(isinstance(c, StartTimer) for c in out)
    out = d(TimerFired(timer.key))
    assert event(out, "error").error.code == "stage_timeout"
    assert event(out, "response.done").response.status == "failed"


def test_a_transcript_that_never_comes_times_out():
    d = Driver()
    d.audio(3000)
    d.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    out = d.stage("vad", VadSpeechStopped(end_ms=2300, voice_end_ms=2000, detected_ms=2500))
    (timer,) = [c for c in out if isinstance(c, StartTimer)]
    out = d(TimerFired(timer.key))
    assert event(out, "error").error.code == "stage_timeout"
    assert d.machine.turn is Turn.LISTENING


def test_manual_turns_commit_the_audio_since_the_last_commit():
    d = Driver(turn_detection=None)
    d.audio(800)
    d.stage("vad", VadSpeechStarted(start_ms=100, voice_start_ms=200))  # ignored without turn detection
    assert d.machine.turn is Turn.LISTENING
    out = d(rt.InputAudioCommit(type="input_audio_buffer.commit"))
    (commit,) = sent(out, SttCommit)
    assert (commit.start_ms, commit.end_ms) == (0, 800)
    out = d(rt.InputAudioCommit(type="input_audio_buffer.commit", event_id="e2"))
    assert event(out, "error").error.code == "conversation_already_has_active_response"


def test_response_cancel_without_a_reply_is_an_error():
    d = Driver()
    out = d(rt.ResponseCancel(type="response.cancel", event_id="c1"))
    error = event(out, "error").error
    assert (error.code, error.event_id) == ("response_cancel_not_active", "c1")


def test_a_second_response_create_is_refused_while_one_is_in_flight():
    d = Driver()
    item = rt.ConversationItem(role="user", content=[rt.ContentPart(type="input_text", text="Hi")])
    d(rt.ConversationItemCreate(type="conversation.item.create", item=item))
    out = d(rt.ResponseCreate(type="response.create"))
    assert "response.created" in types(out)
    out = d(rt.ResponseCreate(type="response.create", event_id="again"))
    assert event(out, "error").error.code == "conversation_already_has_active_response"


@pytest.mark.parametrize("stage", ["vad", "stt"])
def test_a_stage_that_reconnects_alone_keeps_its_times_on_the_gateway_clock(stage: Literal["vad", "stt"]) -> None:
    """Regression (defects 2 and 3): a reconnected VAD or STT restarts its own clock at 0; the gateway maps it."""
    clock = StreamClock()
    clock.advance(16000 * 2 * 5)  # 5 s of 16 kHz audio sent
    clock.stage_started(stage)
    other: Literal["vad", "stt"] = "stt" if stage == "vad" else "vad"
    assert clock.from_stage(stage, 300) == 5300
    assert clock.to_stage(stage, 5300) == 300
    assert clock.to_stage(other, 5300) == 5300
    assert clock.to_stage(stage, 4000) == 0  # audio from before the reconnect is gone


def test_stream_times_map_there_and_back_exactly():
    clock = StreamClock()
    clock.advance(333)  # an odd number of samples: a fractional ms
    clock.stage_started("stt")
    for ms in range(0, 2000, 7):
        assert clock.from_stage("stt", clock.to_stage("stt", ms + 11)) == ms + 11
