"""One client conversation: the I/O around the turn machine.

Everything that happens to the session — client events, stage messages, lost links, timers — goes into one inbox,
and one task takes them in order: it hands each to the pure ``TurnMachine`` and carries out the commands it returns
(send to the client, send to a stage, start a timer). No transition is ever split by an await, and no two tasks race
over the session's state. Stage times are mapped onto the gateway's stream clock here, at the edge.
"""

from __future__ import annotations

import asyncio
import base64
import binascii
import contextlib
import logging
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from fastapi import WebSocket
from pydantic import BaseModel, TypeAdapter
from starlette.websockets import WebSocketDisconnect

from services.common import realtime as rt
from services.common import realtime_server as ev
from services.common.audio import AudioFormatError, StreamResampler, check_rate
from services.common.messages import (
    LLM_SERVER,
    STT_SERVER,
    TTS_SERVER,
    VAD_SERVER,
    ErrorMessage,
    SttBegin,
    SttCommit,
    SttPartial,
    SttStart,
    VadPause,
    VadSpeechResumed,
    VadSpeechStarted,
    VadSpeechStopped,
    VadStart,
)
from services.common.wire import WireError, decode
from services.gateway.commands import (
    AudioIn,
    Command,
    Emit,
    Event,
    FromStage,
    InputRestarted,
    Send,
    Stage,
    StageDown,
    StartTimer,
    TimerFired,
    TurnFinished,
)
from services.gateway.ids import Ids
from services.gateway.machine import TurnMachine
from services.gateway.metrics import GatewayMetrics
from services.gateway.session_state import SessionState
from services.gateway.settings import GatewaySettings
from services.gateway.stream_time import STAGE_RATE, StreamClock
from services.gateway.unsupported import unknown_event
from services.gateway.upstream import Replicas, StageFull, StageLink, StageUnavailable
from services.gateway.vad_start import vad_start

log = logging.getLogger(__name__)

STAGES: tuple[Stage, ...] = ("vad", "stt", "llm", "tts")
ADAPTERS: dict[Stage, TypeAdapter[Any]] = {"vad": VAD_SERVER, "stt": STT_SERVER, "llm": LLM_SERVER, "tts": TTS_SERVER}


@dataclass(frozen=True)
class ClientError:
    """A client frame that could not be taken: answered with an ``error`` event in its turn."""

    code: str
    message: str


Inbound = Event | rt.SessionUpdate | rt.InputAudioAppend | ClientError


def _refused_language(item: Inbound) -> bool:
    message = item.message if isinstance(item, FromStage) and item.stage == "stt" else None
    return isinstance(message, ErrorMessage) and message.code == "invalid_language"


