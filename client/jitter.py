"""The reply's playback queue: filled from the network, drained by the sound card, and able to say what was played.

Audio arrives in bursts (one TTS clause at a time, faster than real time), and the sound card asks for a block every
few milliseconds. The buffer waits for ``prebuffer_ms`` of audio before it starts (and again after running dry in the
middle of a reply), so network jitter becomes one short delay instead of clicks. The end of an item's audio is played
out without waiting. For barge-in it counts, per conversation item, the samples handed to the sound card.
"""

from __future__ import annotations

import threading
import time
from collections import deque
from dataclasses import dataclass, field

import numpy as np


@dataclass
class _Chunk:
    item_id: str
    samples: np.ndarray  # int16, mono
    offset: int = 0

    @property
    def left(self) -> int:
        return len(self.samples) - self.offset


@dataclass
class PlaybackStats:
    underruns: int = 0  # times the buffer ran dry in the middle of an item
    played: dict[str, int] = field(default_factory=dict)  # item id -> samples handed to the sound card
    started_at: dict[str, float] = field(default_factory=dict)  # item id -> perf_counter of its first sample


class JitterBuffer:
    """Thread-safe: ``push``/``end``/``clear`` from the network side, ``read`` from the sound card's callback."""

    def __init__(self, rate: int, prebuffer_ms: float = 60.0) -> None:
        self.rate = rate
        self.prebuffer = int(rate * prebuffer_ms / 1000)
        self.stats = PlaybackStats()
        self._queue: deque[_Chunk] = deque()
        self._ended: set[str] = set()
        self._buffered = 0
        self._waiting = True  # filling up before (re)starting playback
        self._current: str | None = None  # item whose samples were read last
        self._lock = threading.Lock()

    def push(self, item_id: str, samples: np.ndarray) -> None:
        if not len(samples):
            return
        with self._lock:
            self._queue.append(_Chunk(item_id, np.asarray(samples, dtype=np.int16)))
            self._buffered += len(samples)

    def end(self, item_id: str) -> None:
        """No more audio will come for ``item_id``: play what is left without waiting for the prebuffer."""
        with self._lock:
            self._ended.add(item_id)

    def read(self, frames: int) -> np.ndarray:
        """The next ``frames`` samples to play (silence where there is nothing to play)."""
        out = np.zeros(frames, dtype=np.int16)
        with self._lock:
            if self._waiting:
                tail_ended = bool(self._queue) and self._queue[-1].item_id in self._ended
                if self._buffered < self.prebuffer and not tail_ended:
                    return out
                self._waiting = False
            filled = 0
            while filled < frames and self._queue:
                chunk = self._queue[0]
                take = min(frames - filled, chunk.left)
                out[filled : filled + take] = chunk.samples[chunk.offset : chunk.offset + take]
                if chunk.item_id not in self.stats.played:
                    self.stats.started_at[chunk.item_id] = time.perf_counter()
                self.stats.played[chunk.item_id] = self.stats.played.get(chunk.item_id, 0) + take
                self._current = chunk.item_id
                chunk.offset += take
                filled += take
                self._buffered -= take
                if not chunk.left:
                    self._queue.popleft()
            if filled < frames and not self._queue:
                if self._current is not None and self._current not in self._ended:
                    self.stats.underruns += 1  # dry in the middle of a reply: wait for depth again
                self._waiting = True
            return out

    def clear(self) -> tuple[str | None, float]:
        """Drops everything queued; returns the item that was playing and how many ms of it were played."""
        with self._lock:
            if self._queue:
                playing: str | None = self._queue[0].item_id  # played in part, or not yet started (0 ms heard)
            elif self._current is not None and self._current not in self._ended:
                playing = self._current  # ran dry mid-item; more was on its way
            else:
                playing = None  # nothing was interrupted
            self._queue.clear()
            self._buffered = 0
            self._waiting = True
            if playing is not None:
                self._ended.add(playing)
            played = self.stats.played.get(playing, 0) if playing else 0
            return playing, played / self.rate * 1000.0

    @property
    def busy(self) -> bool:
        """Audio is queued or an item is still expected to go on (the speaker is, or is about to be, talking)."""
        with self._lock:
            return bool(self._queue) or (self._current is not None and self._current not in self._ended)

    def played_ms(self, item_id: str) -> float:
        with self._lock:
            return self.stats.played.get(item_id, 0) / self.rate * 1000.0

    def started_at(self, item_id: str) -> float | None:
        with self._lock:
            return self.stats.started_at.get(item_id)
