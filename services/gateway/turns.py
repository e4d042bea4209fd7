"""Turn-taking: one state machine per session that decides who speaks and drives STT, LLM and TTS.

    LISTENING ──speech_started──▶ USER_SPEAKING ──speech_stopped──▶ TRANSCRIBING ──final──▶ RESPONDING
        ▲                              ▲   │ (abandon)                 │ (empty/error)           │
        │                              │   ▼                           ▼                          │
        └──────────────────────────────┴── LISTENING ◀─────────────────┴──── reply done/cancel ──┘
    RESPONDING ──speech_started (barge-in)──▶ USER_SPEAKING;  TRANSCRIBING ──speech_started──▶ USER_SPEAKING
    (the user went on: the pending final is dropped and the utterance continues from its first start).
"""

from __future__ import annotations

import enum
import logging
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from services.common import realtime as rt
from services.common.messages import (
    ErrorMessage,
    SttBegin,
    SttCommit,
    SttFinal,
    SttPartial,
    VadPause,
    VadSpeechStarted,
    VadSpeechStopped,
)
from services.gateway.history import History
from services.gateway.live_transcript import LiveTranscript
from services.gateway.reply import Reply, TurnClock
from services.gateway.responder import Responder

if TYPE_CHECKING:
    from services.gateway.session import RealtimeSession

log = logging.getLogger(__name__)

MIN_COMMIT_MS = 100  # the OpenAI API refuses commits of less audio than this


