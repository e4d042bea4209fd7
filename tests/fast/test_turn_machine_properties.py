"""Random interleavings of client events, stage messages, stage failures and timers against the turn machine.

Whatever the order, these hold: no exception escapes; at most one reply is in flight; every ``response.created`` gets
exactly one ``response.done``; the history keeps of each reply only words whose audio the client was sent.
"""

from __future__ import annotations

import base64
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from services.common import realtime as rt
from services.common.messages import (
    ErrorMessage,
    LlmDelta,
    LlmDone,
    LlmGenerate,
    SttCommit,
    SttFinal,
    SttPartial,
    TtsDone,
    TtsSpeak,
    TtsStarted,
    VadPause,
    VadSpeechResumed,
    VadSpeechStarted,
    VadSpeechStopped,
)
from services.gateway.commands import AudioIn, Emit, FromStage, Send, StageDown, StartTimer, TimerFired
from services.gateway.ids import Ids
from services.gateway.machine import TurnMachine
from services.gateway.session_state import SessionState
from services.gateway.settings import GatewaySettings

WORDS = ["Paris", "is", "the", "capital.", "It", "has", "museums,", "parks", "and", "cafes!", "Yes?"]


class Observer:
    """Feeds the machine and checks the invariants on everything it says."""

    def __init__(self, turn_detection: bool) -> None:
        config = SessionState(turn_detection=rt.TurnDetection() if turn_detection else None)
        self.machine = TurnMachine(
            config, GatewaySettings(stage_timeout_s=5, speculative_pause_ms=150, speculative_reply=True), Ids("p")
        )
        self.now = 0.0
        self.input_ms = 0.0
        self.open: set[str] = set()
        self.done: set[str] = set()
        self.commits: list[str] = []
        self.generates: list[str] = []
        self.speaks: list[str] = []
        self.timers: list[tuple[str, str]] = []
        self.audio_sent_ms: dict[str, float] = {}  # item id -> audio deltas sent
        self.words_shown: dict[str, list[str]] = {}  # item id -> transcript deltas sent

    def feed(self, event: Any, advance: float) -> None:
        self.now += advance
        for command in self.machine.handle(event, self.now):
            if isinstance(command, Send):
                if isinstance(command.message, SttCommit):
                    self.commits.append(command.message.request_id)
                elif isinstance(command.message, LlmGenerate):
                    self.generates.append(command.message.request_id)
                elif isinstance(command.message, TtsSpeak):
                    self.speaks.append(command.message.request_id)
            elif isinstance(command, StartTimer):
                self.timers.append(command.key)
            elif isinstance(command, Emit):
                self.check(command.event)
        assert (len(self.open) == 1) == self.machine.reply_in_flight

    def check(self, event: Any) -> None:
        if event.type == "response.created":
            assert not self.open, "a second reply started while one was in flight"
            self.open.add(event.response.id)
        elif event.type == "response.done":
            assert event.response.id in self.open and event.response.id not in self.done
            self.open.discard(event.response.id)
            self.done.add(event.response.id)
            assert event.response.status in ("completed", "cancelled", "failed")
        elif event.type == "response.output_audio.delta":
            assert event.response_id in self.open, "audio of a reply the client was not told of (discarded or over)"
            ms = len(base64.b64decode(event.delta)) / 2 / 24000 * 1000
            self.audio_sent_ms[event.item_id] = self.audio_sent_ms.get(event.item_id, 0.0) + ms
        elif event.type == "response.output_audio_transcript.delta":
            self.words_shown.setdefault(event.item_id, []).extend(event.delta.split())

    def check_history(self) -> None:
        for item in self.machine.history.items:
            if item.role != "assistant":
                continue
            assert item.audio_ms <= self.audio_sent_ms.get(item.item_id, 0.0) + 1e-6
            shown = self.words_shown.get(item.item_id, [])
            assert item.text.split() == shown[: len(item.text.split())], (item.text, shown)