class RealtimeSession:
    def __init__(
        self,
        ws: WebSocket,
        session_id: str,
        settings: GatewaySettings,
        metrics: GatewayMetrics,
        model: str,
        replicas: Mapping[str, Replicas],
    ) -> None:
        self.ws = ws
        self.id = session_id
        self.settings = settings
        self.metrics = metrics
        self.model = model
        self.ids = Ids(session_id)
        self.config = SessionState(language=settings.language)
        self.machine = TurnMachine(self.config, settings, self.ids)
        self.clock = StreamClock()
        self._in_resampler = StreamResampler(self.config.input_rate, STAGE_RATE)
        self._inbox: asyncio.Queue[Inbound | None] = asyncio.Queue()
        self._outbox: asyncio.Queue[dict[str, Any] | None] = asyncio.Queue()
        self._timers: list[asyncio.TimerHandle] = []
        timeout = settings.connect_timeout_s
        self.links: dict[Stage, StageLink] = {
            stage: StageLink(
                stage,
                replicas[stage],
                ADAPTERS[stage],
                self._reader_for(stage),
                self._down_for(stage),
                timeout,
                self._hello_for(stage),
            )
            for stage in STAGES
        }

    # ------------------------------------------------------------------ lifecycle

    async def run(self) -> None:
        writer = asyncio.create_task(self._write_loop(), name=f"{self.id}-writer")
        reader: asyncio.Task[None] | None = None
        refused = False
        try:
            refused = await self._connect_all()
            if refused:
                return
            self.send(ev.SessionCreated(session=self.config.describe(self.id, self.model)))
            reader = asyncio.create_task(self._read_loop(), name=f"{self.id}-reader")
            while (item := await self._inbox.get()) is not None:
                await self._take(item)
        finally:
            if reader is not None:
                reader.cancel()
            for timer in self._timers:
                timer.cancel()
            for link in self.links.values():
                await link.close()
            await self._outbox.put(None)
            await writer
            if refused:  # 1013, try again later: as the gateway's own limit answers
                with contextlib.suppress(RuntimeError, WebSocketDisconnect):
                    await self.ws.close(code=1013)

    async def _connect_all(self) -> bool:
        """Opens every stage link (each on the least loaded replica of its stage). True: a stage is full, and the
        client was told ``session_limit_reached`` at once: the session ends before it began."""
        results = await asyncio.gather(*(link.connect_now() for link in self.links.values()), return_exceptions=True)
        full = next((r for r in results if isinstance(r, StageFull)), None)
        if full is not None:
            log.warning("session %s refused: %s", self.id, full)
            self.send_error(full.code, str(full))
            return True
        for stage, result in zip(STAGES, results, strict=True):
            if isinstance(result, StageUnavailable):
                await self._feed(StageDown(stage, "upstream_unavailable", str(result)))
            elif isinstance(result, BaseException):
                raise result
        return False

    def _hello_for(self, stage: Stage) -> Callable[[], BaseModel | None]:
        """A new VAD or STT stream starts at the gateway's current stream time (its hello is made as it connects)."""

        def hello() -> BaseModel | None:
            if stage == "vad":
                self.clock.stage_started("vad")
                return self._vad_start()
            if stage == "stt":
                self.clock.stage_started("stt")
                return SttStart(sample_rate=STAGE_RATE, language=self.config.language)
            return None

        return hello

    def _down_for(self, stage: Stage) -> Callable[[str, str], None]:
        def down(code: str, message: str) -> None:
            self._inbox.put_nowait(StageDown(stage, code, message))

        return down

    def _vad_start(self) -> VadStart:
        return vad_start(self.config.turn_detection, self.settings.speculative_pause_ms)

    async def _read_loop(self) -> None:
        """Client frames into the inbox; the end of the connection ends the session."""
        limit = self.settings.max_message_bytes
        try:
            while True:
                frame = await self.ws.receive()
                if frame["type"] == "websocket.disconnect":
                    return
                text, data = frame.get("text"), frame.get("bytes")
                size = len(text) if text is not None else len(data or b"")
                if size > limit:
                    self._inbox.put_nowait(
                        ClientError("message_too_large", f"message of {size} bytes exceeds the {limit}-byte limit")
                    )
                elif text is None:
                    msg = "send audio as input_audio_buffer.append events (base64), not binary frames"
                    self._inbox.put_nowait(ClientError("unexpected_binary", msg))
                else:
                    try:
                        self._inbox.put_nowait(decode(rt.CLIENT_EVENTS, text))
                    except WireError as err:
                        code, message = unknown_event(text) if err.code == "unknown_type" else (err.code, err.message)
                        self._inbox.put_nowait(ClientError(code, message))
        except WebSocketDisconnect:
            return
        finally:
            self._inbox.put_nowait(None)

    async def _write_loop(self) -> None:
        while (event := await self._outbox.get()) is not None:
            try:
                await self.ws.send_json(event)
            except (WebSocketDisconnect, RuntimeError):
                return

    # ------------------------------------------------------------------ the inbox

    async def _take(self, item: Inbound) -> None:
        if isinstance(item, ClientError):
            self.send_error(item.code, item.message)
        elif isinstance(item, rt.SessionUpdate):
            await self._session_update(item)
        elif isinstance(item, rt.InputAudioAppend):
            await self._append(item)
        elif _refused_language(item) and self.config.language != self.settings.language:
            await self._language_refused()
        else:
            await self._feed(item)

    async def _feed(self, event: Event) -> None:
        """One event through the machine, and its commands carried out in order."""
        for command in self.machine.handle(event, time.perf_counter()):
            await self._execute(command)

    async def _execute(self, command: Command) -> None:
        if isinstance(command, Send):
            # Never waits for a connection: a link that is (re)connecting queues the message; a failure comes back
            # through the inbox as StageDown. A lost link restarts first, so that its new stream's clock maps the times.
            link = self.links[command.stage]
            if command.connect and link.down and not link.backing_off:
                link.reconnect()
            await link.send(self._to_stage_time(command.message), connect=command.connect)
        elif isinstance(command, Emit):
            self.send(command.event)
        elif isinstance(command, StartTimer):
            loop = asyncio.get_running_loop()
            self._timers = [t for t in self._timers if t.when() > loop.time()]
            self._timers.append(loop.call_later(command.seconds, self._inbox.put_nowait, TimerFired(command.key)))
        elif isinstance(command, TurnFinished):
            timings = " ".join(f"{k}={v:.0f}" for k, v in command.timings.items())
            log.info("session %s turn %s %s: %s", self.id, command.response_id, command.status, timings)
            self.metrics.observe_turn(command.timings, command.status)

    # ------------------------------------------------------------------ output

    def send(self, event: ev.ServerEvent) -> None:
        if isinstance(event, ev.ErrorEvent):
            self.metrics.errors.labels(event.error.code).inc()
        event.event_id = self.ids.next("event")
        self._outbox.put_nowait(ev.to_wire(event))

    def send_error(self, code: str, message: str, event_id: str | None = None, param: str | None = None) -> None:
        self.send(ev.ErrorEvent(error=ev.ErrorDetail(code=code, message=message, param=param, event_id=event_id)))

    # ------------------------------------------------------------------ client events the session owns

    async def _session_update(self, event: rt.SessionUpdate) -> None:
        new, cfg = event.session, self.config
        audio = new.audio
        try:
            for fmt in (audio and audio.input and audio.input.format, audio and audio.output and audio.output.format):
                if fmt:
                    if fmt.type != "audio/pcm":
                        raise AudioFormatError(
                            "unsupported_format", f"audio format {fmt.type!r} is not supported; use 'audio/pcm'"
                        )
                    check_rate(fmt.rate)
        except AudioFormatError as err:
            self.send_error(err.code, str(err), event.event_id, "session.audio")
            return
        restart_vad = restart_stt = False
        if audio and audio.input:
            if audio.input.format and audio.input.format.rate != cfg.input_rate:
                cfg.input_rate = audio.input.format.rate
                self._in_resampler = StreamResampler(cfg.input_rate, STAGE_RATE)
            if "turn_detection" in audio.input.model_fields_set:
                cfg.turn_detection = audio.input.turn_detection
                restart_vad = True
            pin = audio.input.transcription
            if pin is not None and "language" in pin.model_fields_set:  # absent: as it was; null: detect per turn
                language = pin.language.lower().replace("_", "-") if pin.language else None
                restart_stt, cfg.language = language != cfg.language, language
        if audio and audio.output:
            if audio.output.format:
                cfg.output_rate = audio.output.format.rate
            cfg.voice = audio.output.voice or cfg.voice
        if new.instructions is not None:
            cfg.instructions = new.instructions
        cfg.apply(new)  # output modalities, tools, tool choice
        if new.max_output_tokens is not None:
            cfg.max_output_tokens = None if new.max_output_tokens == "inf" else new.max_output_tokens
        restarts: tuple[tuple[Stage, bool], ...] = (("vad", restart_vad), ("stt", restart_stt))
        for stage, restart in restarts:
            if restart:
                await self._restart_input(stage)
        self.send(ev.SessionUpdated(session=cfg.describe(self.id, self.model)))

    async def _restart_input(self, stage: Stage) -> None:
        """The VAD's and STT's settings are fixed per stream: a new stream, starting at the current stream time."""
        await self.links[stage].close()
        await self._feed(InputRestarted())
        self.links[stage].reconnect()

    async def _language_refused(self) -> None:
        """The STT model lacks the pinned language (tiny.en speaks English only): back to the default language."""
        pinned, self.config.language = self.config.language, self.settings.language
        message = (
            f"the speech recognition model does not support language {pinned!r} (an English-only model such as "
            f"tiny.en takes 'en' only); the session's language is {self.config.language or 'detected'} again"
        )
        self.send_error("invalid_language", message, param="session.audio.input.transcription.language")
        await self._restart_input("stt")
        self.send(ev.SessionUpdated(session=self.config.describe(self.id, self.model)))

    async def _append(self, event: rt.InputAudioAppend) -> None:
        try:
            pcm = base64.b64decode(event.audio, validate=True)
        except (binascii.Error, ValueError):
            self.send_error(
                "invalid_audio", "input_audio_buffer.append: 'audio' is not valid base64", event.event_id, "audio"
            )
            return
        if len(pcm) % 2:
            msg = f"PCM16 audio must have an even number of bytes, got {len(pcm)}"
            self.send_error("invalid_audio", msg, event.event_id, "audio")
            return
        pcm16k = self._in_resampler.process(pcm)
        if not pcm16k:
            return
        for stage in ("vad", "stt"):
            await self.links[stage].send(pcm16k)  # a lost link reconnects; after a failed connect, audio waits
        await self._feed(AudioIn(self.clock.advance(len(pcm16k))))

    # ------------------------------------------------------------------ stage messages and stream time

    def _reader_for(self, stage: Stage) -> Any:
        async def on_frame(message: Any) -> None:
            # Mapped now: the stage's clock origin is this connection's (a reconnect changes it later).
            self._inbox.put_nowait(FromStage(stage, self._to_gateway_time(stage, message)))

        return on_frame

    def _to_gateway_time(self, stage: Stage, message: Any) -> Any:
        c = self.clock
        if isinstance(message, VadSpeechStarted):
            update = {
                "start_ms": c.from_stage("vad", message.start_ms),
                "voice_start_ms": c.from_stage("vad", message.voice_start_ms),
            }
        elif isinstance(message, VadPause):
            update = {"end_ms": c.from_stage("vad", message.end_ms)}
        elif isinstance(message, VadSpeechResumed):
            update = {"start_ms": c.from_stage("vad", message.start_ms)}
        elif isinstance(message, VadSpeechStopped):
            update = {
                "end_ms": c.from_stage("vad", message.end_ms),
                "voice_end_ms": c.from_stage("vad", message.voice_end_ms),
                "detected_ms": c.from_stage("vad", message.detected_ms),
            }
        elif isinstance(message, SttPartial):
            update = {"start_ms": c.from_stage("stt", message.start_ms)}
        else:
            return message
        return message.model_copy(update=update)

    def _to_stage_time(self, message: BaseModel) -> BaseModel:
        c = self.clock
        if isinstance(message, SttBegin):
            return message.model_copy(update={"start_ms": c.to_stage("stt", message.start_ms)})
        if isinstance(message, SttCommit):
            end = None if message.end_ms is None else c.to_stage("stt", message.end_ms)
            return message.model_copy(update={"start_ms": c.to_stage("stt", message.start_ms), "end_ms": end})
        return message