class Turn(enum.Enum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    TRANSCRIBING = "transcribing"
    RESPONDING = "responding"


ALLOWED = {
    Turn.LISTENING: {Turn.USER_SPEAKING, Turn.TRANSCRIBING, Turn.RESPONDING},
    Turn.USER_SPEAKING: {Turn.TRANSCRIBING, Turn.LISTENING},
    Turn.TRANSCRIBING: {Turn.RESPONDING, Turn.LISTENING, Turn.USER_SPEAKING},
    Turn.RESPONDING: {Turn.LISTENING, Turn.USER_SPEAKING},
}


@dataclass
class Speculation:
    """An STT decode started at a short pause, before the end of the turn was certain."""

    voice_end_ms: int  # where the silence began; the turn's end must match it for the result to count
    request_id: str
    sent_at: float = field(default_factory=time.perf_counter)
    result: SttFinal | None = None


class TurnTaker:
    def __init__(self, session: RealtimeSession) -> None:
        self.s = session
        self.state = Turn.LISTENING
        self.history = History(session.settings.history_messages)
        self.responder = Responder(session, self.history, self._reply_finished)
        self.clock = TurnClock()
        self._item_id: str | None = None  # the user item being spoken/transcribed
        self._utterance_start_ms = 0
        self._awaiting_final: str | None = None  # stt request whose result we will use
        self._commits = 0
        self._live = LiveTranscript()  # the user's words while they speak
        self._reply_requested = False  # response.create arrived while the transcript was pending
        self._manual_start_ms = 0.0
        self._speculation: Speculation | None = None

    def move(self, to: Turn) -> None:
        if to is not self.state:
            assert to in ALLOWED[self.state], f"turn {self.state.value} -> {to.value}"
            log.debug("session %s: %s -> %s", self.s.id, self.state.value, to.value)
            self.state = to

    @property
    def user_speaking(self) -> bool:
        return self.state is Turn.USER_SPEAKING

    def close(self) -> None:
        self.responder.reply = None

    # ------------------------------------------------------------------ user speech (VAD, STT)

    async def on_vad(self, event: Any) -> None:
        if isinstance(event, VadSpeechStarted):
            await self._speech_started(event)
        elif isinstance(event, VadPause) and self.state is Turn.USER_SPEAKING:
            await self._speculate(event)
        elif isinstance(event, VadSpeechStopped) and self.state is Turn.USER_SPEAKING:
            await self._speech_stopped(event)

    async def _speculate(self, pause: VadPause) -> None:
        """A short pause: decode now, so the transcript is (nearly) ready if the pause becomes the end of the turn."""
        self._commits += 1
        request_id = f"{self._item_id}#{self._commits}"
        self._speculation = Speculation(pause.end_ms, request_id)
        end_ms = pause.end_ms + self.s.settings.speculative_pause_ms
        commit = SttCommit(request_id=request_id, start_ms=self._utterance_start_ms, end_ms=end_ms, keep_open=True)
        await self.s.send_to(self.s.stt, commit)

    async def _speech_started(self, event: VadSpeechStarted) -> None:
        if self.state is Turn.TRANSCRIBING:
            self._awaiting_final = None  # the user went on: the utterance continues, its first transcript is moot
        elif self.state is not Turn.USER_SPEAKING:
            self._item_id = self.s.ids.next("item")
            self._utterance_start_ms = event.start_ms
            self._live = LiveTranscript()
            self._speculation = None
            self.clock = TurnClock()
        # First the event clients stop playback on, then the cancel.
        self.s.emit("input_audio_buffer.speech_started", audio_start_ms=event.start_ms, item_id=self._item_id)
        td = self.s.config.turn_detection
        if td is not None and td.interrupt_response:
            if self.reply is not None:
                await self.cancel_reply("turn_detected")
            else:
                self.responder.cut_playback()
        self.move(Turn.USER_SPEAKING)
        await self.s.send_to(self.s.stt, SttBegin(start_ms=self._utterance_start_ms))

    async def _speech_stopped(self, event: VadSpeechStopped) -> None:
        last_voice = self.s.arrival_time(event.voice_end_ms)
        if last_voice is not None:
            self.clock.marks["last_voice"] = last_voice
        self.clock.marks.pop("speech_stopped", None)
        self.clock.mark("speech_stopped")
        self.s.emit("input_audio_buffer.speech_stopped", audio_end_ms=event.end_ms, item_id=self._item_id)
        speculation, self._speculation = self._speculation, None
        if speculation is not None and speculation.voice_end_ms == event.voice_end_ms:
            # No speech since the pause: the speculative decode covers this turn.
            self.clock.marks["stt_commit"] = speculation.sent_at
            self._awaiting_final = speculation.request_id
            self._expect_final(speculation.request_id)
            self.move(Turn.TRANSCRIBING)
            self.s.emit("input_audio_buffer.committed", item_id=self._item_id, previous_item_id=self.history.last_item_id)
            if speculation.result is not None:
                await self._final(speculation.result)
            return
        await self._commit_utterance(self._utterance_start_ms, event.end_ms)

    async def _commit_utterance(self, start_ms: float, end_ms: float) -> None:
        self._commits += 1
        request_id = f"{self._item_id}#{self._commits}"
        self._awaiting_final = request_id
        self._expect_final(request_id)
        self.move(Turn.TRANSCRIBING)
        self.s.emit("input_audio_buffer.committed", item_id=self._item_id, previous_item_id=self.history.last_item_id)
        self.clock.marks.pop("stt_commit", None)
        self.clock.mark("stt_commit")
        if not await self.s.send_to(self.s.stt, SttCommit(request_id=request_id, start_ms=int(start_ms), end_ms=int(end_ms))):
            self._awaiting_final = None
            self.move(Turn.LISTENING)

    def _expect_final(self, request_id: str) -> None:
        async def check() -> None:
            if self._awaiting_final == request_id:  # still waiting: the STT service hangs
                self._awaiting_final = None
                self.s.error("stage_timeout", f"stt service at {self.s.stt.url} gave no transcript within {self.s.settings.stage_timeout_s:.0f} s")
                self.move(Turn.LISTENING)

        self.s.after(self.s.settings.stage_timeout_s, check)

    async def manual_commit(self, event_id: str | None) -> None:
        if self.state is Turn.USER_SPEAKING:
            start = self._utterance_start_ms
        else:
            start = self._manual_start_ms
            self._item_id = self.s.ids.next("item")
            self.clock = TurnClock()
        end = self.s.input_ms
        if end - start < MIN_COMMIT_MS:
            self.s.error("input_audio_buffer_commit_empty", f"buffer too small: {end - start:.0f} ms of audio, need at least {MIN_COMMIT_MS} ms", event_id)
            return
        if self.state is Turn.RESPONDING or self.state is Turn.TRANSCRIBING:
            self.s.error("conversation_already_has_active_response", "wait for the current turn to finish before committing", event_id)
            return
        self._manual_start_ms = end
        await self._commit_utterance(start, end)

    def clear_input(self) -> None:
        self._manual_start_ms = self.s.input_ms
        if self.state is Turn.USER_SPEAKING:
            self.abandon_user_turn()

    def abandon_user_turn(self) -> None:
        self._awaiting_final = None
        self.move(Turn.LISTENING)

    async def on_stt(self, message: Any) -> None:
        if isinstance(message, SttPartial):
            ours = self.state is Turn.USER_SPEAKING and message.start_ms == self._utterance_start_ms
            if ours and (delta := self._live.update(message.text)):
                self.s.emit("conversation.item.input_audio_transcription.delta", item_id=self._item_id, content_index=0, delta=delta)
        elif isinstance(message, SttFinal):
            if self._speculation is not None and message.request_id == self._speculation.request_id:
                self._speculation.result = message  # kept until the turn ends (used) or the user goes on (dropped)
            elif message.request_id == self._awaiting_final:
                await self._final(message)
        elif isinstance(message, ErrorMessage):
            self.s.error(f"stt_{message.code}", message.message)
            if message.request_id and message.request_id == self._awaiting_final:
                self._awaiting_final = None
                self.move(Turn.LISTENING)

    async def _final(self, final: SttFinal) -> None:
        self._awaiting_final = None
        self.clock.mark("stt_final")
        self.clock.service_ms["stt_decode_ms"] = final.decode_ms
        self.clock.service_ms["stt_queued_ms"] = final.queued_ms
        item_id, text = self._item_id or self.s.ids.next("item"), final.text.strip()
        self.s.emit("conversation.item.input_audio_transcription.completed", item_id=item_id, content_index=0, transcript=text)
        if not text:
            self._reply_requested = False
            self.move(Turn.LISTENING)
            return
        item = self.history.add(item_id, "user", text)
        self.s.emit("conversation.item.done", item=item)
        td = self.s.config.turn_detection
        wanted = self._reply_requested or (td is not None and td.create_response)
        self._reply_requested = False
        self.move(Turn.LISTENING)
        if wanted:
            await self.start_reply()

    async def add_item(self, item: rt.ConversationItem, event_id: str | None) -> None:
        text = item.text()
        if not text:
            self.s.error("invalid_value", "conversation.item.create: the item has no text content", event_id, "item.content")
            return
        added = self.history.add(item.id or self.s.ids.next("item"), item.role, text)
        self.s.emit("conversation.item.added", item=added)
        self.s.emit("conversation.item.done", item=added)

    def truncate(self, item_id: str, audio_end_ms: int, event_id: str | None) -> None:
        if not self.history.truncate(item_id, audio_end_ms):
            self.s.error("item_not_found", f"no assistant audio item {item_id!r} to truncate", event_id, "item_id")
            return
        self.s.emit("conversation.item.truncated", item_id=item_id, content_index=0, audio_end_ms=audio_end_ms)

    # ------------------------------------------------------------------ the reply

    @property
    def reply(self) -> Reply | None:
        return self.responder.reply

    async def start_reply(self, instructions: str | None = None, event_id: str | None = None) -> None:
        if self.reply is not None:
            self.s.error("conversation_already_has_active_response", f"response {self.reply.response_id} is still in progress", event_id)
            return
        if self.state is Turn.TRANSCRIBING:
            self._reply_requested = True  # answered once the transcript arrives
            return
        if not (await self.s.ensure(self.s.llm) and await self.s.ensure(self.s.tts)):
            return
        if "response_start" in self.clock.marks:  # a reply without a new spoken turn (response.create)
            self.clock = TurnClock()
        self.move(Turn.RESPONDING)
        await self.responder.start(self.clock, instructions)

    async def cancel_reply(self, reason: str, response_id: str | None = None, event_id: str | None = None) -> None:
        await self.responder.cancel(reason, response_id, event_id)

    def _reply_finished(self) -> None:
        if self.state is Turn.RESPONDING:
            self.move(Turn.LISTENING)

    async def on_llm(self, message: Any) -> None:
        await self.responder.on_llm(message)

    async def on_tts(self, message: Any) -> None:
        await self.responder.on_tts(message)

    # ------------------------------------------------------------------ plumbing

    async def on_stage_lost(self, stage: str) -> None:
        if stage in ("llm", "tts"):
            await self.responder.on_stage_lost(stage)
        elif stage == "stt" and self.state is Turn.TRANSCRIBING:
            self._awaiting_final = None
            self.move(Turn.LISTENING)
        elif stage == "vad" and self.state is Turn.USER_SPEAKING:
            self.abandon_user_turn()
