"""The interface every VAD backend implements: a shared model that scores 32 ms chunks, one state per stream."""

from __future__ import annotations

from typing import Protocol

import numpy as np

CHUNK_SAMPLES = 512  # silero's chunk at 16 kHz: 32 ms
SAMPLE_RATE = 16000


class VadStream(Protocol):
    def probability(self, chunk: np.ndarray) -> float:
        """Speech probability of one CHUNK_SAMPLES float32 chunk."""


class VadModel(Protocol):
    def new_stream(self) -> VadStream: ...
