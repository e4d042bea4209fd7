"""A stream's audio indexed by stream time (ms since the stream began), keeping only the newest seconds."""

from __future__ import annotations

import numpy as np


class StreamBuffer:
    """A ring of float32 samples: appending is O(frame) however long the stream runs; positions stay in stream time."""

    def __init__(self, sample_rate: int, max_seconds: float) -> None:
        self.rate = sample_rate
        self._ring = np.zeros(max(1, int(max_seconds * sample_rate)), dtype=np.float32)
        self._total = 0  # samples received since the stream began: the stream-time position of the newest audio

    @property
    def start_sample(self) -> int:
        return max(0, self._total - len(self._ring))

    @property
    def start_ms(self) -> int:
        return self.start_sample * 1000 // self.rate

    @property
    def end_ms(self) -> int:
        return self._total * 1000 // self.rate

    def append(self, samples: np.ndarray) -> None:
        capacity, count = len(self._ring), len(samples)
        kept = samples[-capacity:]  # a frame longer than the whole buffer leaves only its tail
        position = (self._total + count - len(kept)) % capacity
        first = min(len(kept), capacity - position)
        self._ring[position : position + first] = kept[:first]
        self._ring[: len(kept) - first] = kept[first:]
        self._total += count

    def clip_ms(self, start_ms: int, end_ms: int | None) -> tuple[int, int]:
        """The sample range of [start_ms, end_ms) that is still held (end None: the newest audio); may be empty."""
        start = min(max(self.start_sample, start_ms * self.rate // 1000), self._total)
        end = self._total if end_ms is None else min(self._total, end_ms * self.rate // 1000)
        return start, max(start, end)

    def read(self, start: int, end: int) -> np.ndarray:
        """A copy of samples [start, end) in stream positions, which must lie inside the held range."""
        capacity = len(self._ring)
        assert self.start_sample <= start <= end <= self._total, (start, end)
        first, last = start % capacity, start % capacity + (end - start)
        if last <= capacity:
            return self._ring[first:last].copy()
        return np.concatenate([self._ring[first:], self._ring[: last - capacity]])
