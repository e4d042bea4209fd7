"""One client conversation: Realtime events in, stage links out, and the turn-taking state machine between them."""

from __future__ import annotations

import asyncio
import base64
import binascii
import logging
import time
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

from fastapi import WebSocket
from starlette.websockets import WebSocketDisconnect

from services.common import realtime as rt
from services.common.audio import AudioFormatError, StreamResampler, check_rate
from services.common.messages import (
    LLM_SERVER,
    STT_SERVER,
    TTS_SERVER,
    VAD_SERVER,
    ErrorMessage,
    SttStart,
    VadStart,
)
from services.common.wire import WireError, decode
from services.gateway.metrics import GatewayMetrics
from services.gateway.settings import GatewaySettings
from services.gateway.turns import TurnTaker
from services.gateway.upstream import StageLink, StageUnavailable

log = logging.getLogger(__name__)

STAGE_RATE = 16000  # VAD and STT take 16 kHz


class SessionState:
    """The session's configuration as the client set it (defaults as in the OpenAI Realtime API)."""

    def __init__(self) -> None:
        self.input_rate = 24000
        self.output_rate = 24000
        self.instructions: str | None = None
        self.turn_detection: rt.TurnDetection | None = rt.TurnDetection()
        self.max_output_tokens: int | None = None
        self.voice = "default"

    def describe(self, session_id: str, model: str) -> dict[str, Any]:
        td = self.turn_detection
        return {
            "type": "realtime",
            "object": "realtime.session",
            "id": session_id,
            "model": model,
            "output_modalities": ["audio"],
            "instructions": self.instructions or "",
            "audio": {
                "input": {
                    "format": {"type": "audio/pcm", "rate": self.input_rate},
                    "turn_detection": None if td is None else td.model_dump(exclude_none=True),
                },
                "output": {"format": {"type": "audio/pcm", "rate": self.output_rate}, "voice": self.voice},
            },
            "max_output_tokens": self.max_output_tokens or "inf",
        }


