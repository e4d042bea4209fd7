"""One TTS connection: text pieces spoken strictly in order, each streamed as it is synthesised, cancellable at once."""

from __future__ import annotations

import asyncio
import logging
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

from fastapi import WebSocket
from prometheus_client import Counter, Histogram
from pydantic import BaseModel

from services.common.audio import duration_ms
from services.common.messages import ErrorMessage, TtsDone, TtsSpeak, TtsStarted
from services.common.service import send, send_bytes
from services.tts.backends.base import TtsBackend
from services.tts.cleanup import is_speakable
from services.tts.spoken_text import spoken_text
from services.tts.voices import Voices

log = logging.getLogger(__name__)

END = object()  # the worker's last item for a piece


@dataclass
class TtsMetrics:
    first_audio: Histogram
    audio_seconds: Counter


@dataclass(eq=False)
class Piece:
    request_id: str
    text: str
    received: float  # perf_counter
    language: str | None = None  # tts.speak's language: which voice speaks it (services/tts/voices.py)
    rate: int = 0  # the sample rate of its voice, once chosen
    stop: threading.Event = field(default_factory=threading.Event)  # tells the worker thread to quit
    cancelled: bool = False  # its cancelled tts.done went out: nothing more may be sent for it
    finished: bool = False  # its normal tts.done went out: a cancel no longer applies
    audio_bytes: int = 0
    first_audio_ms: float | None = None


def produce(
    backend: TtsBackend, text: str, stop: threading.Event, frame_bytes: int, emit: Callable[[object], None]
) -> None:
    """Worker thread: synthesises ``text`` and emits frames of ``frame_bytes`` (the last may be shorter), then END."""
    try:
        pending = b""
        for chunk in backend.synthesize(text, stop):
            if stop.is_set():
                break
            pending += chunk
            whole = len(pending) - len(pending) % frame_bytes
            for start in range(0, whole, frame_bytes):
                emit(pending[start : start + frame_bytes])
            pending = pending[whole:]
        if pending and not stop.is_set():
            emit(pending)
        emit(END)
    except Exception as exc:  # handed to the loop, which reports it to the client
        emit(exc)


