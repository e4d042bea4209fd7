"""Transcribe audio the way a listener would check it: Whisper base (embedded weights), beam search."""

from __future__ import annotations

import re
from functools import lru_cache

import numpy as np

from services.common.audio import resample_pcm16
from services.stt.embedded import embedded_whisper_base


@lru_cache(maxsize=1)
def _model():
    from faster_whisper import WhisperModel

    return WhisperModel(str(embedded_whisper_base()), device="cpu", compute_type="int8", cpu_threads=2)


def transcribe(pcm16: bytes, rate: int) -> str:
    audio = np.frombuffer(resample_pcm16(pcm16, rate, 16000), dtype="<i2").astype(np.float32) / 32768.0
    segments, _ = _model().transcribe(audio, language="en", beam_size=5)
    return " ".join(s.text.strip() for s in segments)


def transcribe_detect(pcm16: bytes, rate: int, language: str | None = None) -> tuple[str, str]:
    """(text, language): Whisper base detects the language itself (unless given), as a listener of any language would."""
    audio = np.frombuffer(resample_pcm16(pcm16, rate, 16000), dtype="<i2").astype(np.float32) / 32768.0
    segments, info = _model().transcribe(audio, language=language, beam_size=5)
    return " ".join(s.text.strip() for s in segments), info.language


def words(text: str) -> list[str]:
    return re.findall(r"[a-z0-9']+", text.lower())
