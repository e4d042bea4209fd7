"""Scripted stand-ins for the four stage services, so the gateway can be tested in seconds without models.

Each fake is a real WebSocket server on 127.0.0.1 (one background event-loop thread runs all four) that speaks its
stage's contract (services/common/messages.py) by the real service's rules:

- VAD: ``vad.start`` then PCM16; each 32 ms chunk is voiced when its RMS reaches ``VOICED_RMS`` and goes through the
  real service's Segmenter, so speech_started / pause / speech_stopped carry the same fields, by the same rules
  (min_speech_ms, min_silence_ms, speech_pad_ms, pause_ms), in stream time counted from the bytes since ``vad.start``.
- STT: ``stt.start`` restarts the stream (time 0) in the real StreamBuffer; ``stt.commit`` of a range that holds no
  audio is answered with ``invalid_range`` as the real one; a final's text names the tone-word levels it decoded.
- LLM: ``llm.generate`` streams "You said <last user message>. That is all." word by word, then ``llm.done``;
  a new request or ``llm.cancel`` stops the running one (its ``llm.done`` says cancelled).
- TTS: pieces spoken in order: ``tts.started`` (16 kHz), FRAMES_PER_WORD 20 ms frames per word, ``tts.done``;
  ``tts.cancel`` answers each hit piece with a cancelled ``tts.done`` and nothing more is sent for it.

Control (from the test's thread): ``refuse_connections``, ``delay_accept``, ``hold_accepts``/``release_accepts``,
``await drop_connections()``; the STT also ``hold_finals``/``release_finals``, the TTS ``hold_audio``/``release_audio``
and ``frame_delay_s``, the LLM ``token_delay_s``. What each got is in ``connections`` (one ``Connection`` per
WebSocket, in order); the base of it all is fake_stage_base.py.
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import deque
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np
from pydantic import BaseModel

from services.common.messages import (
    LLM_CLIENT,
    STT_CLIENT,
    TTS_CLIENT,
    VAD_CLIENT,
    ErrorMessage,
    LlmCancel,
    LlmDelta,
    LlmDone,
    LlmGenerate,
    SttBegin,
    SttCommit,
    SttFinal,
    SttStart,
    TtsCancel,
    TtsDone,
    TtsSpeak,
    TtsStarted,
    VadStart,
)
from services.stt.buffer import StreamBuffer
from services.vad.segmenter import Segmenter, SegmenterConfig
from tests.fast.fake_stage_base import Connection, FakeStage, Stream, first_of, stopped_or_after
from tests.fast.tone_words import SAMPLE_RATE, to_pcm16, tone, transcribe

VOICED_RMS = 0.01  # about -40 dBFS: every tone word is above it, silence below
VAD_CHUNK = 512  # the real VAD's 32 ms chunk
VAD_DEFAULTS: dict[str, int] = {"min_silence_ms": 250, "min_speech_ms": 100, "speech_pad_ms": 100, "pause_ms": 0}
FRAMES_PER_WORD = 5  # TTS: 100 ms of audio per word
TTS_FRAME = SAMPLE_RATE // 50 * 2  # 20 ms of PCM16


# --------------------------------------------------------------------------- VAD


class VadStream(Stream):
    def __init__(self, conn: Connection) -> None:
        super().__init__(conn)
        self.segmenter: Segmenter | None = None
        self.pending = np.zeros(0, dtype=np.float32)
        self.chunks_done = 0

    async def on_message(self, message: Any) -> None:
        if isinstance(message, VadStart):
            cfg = {k: v if (v := getattr(message, k)) is not None else d for k, d in VAD_DEFAULTS.items()}
            self.segmenter = Segmenter(
                SegmenterConfig(
                    threshold=0.5,
                    min_silence_ms=cfg["min_silence_ms"],
                    speech_pad_ms=cfg["speech_pad_ms"],
                    pause_ms=cfg["pause_ms"],
                    min_speech_ms=cfg["min_speech_ms"],
                )
            )
            self.pending, self.chunks_done = np.zeros(0, dtype=np.float32), 0  # stream time restarts at 0

    async def on_audio(self, pcm: bytes) -> None:
        if self.segmenter is None:
            await self.conn.send(ErrorMessage(code="not_configured", message="send vad.start before audio"))
            return
        self.pending = np.concatenate([self.pending, np.frombuffer(pcm, "<i2").astype(np.float32) / 32768])
        chunk_ms = VAD_CHUNK * 1000 // SAMPLE_RATE
        while len(self.pending) >= VAD_CHUNK:
            chunk, self.pending = self.pending[:VAD_CHUNK], self.pending[VAD_CHUNK:]
            voiced = float(np.sqrt(np.mean(np.square(chunk)))) >= VOICED_RMS
            start_ms = self.chunks_done * chunk_ms
            self.chunks_done += 1
            for event in self.segmenter.push(1.0 if voiced else 0.0, start_ms, start_ms + chunk_ms):
                await self.conn.send(event)


class FakeVad(FakeStage):
    stage, adapter = "vad", VAD_CLIENT

    def open_stream(self, conn: Connection) -> Stream:
        return VadStream(conn)


# --------------------------------------------------------------------------- STT


class SttStream(Stream):
    def __init__(self, conn: Connection, stage: FakeStt) -> None:
        super().__init__(conn)
        self.stage = stage
        self.buffer: StreamBuffer | None = None
        self.language = "en"

    async def on_message(self, message: Any) -> None:
        if isinstance(message, SttStart):
            self.stage.starts.append(message)
            if message.language and message.language not in (self.stage.languages or {message.language}):
                return await self.conn.send(ErrorMessage(code="invalid_language", message=f"no {message.language!r}"))
            self.buffer = StreamBuffer(SAMPLE_RATE, 120.0)  # a new stt.start restarts stream time at 0
            self.language = message.language or "en"  # what a final says; None: detect, and this fake hears English
        elif self.buffer is None:
            request_id = message.request_id if isinstance(message, SttCommit) else None
            await self.conn.send(
                ErrorMessage(code="not_configured", message="send stt.start first", request_id=request_id)
            )
        elif isinstance(message, SttCommit):
            await self._commit(message, self.buffer)
        elif isinstance(message, SttBegin):
            pass  # partials are optional; this fake sends none

    async def on_audio(self, pcm: bytes) -> None:
        if self.buffer is None:
            await self.conn.send(ErrorMessage(code="not_configured", message="send stt.start before audio"))
            return
        self.buffer.append(np.frombuffer(pcm, "<i2").astype(np.float32) / 32768)

    async def _commit(self, commit: SttCommit, buffer: StreamBuffer) -> None:
        rid = commit.request_id
        if commit.end_ms is not None and commit.end_ms < commit.start_ms:
            message = f"end_ms {commit.end_ms} is before start_ms {commit.start_ms}"
            await self.conn.send(ErrorMessage(code="invalid_range", message=message, request_id=rid))
            return
        start, end = buffer.clip_ms(commit.start_ms, commit.end_ms)
        if end <= start:
            held = f"[{buffer.start_ms}, {buffer.end_ms})"
            message = f"range [{commit.start_ms}, {commit.end_ms}) ms holds no audio; the buffer holds {held} ms"
            await self.conn.send(ErrorMessage(code="invalid_range", message=message, request_id=rid))
            return
        audio = buffer.read(start, end)  # taken now: later audio does not change what this commit decodes
        text = transcribe(audio)
        self.stage.decoded.append((commit.start_ms, commit.end_ms, text))
        self.spawn(self._final(rid, text, round(len(audio) * 1000 / SAMPLE_RATE)))

    async def _final(self, request_id: str, text: str, audio_ms: int) -> None:
        await self.stage.finals_open.wait()  # held by the test: a decode that takes as long as the test wants
        await self.conn.send(
            SttFinal(request_id=request_id, text=text, language=self.language, audio_ms=audio_ms, decode_ms=0.0)
        )


class FakeStt(FakeStage):
    stage, adapter = "stt", STT_CLIENT

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.finals_open = asyncio.Event()
        super().__init__(loop)

    def reset(self) -> None:
        super().reset()
        self.decoded: list[tuple[int, int | None, str]] = []  # (start_ms, end_ms, text) of every commit taken
        self.starts: list[SttStart] = []  # every stt.start received
        self.languages: set[str] | None = None  # the languages a stt.start may pin (None: any)
        self._apply(self.finals_open.set)

    def hold_finals(self) -> None:
        """Commits are taken but their ``stt.final`` waits until ``release_finals``."""
        self._apply(self.finals_open.clear)

    def release_finals(self) -> None:
        self._apply(self.finals_open.set)

    def open_stream(self, conn: Connection) -> Stream:
        return SttStream(conn, self)


# --------------------------------------------------------------------------- LLM


def reply_to(messages: list[Any]) -> str:
    said = next((m.content for m in reversed(messages) if m.role == "user"), "nothing").strip().rstrip(".!?")
    return f"You said {said}. That is all."


@dataclass
class Generation:
    request_id: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    task: asyncio.Task[None] | None = None


class LlmStream(Stream):
    def __init__(self, conn: Connection, stage: FakeLlm) -> None:
        super().__init__(conn)
        self.stage = stage
        self.current: Generation | None = None

    async def on_message(self, message: Any) -> None:
        if isinstance(message, LlmGenerate):
            previous = self.current
            if previous is not None:
                previous.stop.set()  # one reply per connection: a new request replaces the running one
            gen = Generation(message.request_id)
            self.stage.prompts.append(message.messages)
            gen.task = self.spawn(self._run(previous, gen, reply_to(message.messages)))
            self.current = gen
        elif isinstance(message, LlmCancel) and self.current and self.current.request_id == message.request_id:
            self.current.stop.set()

    async def _run(self, previous: Generation | None, gen: Generation, text: str) -> None:
        if previous is not None and previous.task is not None:
            await asyncio.wait([previous.task])  # the replaced reply's llm.done goes out first
        started, sent = time.perf_counter(), 0
        for i, word in enumerate(text.split()):
            await stopped_or_after(gen.stop, self.stage.token_delay_s)
            if gen.stop.is_set():
                break
            await self.conn.send(LlmDelta(request_id=gen.request_id, text=word if i == 0 else " " + word))
            sent += 1
        ttft = round((time.perf_counter() - started) * 1000, 1) if sent else None
        reason: Literal["cancelled", "stop"] = "cancelled" if gen.stop.is_set() else "stop"
        await self.conn.send(LlmDone(request_id=gen.request_id, finish_reason=reason, ttft_ms=ttft, tokens=sent))


class FakeLlm(FakeStage):
    stage, adapter = "llm", LLM_CLIENT

    def reset(self) -> None:
        super().reset()
        self.token_delay_s = 0.0
        self.prompts: list[list[Any]] = []  # the messages of every llm.generate

    def open_stream(self, conn: Connection) -> Stream:
        return LlmStream(conn, self)


# --------------------------------------------------------------------------- TTS


@dataclass(eq=False)
class Piece:
    request_id: str
    text: str
    stop: asyncio.Event = field(default_factory=asyncio.Event)
    cancelled: bool = False
    finished: bool = False
    audio_bytes: int = 0


class TtsStream(Stream):
    def __init__(self, conn: Connection, stage: FakeTts) -> None:
        super().__init__(conn)
        self.stage = stage
        self.pending: deque[Piece] = deque()
        self.wake = asyncio.Event()
        self.current: Piece | None = None
        self.spawn(self._speaker())

    async def on_message(self, message: Any) -> None:
        if isinstance(message, TtsSpeak):
            self.stage.spoken.append(message)
            self.pending.append(Piece(message.request_id, message.text))
            self.wake.set()
        elif isinstance(message, TtsCancel):
            rid = message.request_id
            hit = [
                p for p in [self.current] if p and not p.finished and not p.cancelled and rid in (None, p.request_id)
            ]
            hit += [p for p in self.pending if rid in (None, p.request_id)]
            self.pending = deque(p for p in self.pending if p not in hit)
            for piece in hit:
                piece.cancelled = True
                piece.stop.set()
            for piece in hit:
                await self.conn.send(self._done(piece))

    async def _speaker(self) -> None:
        frame = to_pcm16(tone(2, 20))
        while True:
            while not self.pending:
                self.wake.clear()
                await self.wake.wait()
            piece = self.current = self.pending.popleft()
            if not await self._send_for(piece, TtsStarted(request_id=piece.request_id, sample_rate=SAMPLE_RATE)):
                continue
            for index in range(max(1, len(piece.text.split())) * FRAMES_PER_WORD):
                if (
                    self.stage.hold_after is not None
                    and index >= self.stage.hold_after
                    and not self.stage.audio_open.is_set()
                ):
                    await first_of(self.stage.audio_open, piece.stop)  # held by the test until released or cancelled
                await stopped_or_after(piece.stop, self.stage.frame_delay_s)
                if not await self._send_for(piece, frame):
                    break
                piece.audio_bytes += len(frame)
                self.stage.frames_sent += 1
            if not piece.cancelled:
                piece.finished = True
                await self.conn.send(self._done(piece))
            self.current = None

    async def _send_for(self, piece: Piece, payload: BaseModel | bytes) -> bool:
        if piece.cancelled:
            return False  # nothing follows a piece's cancelled tts.done
        await self.conn.send(payload)
        return True

    @staticmethod
    def _done(piece: Piece) -> TtsDone:
        return TtsDone(
            request_id=piece.request_id, cancelled=piece.cancelled, audio_ms=piece.audio_bytes / 2 / SAMPLE_RATE * 1000
        )


class FakeTts(FakeStage):
    stage, adapter = "tts", TTS_CLIENT

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.audio_open = asyncio.Event()
        super().__init__(loop)

    def reset(self) -> None:
        super().reset()
        self.frame_delay_s = 0.0
        self.hold_after: int | None = None
        self.frames_sent = 0
        self.spoken: list[TtsSpeak] = []  # every tts.speak received
        self._apply(self.audio_open.set)

    def hold_audio(self, after_frames: int = 1) -> None:
        """Each piece sends ``after_frames`` frames, then waits until ``release_audio`` or its cancel."""

        def hold() -> None:
            self.hold_after = after_frames
            self.audio_open.clear()

        self._apply(hold)

    def release_audio(self) -> None:
        self._apply(self.audio_open.set)

    def open_stream(self, conn: Connection) -> Stream:
        return TtsStream(conn, self)


# --------------------------------------------------------------------------- all four


class FakeStages:
    """The four fakes on one event loop in a daemon thread, so the test's own loop stays free."""

    def __init__(self) -> None:
        self.loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self.loop.run_forever, name="fake-stages", daemon=True)
        self._thread.start()
        self.vad, self.stt, self.llm, self.tts = (
            FakeVad(self.loop),
            FakeStt(self.loop),
            FakeLlm(self.loop),
            FakeTts(self.loop),
        )
        self.all: tuple[FakeStage, ...] = (self.vad, self.stt, self.llm, self.tts)
        self._call(lambda: asyncio.gather(*(s.start() for s in self.all)))

    def urls(self) -> dict[str, str]:
        return {s.stage: s.url for s in self.all}

    def reset(self) -> None:
        for s in self.all:
            s.reset()

    def close(self) -> None:
        self._call(lambda: asyncio.gather(*(s.stop() for s in self.all)))
        self.loop.call_soon_threadsafe(self.loop.stop)
        self._thread.join(timeout=10)

    def _call(self, make: Callable[[], Awaitable[Any]]) -> Any:
        async def run() -> Any:
            return await make()

        return asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)
