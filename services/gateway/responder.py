"""The assistant's side of a turn: one reply at a time, from LLM tokens to TTS audio at the client."""

from __future__ import annotations

import base64
import logging
import time
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from services.common.audio import StreamResampler
from services.common.messages import (
    ChatMessage,
    ErrorMessage,
    LlmCancel,
    LlmDelta,
    LlmDone,
    LlmGenerate,
    TtsCancel,
    TtsDone,
    TtsSpeak,
    TtsStarted,
)
from services.gateway.history import History
from services.gateway.reply import Reply, TurnClock

if TYPE_CHECKING:
    from services.gateway.session import RealtimeSession

log = logging.getLogger(__name__)


class Responder:
    """Streams a reply: LLM deltas are cut into clauses for TTS, TTS audio is resampled and sent as it arrives."""

    def __init__(self, session: RealtimeSession, history: History, on_finished: Callable[[], None]) -> None:
        self.s = session
        self.history = history
        self.reply: Reply | None = None
        self._playing: Reply | None = None  # the last finished reply, while the client may still be playing it
        self._on_finished = on_finished

    async def start(self, clock: TurnClock, instructions: str | None) -> None:
        reply = Reply(self.s.ids.next("resp"), self.s.ids.next("item"), self.s.config.output_rate, clock)
        self.reply = reply
        system = instructions or self.s.config.instructions
        messages = ([ChatMessage(role="system", content=system)] if system else []) + self.history.messages()
        if not messages:
            messages = [ChatMessage(role="user", content="Hello!")]
        clock.mark("response_start")
        self.s.emit("response.created", response=self._response_body(reply, "in_progress"))
        self.s.emit("response.output_item.added", response_id=reply.response_id, output_index=0, item=self._item_body(reply, "in_progress"))
        self.s.emit("response.content_part.added", response_id=reply.response_id, item_id=reply.item_id, output_index=0, content_index=0, part={"type": "audio", "transcript": ""})
        self._watch(reply)
        clock.mark("llm_request")
        generate = LlmGenerate(request_id=reply.response_id, messages=messages, max_tokens=self.s.config.max_output_tokens)
        if not await self.s.send_to(self.s.llm, generate):
            await self._finish(reply, "failed")

    def _watch(self, reply: Reply, seen: int = -1) -> None:
        """Fails the reply if the LLM and TTS stop answering for ``stage_timeout_s``: never a silent hang."""

        async def check() -> None:
            if reply.closed:
                return
            if reply.progress == seen:
                stage = "tts" if reply.llm_done else "llm"
                url = (self.s.tts if stage == "tts" else self.s.llm).url
                self.s.error("stage_timeout", f"{stage} service at {url} stopped answering for {self.s.settings.stage_timeout_s:.0f} s")
                await self.cancel("failed")
            else:
                self._watch(reply, reply.progress)

        self.s.after(self.s.settings.stage_timeout_s, check)

    async def on_llm(self, message: Any) -> None:
        reply = self.reply
        if reply is None or getattr(message, "request_id", None) != reply.response_id:
            return  # a cancelled reply's late tokens
        reply.progress += 1
        if isinstance(message, LlmDelta):
            reply.clock.mark("llm_first_token")
            reply.text += message.text
            for piece in reply.chunker.push(message.text):
                await self._speak(reply, piece)
        elif isinstance(message, LlmDone):
            reply.clock.mark("llm_done")
            if message.ttft_ms is not None:
                reply.clock.service_ms["llm_service_ttft_ms"] = message.ttft_ms
            for piece in reply.chunker.flush():
                await self._speak(reply, piece)
            reply.llm_done = True
            if reply.finished:
                await self._finish(reply, "completed")
        elif isinstance(message, ErrorMessage):
            self.s.error(f"llm_{message.code}", message.message)
            await self._finish(reply, "failed")

    async def _speak(self, reply: Reply, piece: str) -> None:
        index = len(reply.pieces)
        reply.pieces.append(piece)
        reply.clock.mark("tts_first_request")
        if not await self.s.send_to(self.s.tts, TtsSpeak(request_id=reply.tts_request_id(index), text=piece)):
            await self.cancel("failed")

    async def on_tts(self, message: Any) -> None:
        reply = self.reply
        if reply is None or reply.closed:
            return
        reply.progress += 1
        if isinstance(message, bytes):
            if reply.playing_piece is not None and reply.resampler is not None:
                self._send_audio(reply, reply.resampler.process(message))
            return
        index = reply.piece_index(getattr(message, "request_id", None) or "")
        if index is None:
            return
        if isinstance(message, TtsStarted):
            reply.playing_piece = index
            reply.pieces_started = max(reply.pieces_started, index + 1)
            if reply.resampler is None or reply.resampler.in_rate != message.sample_rate:
                reply.resampler = StreamResampler(message.sample_rate, reply.output_rate)
            self.s.emit("response.output_audio_transcript.delta", response_id=reply.response_id, item_id=reply.item_id, output_index=0, content_index=0, delta=reply.pieces[index] + " ")
        elif isinstance(message, ErrorMessage):
            self.s.error(f"tts_{message.code}", message.message)  # the piece's tts.done follows
        elif isinstance(message, TtsDone):
            if index == 0 and message.first_audio_ms is not None:
                reply.clock.service_ms["tts_service_first_audio_ms"] = message.first_audio_ms
            reply.playing_piece = None
            reply.pieces_done += 1
            reply.piece_audio_ms.append(reply.audio_ms_sent)
            if reply.finished:
                await self._finish(reply, "completed")

    def _send_audio(self, reply: Reply, pcm: bytes) -> None:
        if not pcm:
            return
        reply.clock.mark("tts_first_audio")
        reply.clock.mark("first_audio_sent")
        reply.audio_bytes_sent += len(pcm)
        self.s.emit("response.output_audio.delta", response_id=reply.response_id, item_id=reply.item_id, output_index=0, content_index=0, delta=base64.b64encode(pcm).decode())

    async def cancel(self, reason: str, response_id: str | None = None, event_id: str | None = None) -> None:
        reply = self.reply
        if reply is None or (response_id and response_id != reply.response_id):
            if reason == "client_cancelled":
                self.s.error("response_cancel_not_active", "there is no active response to cancel", event_id)
            return
        await self.s.send_to(self.s.llm, LlmCancel(request_id=reply.response_id), report=False)
        await self.s.send_to(self.s.tts, TtsCancel(), report=False)
        await self._finish(reply, "cancelled" if reason != "failed" else "failed", reason)

    async def _finish(self, reply: Reply, status: str, reason: str | None = None) -> None:
        if reply.closed:
            return
        reply.closed = True
        if status == "completed" and reply.resampler is not None:
            self._send_audio(reply, reply.resampler.process(b"", last=True))
        rid, iid = reply.response_id, reply.item_id
        transcript = self._remember(reply, status)
        self.s.emit("response.output_audio.done", response_id=rid, item_id=iid, output_index=0, content_index=0)
        self.s.emit("response.output_audio_transcript.done", response_id=rid, item_id=iid, output_index=0, content_index=0, transcript=transcript)
        self.s.emit("response.content_part.done", response_id=rid, item_id=iid, output_index=0, content_index=0, part={"type": "audio", "transcript": transcript})
        self.s.emit("response.output_item.done", response_id=rid, output_index=0, item=self._item_body(reply, "completed" if status == "completed" else "incomplete", transcript))
        timings = reply.clock.report()
        log.info("session %s turn %s %s: %s", self.s.id, rid, status, " ".join(f"{k}={v:.0f}" for k, v in timings.items()))
        self.s.emit("response.done", response=self._response_body(reply, status, transcript, reason), timings=timings)
        self.s.metrics.observe_turn(timings, status)
        self._playing = reply if status == "completed" else None
        self.reply = None
        self._on_finished()

    def cut_playback(self) -> None:
        """The user spoke over a reply that was fully sent but may still be playing: keep only what was heard."""
        reply, self._playing = self._playing, None
        if reply is None:
            return
        heard = reply.heard_ms(time.perf_counter())
        if heard < reply.audio_ms_sent and self.history.truncate(reply.item_id, heard):
            self.s.emit("conversation.item.truncated", item_id=reply.item_id, content_index=0, audio_end_ms=int(heard))

    def _remember(self, reply: Reply, status: str) -> str:
        """Adds the reply to the history as far as the user heard it; returns that text."""
        if status == "completed":
            pieces, ends = reply.pieces, reply.piece_audio_ms
        else:
            pieces, ends = reply.started_pieces()
        if not pieces:
            return ""
        self.history.add(reply.item_id, "assistant", " ".join(pieces), pieces=pieces, piece_end_ms=ends, audio_ms=reply.audio_ms_sent)
        if status != "completed":
            # The client buffers audio ahead of playback: keep only what it can have played; its truncate refines this.
            self.history.truncate(reply.item_id, reply.heard_ms(time.perf_counter()))
        return self.history.get(reply.item_id).text

    def _item_body(self, reply: Reply, status: str, transcript: str = "") -> dict[str, Any]:
        return {"id": reply.item_id, "object": "realtime.item", "type": "message", "role": "assistant", "status": status, "content": [{"type": "output_audio", "transcript": transcript}]}

    def _response_body(self, reply: Reply, status: str, transcript: str = "", reason: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {"id": reply.response_id, "object": "realtime.response", "status": status, "output": [] if status == "in_progress" else [self._item_body(reply, "completed" if status == "completed" else "incomplete", transcript)]}
        if reason:
            body["status_details"] = {"type": status, "reason": reason}
        return body

    async def on_stage_lost(self, stage: str) -> None:
        if stage in ("llm", "tts") and self.reply is not None:
            await self._finish(self.reply, "failed", f"{stage}_lost")
