"""VAD WebSocket app: ``WS /v1/vad``. One segmenter and model state per connection.

In the smart end-of-turn mode (the default) the service also loads Smart Turn v3.2 and keeps the last seconds of each
stream's audio, which the segmenter hands to the model at each pause (see services/vad/segmenter.py).
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np
from fastapi import FastAPI, WebSocket
from prometheus_client import Histogram

from services.common.audio import AudioFormatError, pcm16_to_float
from services.common.messages import (
    VAD_CLIENT,
    ErrorMessage,
    Message,
    VadSpeechResumed,
    VadSpeechStarted,
    VadSpeechStopped,
    VadStart,
)
from services.common.metrics import Metrics
from services.common.service import create_stage_app, frames, send
from services.vad.backends import backends
from services.vad.backends.base import CHUNK_SAMPLES, SAMPLE_RATE, VadModel
from services.vad.segmenter import Segmenter, SegmenterConfig
from services.vad.settings import VadSettings
from services.vad.smart_turn import WINDOW_SAMPLES, SmartTurnModel

CHUNK_MS = CHUNK_SAMPLES * 1000 // SAMPLE_RATE
SAMPLES_PER_MS = SAMPLE_RATE // 1000
EVENT_LABELS: dict[type, str] = {  # vad_events_total's
    VadSpeechStarted: "started",
    VadSpeechStopped: "stopped",
    VadSpeechResumed: "resumed",
}


@dataclass
class VadModels:
    vad: VadModel
    turn: SmartTurnModel | None  # None in the silence mode


class VadStreamSession:
    """One client's stream: buffers audio into 32 ms chunks, scores them, emits events.

    With an end-of-turn model it keeps the stream's last 8 s (the model's window) so the segmenter can ask about the
    turn so far; ``turn_seconds`` (if given) observes each model call's duration."""

    def __init__(
        self,
        model: VadModel,
        config: SegmenterConfig,
        turn_model: SmartTurnModel | None = None,
        turn_seconds: Histogram | None = None,
    ) -> None:
        self._stream = model.new_stream()
        self._turn_model, self._turn_seconds = turn_model, turn_seconds
        self.segmenter = Segmenter(config, self._ask_turn if turn_model is not None else None)
        self._pending = np.zeros(0, dtype=np.float32)
        self._chunks_done = 0
        self._audio = np.zeros(0, dtype=np.float32)  # the stream's recent audio, used only with a turn model
        self._audio_start = 0  # stream sample index of self._audio[0]

    def feed(self, samples: np.ndarray) -> Iterator[Message]:
        self._pending = np.concatenate([self._pending, samples])
        while len(self._pending) >= CHUNK_SAMPLES:
            chunk, self._pending = self._pending[:CHUNK_SAMPLES], self._pending[CHUNK_SAMPLES:]
            if self._turn_model is not None:
                self._keep(chunk)
            start_ms = self._chunks_done * CHUNK_MS
            self._chunks_done += 1
            yield from self.segmenter.push(self._stream.probability(chunk), start_ms, start_ms + CHUNK_MS)

    def _keep(self, chunk: np.ndarray) -> None:
        self._audio = np.concatenate([self._audio, chunk])
        if len(self._audio) >= 2 * WINDOW_SAMPLES:  # trim now and then, not at every chunk
            drop = len(self._audio) - WINDOW_SAMPLES
            self._audio, self._audio_start = self._audio[drop:], self._audio_start + drop

    def _ask_turn(self, start_ms: int, end_ms: int) -> float:
        assert self._turn_model is not None
        start = max(start_ms * SAMPLES_PER_MS - self._audio_start, 0)
        end = end_ms * SAMPLES_PER_MS - self._audio_start
        began = time.perf_counter()
        probability = self._turn_model.probability(self._audio[start:end])
        if self._turn_seconds is not None:
            self._turn_seconds.observe(time.perf_counter() - began)
        return probability


def config_for(settings: VadSettings, start: VadStart) -> SegmenterConfig:
    """The stream's segmenter settings: vad.start's fields over the service's. A stream's min_silence_ms is the silence
    that ends a turn in the silence mode; in the smart mode it is the longest silence (for a turn the model calls
    incomplete), and a complete turn ends after the shorter of it and turn_complete_silence_ms."""
    smart = settings.end_of_turn == "smart"
    silence = start.min_silence_ms
    incomplete = settings.turn_incomplete_silence_ms if silence is None else silence
    return SegmenterConfig(
        threshold=start.threshold if start.threshold is not None else settings.threshold,
        min_silence_ms=silence if silence is not None else settings.min_silence_ms,
        speech_pad_ms=start.speech_pad_ms if start.speech_pad_ms is not None else settings.speech_pad_ms,
        pause_ms=start.pause_ms if start.pause_ms is not None else settings.pause_ms,
        min_speech_ms=start.min_speech_ms if start.min_speech_ms is not None else settings.min_speech_ms,
        end_of_turn="smart" if smart else "silence",
        turn_threshold=settings.turn_threshold,
        complete_silence_ms=min(settings.turn_complete_silence_ms, incomplete),
        incomplete_silence_ms=incomplete,
        recheck_ms=settings.turn_recheck_ms,
    )


def create_app(settings: VadSettings | None = None) -> FastAPI:
    settings = settings or VadSettings()
    build_backend = backends.get(settings.backend)  # an unknown name stops the service now, with one line
    metrics = Metrics()
    events_total = metrics.counter("vad_events_total", "Speech events emitted.", ("event",))
    turn_seconds = metrics.histogram("vad_turn_model_seconds", "Time of one end-of-turn model call (smart mode).")

    def load() -> VadModels:
        model = build_backend(settings)
        model.new_stream().probability(np.zeros(CHUNK_SAMPLES, dtype=np.float32))  # warm-up
        turn = None
        if settings.end_of_turn == "smart":
            turn = SmartTurnModel(settings.turn_model_path)
            turn.probability(np.zeros(SAMPLE_RATE, dtype=np.float32))  # warm-up
        return VadModels(model, turn)

    async def handle(ws: WebSocket, models: VadModels) -> None:
        session: VadStreamSession | None = None
        async for item in frames(ws, VAD_CLIENT, settings.max_message_bytes):
            if isinstance(item, ErrorMessage):
                await send(ws, item)
            elif isinstance(item, VadStart):
                if item.sample_rate != SAMPLE_RATE:
                    await send(
                        ws,
                        ErrorMessage(
                            code="invalid_sample_rate",
                            message=f"VAD takes {SAMPLE_RATE} Hz audio, got {item.sample_rate} Hz",
                        ),
                    )
                    continue
                session = VadStreamSession(models.vad, config_for(settings, item), models.turn, turn_seconds)
            elif isinstance(item, bytes):
                if session is None:
                    await send(ws, ErrorMessage(code="not_configured", message="send vad.start before audio"))
                    continue
                try:
                    samples = pcm16_to_float(item)
                except AudioFormatError as err:
                    await send(ws, ErrorMessage(code=err.code, message=str(err)))
                    continue
                # In a worker thread: an end-of-turn model call takes ≈50 ms, which must not stall other streams.
                events = await asyncio.to_thread(list, session.feed(samples))
                for event in events:
                    events_total.labels(EVENT_LABELS.get(type(event), "pause")).inc()
                    await send(ws, event)

    return create_stage_app("vad", settings, load, "/v1/vad", handle, metrics)
