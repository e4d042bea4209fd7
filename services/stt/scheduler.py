"""One decode at a time for the whole process, finals ahead of waiting partials.

CTranslate2 on two cores gains nothing from parallel decodes, so every connection shares one model and one worker
thread. Who decodes next is decided here: a waiting final always goes before a waiting partial, so a final waits at
most for the one decode already running.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import time
from collections.abc import AsyncIterator
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager

import numpy as np

from services.stt.backend import SttBackend, Transcript

FINAL, PARTIAL = 0, 1  # priorities: lower goes first


class DecodeGate:
    """An async lock granted by priority, then arrival order."""

    def __init__(self) -> None:
        self._busy = False
        self._waiting: list[tuple[int, int, asyncio.Future[None]]] = []
        self._arrivals = itertools.count()

    @asynccontextmanager
    async def turn(self, priority: int) -> AsyncIterator[None]:
        await self._acquire(priority)
        try:
            yield
        finally:
            self._release()

    async def _acquire(self, priority: int) -> None:
        if not self._busy and not self._waiting:
            self._busy = True
            return
        granted: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        heapq.heappush(self._waiting, (priority, next(self._arrivals), granted))
        try:
            await granted
        except asyncio.CancelledError:
            if granted.done() and not granted.cancelled():
                self._release()  # handed the turn just as we were cancelled: pass it on
            raise  # a cancelled waiter stays in the heap, done; _release skips it

    def _release(self) -> None:
        while self._waiting:
            _, _, granted = heapq.heappop(self._waiting)
            if not granted.done():
                granted.set_result(None)  # the turn passes straight on; _busy stays True
                return
        self._busy = False


class Decoder:
    """The shared model behind the gate; decodes run in a single worker thread, off the event loop."""

    def __init__(self, backend: SttBackend) -> None:
        self.backend = backend
        self.gate = DecodeGate()
        # One worker: even if a cancelled caller leaves the gate while its decode still runs, the next decode queues
        # behind it here instead of running beside it.
        self._executor = ThreadPoolExecutor(max_workers=1, thread_name_prefix="stt-decode")

    def turn(self, priority: int):
        return self.gate.turn(priority)

    async def decode(self, audio: np.ndarray, language: str | None) -> tuple[Transcript, float]:
        """Transcript and seconds spent decoding; call inside ``turn``."""

        def timed() -> tuple[Transcript, float]:
            started = time.perf_counter()
            transcript = self.backend.transcribe(audio, language)
            return transcript, time.perf_counter() - started

        return await asyncio.get_running_loop().run_in_executor(self._executor, timed)
