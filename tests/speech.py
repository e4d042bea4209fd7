"""Test speech: espeak-ng says a sentence, sox makes it 16 kHz mono PCM16 with silence around it."""

from __future__ import annotations

import subprocess
from pathlib import Path

import numpy as np
import soundfile as sf


def speak(
    text: str,
    path: Path,
    pad_s: float = 1.0,
    rate: int = 16000,
    words_per_minute: int = 150,
    word_gap: int = 5,
    voice: str = "en-us",
) -> Path:
    """A clear espeak speaker. Without a small gap between words (``-g``, units of 10 ms) espeak runs "of France"
    together and Whisper base hears "of friends" (measured: 1 of 6 windows right at -g 0, 6 of 6 at -g 5)."""
    raw = path.with_suffix(".raw.wav")
    cmd = ["espeak-ng", "-v", voice, "-s", str(words_per_minute), "-g", str(word_gap), "-w", str(raw), text]
    subprocess.run(cmd, check=True)
    cmd = ["sox", str(raw), "-r", str(rate), "-c", "1", "-b", "16", str(path)]
    if pad_s:
        cmd += ["pad", str(pad_s), str(pad_s)]
    subprocess.run(cmd, check=True)
    raw.unlink()
    return path


def read_pcm16(path: Path) -> tuple[bytes, int]:
    samples, rate = sf.read(str(path), dtype="int16")
    if samples.ndim > 1:
        samples = samples[:, 0]
    return samples.astype("<i2").tobytes(), rate


def voiced_span_ms(pcm: bytes, rate: int, floor: float = 0.02) -> tuple[float, float]:
    """First and last sample louder than ``floor`` (of full scale), in ms."""
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.float32) / 32768.0)
    loud = np.flatnonzero(samples > floor)
    if not len(loud):
        return 0.0, 0.0
    return loud[0] / rate * 1000.0, loud[-1] / rate * 1000.0