def actions(o: Observer, data: st.DataObject) -> Any:
    """One random next thing that can happen to a session."""
    pick = lambda items: data.draw(st.sampled_from(items))  # noqa: E731
    text = lambda: " ".join(data.draw(st.lists(st.sampled_from(WORDS), max_size=6)))  # noqa: E731
    kind = data.draw(
        st.sampled_from(
            [
                "audio",
                "audio",
                "vad_start",
                "vad_pause",
                "vad_resumed",
                "vad_stop",
                "stt_final",
                "stt_partial",
                "stt_error",
                "llm_delta",
                "llm_delta",
                "llm_done",
                "llm_error",
                "tts_started",
                "tts_audio",
                "tts_audio",
                "tts_done",
                "down",
                "timer",
                "create",
                "cancel",
                "commit",
                "clear",
                "item",
                "truncate",
            ]
        )
    )
    ms = int(o.input_ms)
    if kind == "audio":
        o.input_ms += data.draw(st.integers(20, 600))
        return AudioIn(o.input_ms)
    if kind == "vad_start":
        return FromStage("vad", VadSpeechStarted(start_ms=max(0, ms - 300), voice_start_ms=ms))
    if kind == "vad_pause":
        return FromStage("vad", VadPause(end_ms=ms))
    if kind == "vad_resumed":
        return FromStage("vad", VadSpeechResumed(start_ms=ms))
    if kind == "vad_stop":
        return FromStage("vad", VadSpeechStopped(end_ms=ms, voice_end_ms=max(0, ms - 200), detected_ms=ms))
    if kind in ("stt_final", "stt_error") and o.commits:
        rid = pick(o.commits)
        if kind == "stt_error":
            return FromStage("stt", ErrorMessage(code="invalid_range", message="x", request_id=rid))
        return FromStage("stt", SttFinal(request_id=rid, text=text(), language="en", audio_ms=1000, decode_ms=50))
    if kind == "stt_partial":
        return FromStage("stt", SttPartial(start_ms=max(0, ms - 300), text=text()))
    if kind in ("llm_delta", "llm_done", "llm_error") and o.generates:
        rid = pick(o.generates)
        if kind == "llm_delta":
            return FromStage("llm", LlmDelta(request_id=rid, text=" " + text()))
        if kind == "llm_error":
            return FromStage("llm", ErrorMessage(code="failed", message="x", request_id=rid))
        return FromStage("llm", LlmDone(request_id=rid, finish_reason="stop"))
    if kind in ("tts_started", "tts_done") and o.speaks:
        rid = pick(o.speaks)
        message = TtsStarted(request_id=rid, sample_rate=16000) if kind == "tts_started" else TtsDone(request_id=rid)
        return FromStage("tts", message)
    if kind == "tts_audio":
        return FromStage("tts", bytes(2 * data.draw(st.integers(0, 4000))))
    if kind == "down":
        return StageDown(pick(["vad", "stt", "llm", "tts"]), "upstream_lost", "lost")
    if kind == "timer" and o.timers:
        return TimerFired(pick(o.timers))
    if kind == "create":
        return rt.ResponseCreate(type="response.create")
    if kind == "cancel":
        return rt.ResponseCancel(type="response.cancel")
    if kind == "commit":
        return rt.InputAudioCommit(type="input_audio_buffer.commit")
    if kind == "clear":
        return rt.InputAudioClear(type="input_audio_buffer.clear")
    if kind == "item":
        item = rt.ConversationItem(role="user", content=[rt.ContentPart(type="input_text", text=text() or "Hi")])
        return rt.ConversationItemCreate(type="conversation.item.create", item=item)
    if kind == "truncate" and o.audio_sent_ms:
        item_id = pick(sorted(o.audio_sent_ms))
        return rt.ConversationItemTruncate(
            type="conversation.item.truncate", item_id=item_id, audio_end_ms=data.draw(st.integers(0, 5000))
        )
    o.input_ms += 20
    return AudioIn(o.input_ms)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), turn_detection=st.booleans(), steps=st.integers(1, 80))
def test_invariants_hold_over_random_interleavings(data, turn_detection, steps):
    o = Observer(turn_detection)
    for _ in range(steps):
        o.feed(actions(o, data), advance=data.draw(st.floats(0.0, 2.0)))
        o.check_history()
    # Whatever was going on, a cancel ends the reply in flight with exactly one response.done. A reply the user's
    # finished turn still wants (it waited for the cancelled one) starts then, and a second cancel ends that one.
    for _ in range(2):
        if o.machine.reply_in_flight:
            o.feed(rt.ResponseCancel(type="response.cancel"), advance=0.01)
    assert not o.open and not o.machine.reply_in_flight
    o.check_history()
