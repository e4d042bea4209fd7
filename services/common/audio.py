"""PCM16 helpers and a streaming resampler (soxr)."""

from __future__ import annotations

import numpy as np
import soxr

SUPPORTED_RATES = (8000, 16000, 22050, 24000, 32000, 44100, 48000)
PCM16_MAX = 32768.0


class AudioFormatError(ValueError):
    """Audio bytes or rates the pipeline cannot take; ``code`` goes into the error event."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code


def check_rate(rate: int) -> int:
    if rate not in SUPPORTED_RATES:
        raise AudioFormatError(
            "invalid_sample_rate", f"sample rate {rate} Hz is not supported; use one of {list(SUPPORTED_RATES)}"
        )
    return rate


def pcm16_to_float(data: bytes) -> np.ndarray:
    if len(data) % 2:
        raise AudioFormatError("invalid_audio", f"PCM16 audio must have an even number of bytes, got {len(data)}")
    return np.frombuffer(data, dtype="<i2").astype(np.float32) / PCM16_MAX


def float_to_pcm16(samples: np.ndarray) -> bytes:
    clipped = np.clip(np.asarray(samples, dtype=np.float32), -1.0, 32767.0 / PCM16_MAX)
    return (clipped * PCM16_MAX).astype("<i2").tobytes()


def duration_ms(n_bytes: int, rate: int) -> float:
    return n_bytes / 2 / rate * 1000.0


class StreamResampler:
    """Resamples a PCM16 stream chunk by chunk, keeping filter state between chunks."""

    def __init__(self, in_rate: int, out_rate: int) -> None:
        self.in_rate = in_rate
        self.out_rate = out_rate
        self._stream = None if in_rate == out_rate else soxr.ResampleStream(in_rate, out_rate, 1, dtype="int16")

    def process(self, pcm: bytes, last: bool = False) -> bytes:
        if self._stream is None:
            return pcm
        samples = np.frombuffer(pcm, dtype="<i2")
        out: np.ndarray = self._stream.resample_chunk(samples, last=last)  # soxr is untyped
        return out.astype("<i2").tobytes()


def resample_pcm16(pcm: bytes, in_rate: int, out_rate: int) -> bytes:
    return StreamResampler(in_rate, out_rate).process(pcm, last=True)
