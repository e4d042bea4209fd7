"""STT WebSocket app: ``WS /v1/stt``. Each connection keeps its stream's audio; one shared model decodes for all."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Coroutine
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import numpy as np
from fastapi import FastAPI, WebSocket
from pydantic import BaseModel

from services.common.audio import AudioFormatError, pcm16_to_float
from services.common.messages import (
    STT_CLIENT,
    ErrorMessage,
    SttBegin,
    SttCommit,
    SttFinal,
    SttPartial,
    SttStart,
)
from services.common.metrics import Metrics
from services.common.service import create_stage_app, frames, send
from services.stt.backends import backends
from services.stt.backends.base import SAMPLE_RATE
from services.stt.buffer import StreamBuffer
from services.stt.scheduler import FINAL, PARTIAL, Decoded, Decoder
from services.stt.settings import SttSettings

log = logging.getLogger(__name__)

# A partial decode started during a pause is wasted work that a final then waits behind (one model, one decode at a
# time): partials wait for audio that isn't silence.
PAUSE_PROBE_MS = 150
SILENCE_RMS = 10 ** (-45 / 20)  # -45 dBFS


class SttMetrics:
    def __init__(self, metrics: Metrics) -> None:
        self.final_seconds = metrics.histogram(
            "stt_final_seconds", "Decode time of final transcripts (model time, not queueing)."
        )
        self.partial_seconds = metrics.histogram("stt_partial_seconds", "Decode time of partial transcripts.")
        self.queued_seconds = metrics.histogram(
            "stt_queued_seconds", "From a request to a worker taking it (waiting for other decodes).", ("kind",)
        )
        self.decodes = metrics.counter(
            "stt_decodes",
            "Transcripts by how they were decoded: short (the speech's own frames) or full (30 s).",
            ("path",),
        )
        self.fallbacks = metrics.counter(
            "stt_short_decode_fallbacks",
            "Short decodes a guard did not trust, decoded again on the 30 s window.",
            ("guard",),
        )

    def count(self, decoded: Decoded) -> None:
        transcript = decoded.transcript
        if transcript is not None:
            self.decodes.labels("short" if transcript.short else "full").inc()
            if transcript.guard is not None:
                self.fallbacks.labels(transcript.guard).inc()


class SttSession:
    """One connection: its stream (audio by stream time, language, open utterance) and the decodes it started."""

    def __init__(self, ws: WebSocket, decoder: Decoder, settings: SttSettings, metrics: SttMetrics) -> None:
        self._ws = ws
        self._decoder = decoder
        self._settings = settings
        self._metrics = metrics
        self._send_lock = asyncio.Lock()  # finals, partials and errors are sent from different tasks
        self._tasks: set[asyncio.Task[None]] = set()
        self.buffer: StreamBuffer | None = None  # None until stt.start
        self.language: str | None = None
        self.utterance_ms: int | None = None  # start of the open utterance; None: no partials
        self._epoch = 0  # bumped whenever the open utterance changes, so stale partials are dropped
        self._next_partial_ms = 0
        self._partial: asyncio.Task[None] | None = None
        self._finals_pending = 0

    async def send(self, message: BaseModel) -> None:
        async with self._send_lock:
            await send(self._ws, message)

    async def error(self, code: str, message: str, request_id: str | None = None) -> None:
        await self.send(ErrorMessage(code=code, message=message, request_id=request_id))

    async def on_item(self, item: bytes | BaseModel) -> None:
        if isinstance(item, ErrorMessage):
            await self.send(item)
        elif isinstance(item, SttStart):
            await self._start(item)
        elif self.buffer is None:
            request_id = item.request_id if isinstance(item, SttCommit) else None
            await self.error("not_configured", "send stt.start before audio, stt.begin or stt.commit", request_id)
        elif isinstance(item, bytes):
            await self._audio(item)
        elif isinstance(item, SttBegin):
            self._begin(item)
        elif isinstance(item, SttCommit):
            await self._commit(item)

    async def close(self) -> None:
        """The client is gone: drop its waiting decodes (a running one finishes in its thread; nobody waits for it)."""
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, return_exceptions=True)

    # ------------------------------------------------------------------ client messages

    async def _start(self, start: SttStart) -> None:
        if start.sample_rate != SAMPLE_RATE:
            await self.error("invalid_sample_rate", f"STT takes {SAMPLE_RATE} Hz audio, got {start.sample_rate} Hz")
            return
        language = start.language or self._settings.language
        if language is not None and not self._decoder.backend.supports_language(language):
            await self.error("invalid_language", f"language {language!r} is not supported by this model")
            return
        # A new stt.start restarts the stream: stream time begins again at 0. Commits already taken are still answered.
        self.buffer = StreamBuffer(SAMPLE_RATE, self._settings.max_buffer_s)
        self.language = language
        self._close_utterance()

    async def _audio(self, pcm: bytes) -> None:
        assert self.buffer is not None
        try:
            samples = pcm16_to_float(pcm)
        except AudioFormatError as err:
            await self.error(err.code, str(err))
            return
        self.buffer.append(samples)
        self._maybe_partial()

    def _begin(self, begin: SttBegin) -> None:
        if self.utterance_ms == begin.start_ms:
            return  # the same utterance goes on
        self.utterance_ms = begin.start_ms
        self._epoch += 1
        self._next_partial_ms = begin.start_ms + self._settings.partial_interval_ms

    async def _commit(self, commit: SttCommit) -> None:
        buffer = self.buffer
        assert buffer is not None
        if commit.end_ms is not None and commit.end_ms < commit.start_ms:
            await self.error(
                "invalid_range", f"end_ms {commit.end_ms} is before start_ms {commit.start_ms}", commit.request_id
            )
            return
        start, end = buffer.clip_ms(commit.start_ms, commit.end_ms)
        if end <= start:
            wanted = f"[{commit.start_ms}, {'newest' if commit.end_ms is None else commit.end_ms})"
            held = f"[{buffer.start_ms}, {buffer.end_ms})"
            await self.error(
                "invalid_range", f"range {wanted} ms holds no audio; the buffer holds {held} ms", commit.request_id
            )
            return
        audio = buffer.read(start, end)  # a copy: later audio or trimming does not change what this commit decodes
        if not commit.keep_open:
            self._close_utterance()
        self._finals_pending += 1
        self._spawn(self._final(commit.request_id, audio, self.language))

    # ------------------------------------------------------------------ decodes

    def _close_utterance(self) -> None:
        self.utterance_ms = None
        self._epoch += 1

    def _maybe_partial(self) -> None:
        interval = self._settings.partial_interval_ms
        if not interval or self.utterance_ms is None or self.buffer is None:
            return
        if self.buffer.end_ms < self._next_partial_ms:
            return
        if self._finals_pending or (self._partial is not None and not self._partial.done()):
            return  # one decode per stream at a time; the next frame tries again
        if not self._newest_audio_is_voiced():
            return  # a pause: the text won't change, and the turn's final may be asked for any moment now
        self._next_partial_ms = self.buffer.end_ms + interval
        self._partial = self._spawn(self._partial_transcript(self.utterance_ms, self._epoch, self.language))

    def _newest_audio_is_voiced(self) -> bool:
        """Whether the last PAUSE_PROBE_MS of audio has any energy (cheap; not a VAD, just "not silence")."""
        assert self.buffer is not None
        start, end = self.buffer.clip_ms(self.buffer.end_ms - PAUSE_PROBE_MS, None)
        newest = self.buffer.read(start, end)
        return bool(len(newest)) and float(np.sqrt(np.mean(newest * newest))) > SILENCE_RMS

    async def _final(self, request_id: str, audio: np.ndarray, language: str | None) -> None:
        try:
            decoded = await self._decoder.decode(audio, language, FINAL)
        except Exception as exc:  # a failed decode is this request's error, not the connection's end
            log.exception("stt: final decode failed")
            await self.error("decode_failed", f"{type(exc).__name__}: {exc}", request_id)
            return
        finally:
            self._finals_pending -= 1
        transcript = decoded.transcript
        assert transcript is not None  # finals fall back to the 30 s window rather than give none
        self._metrics.final_seconds.observe(decoded.decode_s)
        self._metrics.queued_seconds.labels("final").observe(decoded.queued_s)
        self._metrics.count(decoded)
        audio_ms = round(len(audio) * 1000 / SAMPLE_RATE)
        final = SttFinal(
            request_id=request_id,
            text=transcript.text,
            language=transcript.language,
            audio_ms=audio_ms,
            decode_ms=round(decoded.decode_s * 1000, 1),
            queued_ms=round(decoded.queued_s * 1000, 1),  # waiting for a free worker (other streams' decodes)
            avg_logprob=transcript.avg_logprob,
            no_speech_prob=transcript.no_speech_prob,
        )
        await self.send(final)

    async def _partial_transcript(self, start_ms: int, epoch: int, language: str | None) -> None:
        def newest_audio() -> np.ndarray | None:
            """The utterance's audio when a worker takes the partial, not when it was asked for; None: moot."""
            if epoch != self._epoch or self.buffer is None:
                return None  # committed or restarted while waiting for the model
            start, end = self.buffer.clip_ms(start_ms, None)
            return self.buffer.read(start, end) if end > start else None

        try:
            decoded = await self._decoder.decode(newest_audio, language, PARTIAL)
        except Exception:  # partials are best-effort
            log.exception("stt: partial decode failed")
            return
        if decoded.transcript is None:
            return  # moot, or a short decode the guards did not trust (partials never take the 30 s path)
        self._metrics.partial_seconds.observe(decoded.decode_s)
        self._metrics.queued_seconds.labels("partial").observe(decoded.queued_s)
        self._metrics.count(decoded)
        if epoch == self._epoch:  # after a commit the final supersedes it
            await self.send(SttPartial(start_ms=start_ms, text=decoded.transcript.text))

    def _spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.create_task(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task


def create_app(settings: SttSettings | None = None) -> FastAPI:
    settings = settings or SttSettings()
    build_backend = backends.get(settings.backend)  # an unknown name stops the service now, with one line
    metrics = Metrics()
    stt_metrics = SttMetrics(metrics)
    workers = settings.decode_workers()

    def load() -> Decoder:
        backend = build_backend(settings)
        # Warm-up, on every worker at once: 1 s of silence (which also takes the short decode's fallback path).
        with ThreadPoolExecutor(workers) as pool:
            silence = np.zeros(SAMPLE_RATE, dtype=np.float32)
            list(pool.map(lambda _: backend.transcribe(silence, settings.language), range(workers)))
        log.info("stt: %d decode worker(s), %d thread(s) each", workers, settings.decode_threads())
        return Decoder(backend, workers)

    async def handle(ws: WebSocket, decoder: Decoder) -> None:
        session = SttSession(ws, decoder, settings, stt_metrics)
        try:
            async for item in frames(ws, STT_CLIENT, settings.max_message_bytes):
                await session.on_item(item)
        finally:
            await session.close()

    return create_stage_app("stt", settings, load, "/v1/stt", handle, metrics)