class RealtimeSession:
    def __init__(self, ws: WebSocket, session_id: str, settings: GatewaySettings, metrics: GatewayMetrics, model: str) -> None:
        self.ws = ws
        self.id = session_id
        self.settings = settings
        self.metrics = metrics
        self.model = model
        self.ids = rt.EventIds(session_id)
        self.config = SessionState()
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._in_resampler = StreamResampler(self.config.input_rate, STAGE_RATE)
        self.input_ms = 0.0  # stream time of the audio sent to VAD/STT
        self._arrivals: deque[tuple[float, float]] = deque(maxlen=4000)  # (stream ms, wall time it arrived)
        timeout = settings.connect_timeout_s
        self.vad = StageLink("vad", settings.vad_url, VAD_SERVER, self._on_vad, self._on_stage_lost, timeout)
        self.stt = StageLink("stt", settings.stt_url, STT_SERVER, self._on_stt, self._on_stage_lost, timeout)
        self.llm = StageLink("llm", settings.llm_url, LLM_SERVER, self._on_llm, self._on_stage_lost, timeout)
        self.tts = StageLink("tts", settings.tts_url, TTS_SERVER, self._on_tts, self._on_stage_lost, timeout)
        self._timers: set[Any] = set()  # watchdog handles and tasks, cancelled when the session ends
        self.turns = TurnTaker(self)

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name=f"{self.id}-writer")
        try:
            await self._connect_stages()
            self.emit("session.created", session=self.config.describe(self.id, self.model))
            await self._read_loop()
        finally:
            for timer in list(self._timers):
                timer.cancel()
            self.turns.close()
            for link in (self.vad, self.stt, self.llm, self.tts):
                await link.close()
            await self._outbox.put(None)
            await writer

    async def _connect_stages(self) -> None:
        results = await asyncio.gather(
            self.vad.connect(self._vad_start()),
            self.stt.connect(SttStart(sample_rate=STAGE_RATE, language=self.settings.language)),
            self.llm.connect(),
            self.tts.connect(),
            return_exceptions=True,
        )
        for result in results:
            if isinstance(result, StageUnavailable):
                self.stage_error(result)
            elif isinstance(result, BaseException):
                raise result

    def _vad_start(self) -> VadStart:
        td = self.config.turn_detection
        pause_ms = self.settings.speculative_pause_ms
        if td is None:
            return VadStart(sample_rate=STAGE_RATE)
        return VadStart(
            sample_rate=STAGE_RATE,
            threshold=td.threshold,
            min_silence_ms=td.silence_duration_ms,
            speech_pad_ms=td.prefix_padding_ms,
            pause_ms=pause_ms if pause_ms and pause_ms < (td.silence_duration_ms or 10_000) else 0,
        )

    async def _read_loop(self) -> None:
        limit = self.settings.max_message_bytes
        while True:
            try:
                frame = await self.ws.receive()
            except WebSocketDisconnect:
                return
            if frame["type"] == "websocket.disconnect":
                return
            text, data = frame.get("text"), frame.get("bytes")
            size = len(text) if text is not None else len(data or b"")
            if size > limit:
                self.error("message_too_large", f"message of {size} bytes exceeds the {limit}-byte limit")
                continue
            if text is None:
                self.error("unexpected_binary", "send audio as input_audio_buffer.append events (base64), not binary frames")
                continue
            try:
                event = decode(rt.CLIENT_EVENTS, text)
            except WireError as err:
                code = "unknown_event" if err.code == "unknown_type" else err.code
                self.error(code, err.message)
                continue
            await self._handle(event)

    async def _write_loop(self) -> None:
        while (event := await self._outbox.get()) is not None:
            try:
                await self.ws.send_json(event)
            except (WebSocketDisconnect, RuntimeError):
                return

    # ------------------------------------------------------------------ output helpers

    def emit(self, type_: str, **fields: Any) -> None:
        self._outbox.put_nowait(rt.server_event(self.ids, type_, **fields))

    def error(self, code: str, message: str, event_id: str | None = None, param: str | None = None) -> None:
        self.metrics.errors.labels(code).inc()
        self._outbox.put_nowait(rt.error_event(self.ids, code, message, event_id, param))

    def stage_error(self, err: StageUnavailable) -> None:
        log.warning("session %s: %s", self.id, err)
        self.error("upstream_unavailable", str(err))

    async def ensure(self, link: StageLink) -> bool:
        """Reconnects a lost stage link on demand; False (and an error event) if it can't."""
        if link.connected:
            return True
        hello = {"vad": self._vad_start, "stt": lambda: SttStart(sample_rate=STAGE_RATE, language=self.settings.language)}.get(link.stage)
        try:
            await link.connect(hello() if hello else None)
        except StageUnavailable as err:
            self.stage_error(err)
            return False
        return True

    def after(self, seconds: float, check: Callable[[], Awaitable[None]]) -> None:
        """Runs ``check`` after ``seconds`` (a watchdog: it looks at the state then and does nothing if all is well)."""
        loop = asyncio.get_running_loop()

        def fire() -> None:
            task = loop.create_task(check())
            self._timers.add(task)
            task.add_done_callback(self._timers.discard)

        self._timers.add(loop.call_later(seconds, fire))

    async def send_to(self, link: StageLink, message: Any, report: bool = True) -> bool:
        """Sends to a stage, reconnecting if needed; False (and an error event when ``report``) if it can't."""
        if not (await self.ensure(link) if report else link.connected):
            return False
        try:
            await link.send(message)
        except StageUnavailable as err:
            if report:
                self.stage_error(err)
            return False
        return True

    # ------------------------------------------------------------------ client events

    async def _handle(self, event: Any) -> None:
        handler = {
            "session.update": self._session_update,
            "input_audio_buffer.append": self._append,
            "input_audio_buffer.commit": self._commit,
            "input_audio_buffer.clear": self._clear,
            "conversation.item.create": self._item_create,
            "conversation.item.truncate": self._truncate,
            "conversation.item.retrieve": self._retrieve,
            "response.create": self._response_create,
            "response.cancel": self._response_cancel,
        }[event.type]
        await handler(event)

    async def _session_update(self, event: rt.SessionUpdate) -> None:
        new, cfg = event.session, self.config
        audio = new.audio
        try:
            for fmt in (audio and audio.input and audio.input.format, audio and audio.output and audio.output.format):
                if fmt is not None:
                    if fmt.type != "audio/pcm":
                        raise AudioFormatError("unsupported_format", f"audio format {fmt.type!r} is not supported; use 'audio/pcm'")
                    check_rate(fmt.rate)
        except AudioFormatError as err:
            self.error(err.code, str(err), event.event_id, "session.audio")
            return
        if audio and audio.input:
            if audio.input.format and audio.input.format.rate != cfg.input_rate:
                cfg.input_rate = audio.input.format.rate
                self._in_resampler = StreamResampler(cfg.input_rate, STAGE_RATE)
            if "turn_detection" in audio.input.model_fields_set:
                cfg.turn_detection = audio.input.turn_detection
                await self._restart_vad()
        if audio and audio.output:
            if audio.output.format:
                cfg.output_rate = audio.output.format.rate
            cfg.voice = audio.output.voice or cfg.voice
        if new.instructions is not None:
            cfg.instructions = new.instructions
        if new.max_output_tokens is not None:
            cfg.max_output_tokens = None if new.max_output_tokens == "inf" else new.max_output_tokens
        self.emit("session.updated", session=cfg.describe(self.id, self.model))

    async def _restart_vad(self) -> None:
        # A new vad.start resets the VAD's stream clock, so the gateway's clock restarts with it.
        if self.turns.user_speaking:
            self.turns.abandon_user_turn()
        self.input_ms = 0.0
        self._arrivals.clear()
        await self.vad.close()
        await self.stt.close()
        await self.ensure(self.vad)
        await self.ensure(self.stt)

    async def _append(self, event: rt.InputAudioAppend) -> None:
        try:
            pcm = base64.b64decode(event.audio, validate=True)
        except (binascii.Error, ValueError):
            self.error("invalid_audio", "input_audio_buffer.append: 'audio' is not valid base64", event.event_id, "audio")
            return
        if len(pcm) % 2:
            self.error("invalid_audio", f"PCM16 audio must have an even number of bytes, got {len(pcm)}", event.event_id, "audio")
            return
        pcm16k = self._in_resampler.process(pcm)
        if not pcm16k:
            return
        self.input_ms += len(pcm16k) / 2 / STAGE_RATE * 1000.0
        self._arrivals.append((self.input_ms, time.perf_counter()))
        for link in (self.vad, self.stt):
            if await self.ensure(link):
                try:
                    await link.send_bytes(pcm16k)
                except StageUnavailable as err:
                    self.stage_error(err)

    def arrival_time(self, stream_ms: float) -> float | None:
        """When the audio at ``stream_ms`` reached the gateway (wall clock)."""
        for end_ms, at in self._arrivals:
            if end_ms >= stream_ms:
                return at
        return self._arrivals[-1][1] if self._arrivals else None

    async def _commit(self, event: rt.InputAudioCommit) -> None:
        await self.turns.manual_commit(event.event_id)

    async def _clear(self, event: rt.InputAudioClear) -> None:
        self.turns.clear_input()
        self.emit("input_audio_buffer.cleared")

    async def _item_create(self, event: rt.ConversationItemCreate) -> None:
        await self.turns.add_item(event.item, event.event_id)

    async def _truncate(self, event: rt.ConversationItemTruncate) -> None:
        self.turns.truncate(event.item_id, event.audio_end_ms, event.event_id)

    async def _retrieve(self, event: rt.ConversationItemRetrieve) -> None:
        item = self.turns.history.get(event.item_id)
        if item is None:
            self.error("item_not_found", f"no conversation item {event.item_id!r}", event.event_id, "item_id")
            return
        self.emit("conversation.item.retrieved", item=item.as_realtime())

    async def _response_create(self, event: rt.ResponseCreate) -> None:
        instructions = event.response.instructions if event.response else None
        await self.turns.start_reply(instructions=instructions, event_id=event.event_id)

    async def _response_cancel(self, event: rt.ResponseCancel) -> None:
        await self.turns.cancel_reply("client_cancelled", event.response_id, event.event_id)

    # ------------------------------------------------------------------ stage events

    async def _on_vad(self, message: Any) -> None:
        if isinstance(message, ErrorMessage):
            self.error(f"vad_{message.code}", message.message)
        elif self.config.turn_detection is not None:
            await self.turns.on_vad(message)

    async def _on_stt(self, message: Any) -> None:
        await self.turns.on_stt(message)

    async def _on_llm(self, message: Any) -> None:
        await self.turns.on_llm(message)

    async def _on_tts(self, message: Any) -> None:
        await self.turns.on_tts(message)

    async def _on_stage_lost(self, stage: str) -> None:
        self.error("upstream_lost", f"lost the connection to the {stage} service; it will be retried on next use")
        await self.turns.on_stage_lost(stage)
