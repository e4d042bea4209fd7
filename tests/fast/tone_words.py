"""Test speech the fake STT can read back exactly: each word is a block of a 400 Hz tone at its own amplitude.

Word i of WORDS is level i + 1 (peak amplitude (i + 1) * LEVEL_STEP); level 0 is silence. ``transcribe`` names the
levels it finds in a span, so a test can tell exactly WHICH stretch of the stream the STT was asked to decode.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16000
WORDS = ("alpha", "bravo", "charlie", "delta", "echo", "foxtrot", "golf", "hotel", "india", "juliet", "kilo", "lima")
LEVEL_STEP = 0.05
TONE_HZ = 400  # 40 samples a period: any 10 ms frame holds whole periods, so its RMS is exact wherever it starts
FRAME = SAMPLE_RATE // 100  # 10 ms
MIN_WORD_FRAMES = 3  # a level must last 30 ms to be a word: a frame straddling two blocks is not one
WORD_MS = 200


def tone(level: int, ms: int) -> np.ndarray:
    n = SAMPLE_RATE * ms // 1000
    return (level * LEVEL_STEP * np.sin(2 * np.pi * TONE_HZ * np.arange(n) / SAMPLE_RATE)).astype(np.float32)


def to_pcm16(samples: np.ndarray) -> bytes:
    return (np.clip(samples, -1.0, 32767 / 32768) * 32768).astype("<i2").tobytes()


def words_pcm(text: str, word_ms: int = WORD_MS) -> bytes:
    """PCM16 16 kHz: one ``word_ms`` block per word of ``text`` (words from WORDS; neighbours must differ)."""
    return to_pcm16(np.concatenate([tone(WORDS.index(word) + 1, word_ms) for word in text.split()]))


def silence_pcm(ms: int) -> bytes:
    return bytes(SAMPLE_RATE * ms // 1000 * 2)


def noise_pcm(ms: int) -> bytes:
    """A click or a cough: a loud burst at a level that is no word (the STT ignores it)."""
    return to_pcm16(tone(len(WORDS) + 2, ms))


def pcm_ms(pcm: bytes) -> float:
    return len(pcm) / 2 / SAMPLE_RATE * 1000


def transcribe(samples: np.ndarray) -> str:
    """The words whose tone blocks ``samples`` (float32, 16 kHz) holds for at least 30 ms, in order."""
    n = len(samples) // FRAME
    rms = np.sqrt(np.mean(np.square(samples[: n * FRAME].reshape(n, FRAME).astype(np.float64)), axis=1))
    levels = [int(level) for level in np.rint(rms * np.sqrt(2) / LEVEL_STEP)]
    words: list[str] = []
    run_level, run_len = 0, 0
    for level in [*levels, -1]:
        if level == run_level:
            run_len += 1
            continue
        if 0 < run_level <= len(WORDS) and run_len >= MIN_WORD_FRAMES:
            word = WORDS[run_level - 1]
            if not words or words[-1] != word:
                words.append(word)
        run_level, run_len = level, 1
    return " ".join(words)
