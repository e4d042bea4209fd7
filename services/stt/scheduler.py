"""Who decodes next, on which worker: finals first, batched; partials only on a worker that finals can spare.

The shared model runs ``workers`` decodes at once (CTranslate2 workers, one Python thread each). Measured on two cores
with four sessions whose finals come at the same instant (docs/performance.md): one decode per core, one thread each,
and finals that wait taken together as one batch by the next free worker, answered the four sooner than one decode at
a time. The rules:

- A waiting final always goes before a waiting partial; a free worker takes its share of the waiting finals as one
  batch (all of them when it is the only free one).
- Partials never hold every worker: with two or more, one is always left for finals, so a final never waits for a
  partial. With one worker (one GPU), a final waits at most for the one partial already running.
- A partial reads its audio when a worker takes it (the newest audio, not that of when it was asked for), decodes
  without the slow fallback (a partial the fast path does not trust is skipped), and is dropped if moot by then.
"""

from __future__ import annotations

import asyncio
import heapq
import itertools
import math
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field

import numpy as np

from services.stt.backends.base import Deliver, SttBackend, Transcript

FINAL, PARTIAL = 0, 1  # priorities: lower goes first
MAX_BATCH = 8


@dataclass
class Decoded:
    transcript: Transcript | None  # None: a partial that was moot or not trusted
    decode_s: float  # from the worker taking its batch to this item's answer (model time, not queueing)
    queued_s: float  # from the request to a worker taking it
    batch: int = 1


@dataclass(order=True)
class _Job:
    priority: int
    arrival: int
    audio: np.ndarray | Callable[[], np.ndarray | None] = field(compare=False)
    language: str | None = field(compare=False)
    asked: float = field(compare=False)
    future: asyncio.Future[Decoded] = field(compare=False)


class Decoder:
    """The shared model behind a pool of worker threads; ``decode`` waits for a worker, then for the decode."""

    def __init__(self, backend: SttBackend, workers: int = 1, max_batch: int = MAX_BATCH) -> None:
        self.backend = backend
        self.workers = max(1, workers)
        self._max_batch = max_batch
        self._executor = ThreadPoolExecutor(max_workers=self.workers, thread_name_prefix="stt-decode")
        self._free = self.workers
        self._partials_running = 0
        self._waiting: list[_Job] = []
        self._arrivals = itertools.count()
        self._tasks: set[asyncio.Task[None]] = set()

    async def decode(
        self,
        audio: np.ndarray | Callable[[], np.ndarray | None],
        language: str | None,
        priority: int = FINAL,
    ) -> Decoded:
        """Transcript of ``audio`` (for a partial, a callable read when a worker takes it; None: moot)."""
        job = _Job(
            priority,
            next(self._arrivals),
            audio,
            language,
            time.perf_counter(),
            asyncio.get_running_loop().create_future(),
        )
        heapq.heappush(self._waiting, job)
        self._dispatch()
        try:
            return await asyncio.shield(job.future)
        except asyncio.CancelledError:
            job.future.cancel()  # still waiting: skipped; already taken: its result is dropped
            raise

    def _dispatch(self) -> None:
        while self._free and self._waiting:
            if self._waiting[0].future.done():
                heapq.heappop(self._waiting)  # its caller went away
                continue
            if self._waiting[0].priority == FINAL:
                finals = sorted(j for j in self._waiting if j.priority == FINAL and not j.future.done())
                batch = finals[: min(self._max_batch, math.ceil(len(finals) / self._free))]
                taken = {id(j) for j in batch}
                self._waiting = [j for j in self._waiting if id(j) not in taken]
                heapq.heapify(self._waiting)
                self._start(batch, FINAL)
                continue
            if self.workers > 1 and self._partials_running >= self.workers - 1:
                return  # the last free worker stays free for finals
            job = heapq.heappop(self._waiting)
            if callable(job.audio):
                try:
                    audio = job.audio()
                except Exception as exc:
                    job.future.set_exception(exc)
                    continue
                if audio is None:
                    job.future.set_result(Decoded(None, 0.0, time.perf_counter() - job.asked))
                    continue
                job.audio = audio
            self._start([job], PARTIAL)

    def _start(self, batch: list[_Job], kind: int) -> None:
        self._free -= 1
        self._partials_running += kind == PARTIAL
        task = asyncio.create_task(self._run(batch, kind))
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)

    async def _run(self, batch: list[_Job], kind: int) -> None:
        loop = asyncio.get_running_loop()
        started = time.perf_counter()

        def resolve(job: _Job, transcript: Transcript | None, done_at: float) -> None:
            if not job.future.done():
                job.future.set_result(Decoded(transcript, done_at - started, started - job.asked, len(batch)))

        def deliver(i: int, transcript: Transcript | None) -> None:  # in the worker thread, as each item is done
            loop.call_soon_threadsafe(resolve, batch[i], transcript, time.perf_counter())

        audios = [j.audio for j in batch if isinstance(j.audio, np.ndarray)]  # _dispatch read the callables
        languages = [j.language for j in batch]
        failure: Exception = RuntimeError("the STT backend gave no transcript for this request")
        try:
            await loop.run_in_executor(self._executor, self._decode_batch, audios, languages, kind == FINAL, deliver)
        except Exception as exc:  # each caller still waiting gets the error, as its own request's
            failure = exc
        finally:
            self._free += 1
            self._partials_running -= kind == PARTIAL
        # The thread posted its answers to the loop before its return was posted: they are all set by now.
        for job in batch:
            if not job.future.done():
                job.future.set_exception(failure)
        self._dispatch()

    def _decode_batch(
        self, audios: list[np.ndarray], languages: list[str | None], fallback: bool, deliver: Deliver
    ) -> None:
        batched = getattr(self.backend, "transcribe_batch", None)
        if batched is not None:
            batched(audios, languages, fallback, deliver)
            return
        for i, (audio, language) in enumerate(zip(audios, languages, strict=True)):
            deliver(i, self.backend.transcribe(audio, language))
