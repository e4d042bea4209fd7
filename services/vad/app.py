"""VAD WebSocket app: ``WS /v1/vad``. One segmenter and model state per connection."""

from __future__ import annotations

import numpy as np
from fastapi import FastAPI, WebSocket

from services.common.audio import AudioFormatError, pcm16_to_float
from services.common.messages import (
    VAD_CLIENT,
    ErrorMessage,
    VadSpeechStarted,
    VadSpeechStopped,
    VadStart,
)
from services.common.metrics import Metrics
from services.common.service import create_stage_app, frames, send
from services.vad.backend import CHUNK_SAMPLES, SAMPLE_RATE, VadModel, load_backend
from services.vad.segmenter import Segmenter, SegmenterConfig
from services.vad.settings import VadSettings

CHUNK_MS = CHUNK_SAMPLES * 1000 // SAMPLE_RATE


class VadStreamSession:
    """One client's stream: buffers audio into 32 ms chunks, scores them, emits events."""

    def __init__(self, model: VadModel, config: SegmenterConfig) -> None:
        self._stream = model.new_stream()
        self.segmenter = Segmenter(config)
        self._pending = np.zeros(0, dtype=np.float32)
        self._chunks_done = 0

    def feed(self, samples: np.ndarray):
        self._pending = np.concatenate([self._pending, samples])
        while len(self._pending) >= CHUNK_SAMPLES:
            chunk, self._pending = self._pending[:CHUNK_SAMPLES], self._pending[CHUNK_SAMPLES:]
            start_ms = self._chunks_done * CHUNK_MS
            self._chunks_done += 1
            yield from self.segmenter.push(self._stream.probability(chunk), start_ms, start_ms + CHUNK_MS)


def create_app(settings: VadSettings | None = None) -> FastAPI:
    settings = settings or VadSettings()
    metrics = Metrics()
    events_total = metrics.counter("vad_events_total", "Speech events emitted.", ("event",))
    holder: dict[str, VadModel] = {}

    def load_model() -> None:
        model = load_backend(settings.backend, settings.model_path)
        model.new_stream().probability(np.zeros(CHUNK_SAMPLES, dtype=np.float32))  # warm-up
        holder["model"] = model

    def config_for(start: VadStart) -> SegmenterConfig:
        return SegmenterConfig(
            threshold=start.threshold if start.threshold is not None else settings.threshold,
            min_silence_ms=start.min_silence_ms if start.min_silence_ms is not None else settings.min_silence_ms,
            speech_pad_ms=start.speech_pad_ms if start.speech_pad_ms is not None else settings.speech_pad_ms,
            pause_ms=start.pause_ms if start.pause_ms is not None else settings.pause_ms,
            min_speech_ms=start.min_speech_ms if start.min_speech_ms is not None else settings.min_speech_ms,
        )

    async def handle(ws: WebSocket) -> None:
        session: VadStreamSession | None = None
        async for item in frames(ws, VAD_CLIENT, settings.max_message_bytes):
            if isinstance(item, ErrorMessage):
                await send(ws, item)
            elif isinstance(item, VadStart):
                if item.sample_rate != SAMPLE_RATE:
                    await send(ws, ErrorMessage(code="invalid_sample_rate", message=f"VAD takes {SAMPLE_RATE} Hz audio, got {item.sample_rate} Hz"))
                    continue
                session = VadStreamSession(holder["model"], config_for(item))
            elif isinstance(item, bytes):
                if session is None:
                    await send(ws, ErrorMessage(code="not_configured", message="send vad.start before audio"))
                    continue
                try:
                    samples = pcm16_to_float(item)
                except AudioFormatError as err:
                    await send(ws, ErrorMessage(code=err.code, message=str(err)))
                    continue
                for event in session.feed(samples):
                    events_total.labels("started" if isinstance(event, VadSpeechStarted) else "stopped" if isinstance(event, VadSpeechStopped) else "pause").inc()
                    await send(ws, event)

    return create_stage_app("vad", settings, load_model, "/v1/vad", handle, metrics)
