"""An in-memory sound card for the microphone client's conversation logic: a thread paced by the clock feeds the
"microphone" from a script (silence when it has nothing) and records what the client gives the "speaker"."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable

import numpy as np

BLOCK_MS = 20


class ScriptedAudio:
    def __init__(self, input_rate: int = 16000, output_rate: int = 24000) -> None:
        self.input_rate, self.output_rate = input_rate, output_rate
        self.output_latency_s = 0.0
        self.played: list[tuple[float, np.ndarray]] = []  # (perf_counter, block given to the speaker)
        self._say = np.zeros(0, dtype=np.int16)
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    def say(self, pcm: bytes) -> None:
        """Queues speech for the microphone (PCM16 at ``input_rate``)."""
        with self._lock:
            self._say = np.concatenate([self._say, np.frombuffer(pcm, dtype="<i2")])

    def start(self, on_mic: Callable[[np.ndarray], None], fill_speaker: Callable[[int], np.ndarray]) -> None:
        def run() -> None:
            n_in, n_out = self.input_rate * BLOCK_MS // 1000, self.output_rate * BLOCK_MS // 1000
            t0, blocks = time.monotonic(), 0
            while not self._stop.is_set():
                with self._lock:
                    block, self._say = self._say[:n_in], self._say[n_in:]
                on_mic(np.concatenate([block, np.zeros(n_in - len(block), dtype=np.int16)]))
                self.played.append((time.perf_counter(), fill_speaker(n_out).copy()))
                blocks += 1
                self._stop.wait(max(0.0, t0 + blocks * BLOCK_MS / 1000 - time.monotonic()))  # real-time pacing

        self._thread = threading.Thread(target=run, daemon=True)
        self._thread.start()

    def close(self) -> None:
        self._stop.set()
        if self._thread is not None:
            self._thread.join(timeout=5)