class TtsConnection:
    """Holds the queue of pieces; ``run`` is the speaker task, the other methods serve the receive loop."""

    def __init__(self, ws: WebSocket, voices: Voices, frame_ms: int, metrics: TtsMetrics) -> None:
        self._ws = ws
        self._voices = voices
        self._frame_ms = frame_ms
        self._metrics = metrics
        # Both tasks send; the lock orders them, and checking ``cancelled`` under it keeps a piece's frames
        # from following its cancelled tts.done.
        self._send_lock = asyncio.Lock()
        self._pending: deque[Piece] = deque()
        self._wake = asyncio.Event()
        self._current: Piece | None = None
        self._free_since = time.perf_counter()
        # One worker per connection: pieces synthesise one at a time here, and never wait behind other sessions.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tts-synth")

    async def send(self, message: BaseModel) -> bool:
        async with self._send_lock:
            return await send(self._ws, message)

    def speak(self, message: TtsSpeak) -> None:
        self._pending.append(Piece(message.request_id, message.text, time.perf_counter(), message.language))
        self._wake.set()

    async def cancel(self, request_id: str | None) -> None:
        """Stops the current piece and drops queued ones of ``request_id`` (None: all); unknown ids are a no-op."""
        hit: list[Piece] = []
        current = self._current
        if (
            current is not None
            and not current.finished
            and not current.cancelled
            and request_id in (None, current.request_id)
        ):
            hit.append(current)
        kept: deque[Piece] = deque()
        for piece in self._pending:
            (hit if request_id in (None, piece.request_id) else kept).append(piece)
        self._pending = kept
        for piece in hit:  # marked before any await, so the speaker cannot slip a frame in between
            piece.cancelled = True
            piece.stop.set()
        for piece in hit:
            self._count_audio(piece)
            await self.send(self._done(piece))

    async def run(self) -> None:
        while True:
            while not self._pending:
                self._wake.clear()
                await self._wake.wait()
            piece = self._pending.popleft()
            self._current = piece
            try:
                await self._speak(piece)
            except Exception:  # a bug with one piece must not silence the rest of the connection
                log.exception("tts: speaking %r failed", piece.request_id)
            finally:
                self._current = None
                self._free_since = time.perf_counter()

    async def close(self, speaker: asyncio.Task[None]) -> None:
        for piece in [*self._pending, *([self._current] if self._current else [])]:
            piece.stop.set()
        speaker.cancel()
        try:
            await speaker
        except asyncio.CancelledError:
            pass
        except Exception:
            log.exception("tts: speaker task failed")
        self._executor.shutdown(wait=False, cancel_futures=True)

    # ------------------------------------------------------------------ speaker internals

    async def _speak(self, piece: Piece) -> None:
        # Timed from when synthesis could start: on receipt, or when the piece before it finished.
        t0 = max(piece.received, self._free_since)
        text = spoken_text(piece.text)  # no markup, symbols and abbreviations in words
        loop = asyncio.get_running_loop()
        # Off the loop: the first piece in a new language builds its voice (a few ms; espeak-ng probes it).
        backend: TtsBackend = await loop.run_in_executor(self._executor, self._voices.for_language, piece.language)
        piece.rate = backend.sample_rate
        frame_bytes = max(2, piece.rate * self._frame_ms // 1000 * 2)
        if not await self._send_for(piece, TtsStarted(request_id=piece.request_id, sample_rate=piece.rate)):
            return
        if not is_speakable(text):
            await self._finish(piece)
            return
        items: asyncio.Queue[object] = asyncio.Queue()

        def emit(item: object) -> None:
            try:
                loop.call_soon_threadsafe(items.put_nowait, item)
            except RuntimeError:  # the loop has closed (server shutting down): stop synthesising
                piece.stop.set()

        worker = loop.run_in_executor(self._executor, produce, backend, text, piece.stop, frame_bytes, emit)
        error: Exception | None = None
        while (item := await items.get()) is not END:
            if isinstance(item, Exception):
                error = item
                break
            if piece.cancelled:
                continue  # drain until the worker notices ``stop``
            assert isinstance(item, bytes)
            if piece.first_audio_ms is None:
                piece.first_audio_ms = (time.perf_counter() - t0) * 1000.0
                self._metrics.first_audio.observe(piece.first_audio_ms / 1000.0)
            if await self._send_for(piece, item):
                piece.audio_bytes += len(item)
            # A sentence arrives as a burst of frames that would otherwise go out without yielding: let a cancel
            # (and other connections) in between frames.
            await asyncio.sleep(0)
        await worker
        if error is not None:
            log.error("tts: synthesis of %r failed: %r", piece.request_id, error)
            message = f"synthesis failed: {type(error).__name__}: {error}"
            await self._send_for(
                piece, ErrorMessage(code="synthesis_failed", message=message, request_id=piece.request_id)
            )
        await self._finish(piece)

    async def _send_for(self, piece: Piece, payload: BaseModel | bytes) -> bool:
        async with self._send_lock:
            if piece.cancelled:
                return False
            if isinstance(payload, bytes):
                return await send_bytes(self._ws, payload)
            return await send(self._ws, payload)

    async def _finish(self, piece: Piece) -> None:
        async with self._send_lock:
            if piece.cancelled:
                return  # cancel() already answered for it
            piece.finished = True
            self._count_audio(piece)
            await send(self._ws, self._done(piece))

    def _done(self, piece: Piece) -> TtsDone:
        return TtsDone(
            request_id=piece.request_id,
            cancelled=piece.cancelled,
            first_audio_ms=None if piece.first_audio_ms is None else round(piece.first_audio_ms, 1),
            audio_ms=round(duration_ms(piece.audio_bytes, piece.rate), 1) if piece.rate else 0.0,
        )

    def _count_audio(self, piece: Piece) -> None:
        if piece.rate:
            self._metrics.audio_seconds.inc(duration_ms(piece.audio_bytes, piece.rate) / 1000.0)
