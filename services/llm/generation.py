"""Runs generations on the one loaded model: waits for a turn, streams pieces from a worker thread, ends with llm.done."""

from __future__ import annotations

import asyncio
import contextlib
import threading
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Literal

from services.common.messages import ErrorMessage, LlmDelta, LlmDone, LlmToolCall, Message
from services.llm.backends.base import (
    ContextOverflow,
    GenerationRequest,
    LlmBackend,
    Piece,
)

Send = Callable[[Message], Awaitable[Any]]
_END = object()  # the worker thread's last item


@dataclass
class Generation:
    """One ``llm.generate`` request. ``cancel()`` may come from the event loop at any time, before or during its run."""

    request_id: str
    request: GenerationRequest
    received: float = field(default_factory=time.perf_counter)
    flag: threading.Event = field(default_factory=threading.Event)  # read by the worker thread between tokens
    _cancelled: asyncio.Event = field(default_factory=asyncio.Event)  # wakes a request still waiting for its turn

    def cancel(self) -> None:
        self.flag.set()
        self._cancelled.set()

    async def wait_cancelled(self) -> None:
        await self._cancelled.wait()

    @property
    def cancelled(self) -> bool:
        return self.flag.is_set()


@dataclass
class Outcome:
    finish_reason: Literal["stop", "length", "cancelled", "error", "tool_calls"]
    tokens: int
    ttft_ms: float | None


class ModelRunner:
    """Owns the backend: at most ``backend.max_parallel`` generations at once, the rest wait in arrival order."""

    def __init__(
        self, backend: LlmBackend, on_first_token: Callable[[float], None], on_done: Callable[[Outcome], None]
    ) -> None:
        self.backend = backend
        self._turns = asyncio.Semaphore(backend.max_parallel)
        self._executor = ThreadPoolExecutor(backend.max_parallel, thread_name_prefix="llm-generate")
        self._on_first_token = on_first_token
        self._on_done = on_done

    async def run(self, gen: Generation, send: Send) -> Outcome:
        """Streams ``llm.delta`` messages through ``send`` and ends with exactly one ``llm.done``."""
        outcome = Outcome("cancelled", 0, None)
        if await self._wait_for_turn(gen):
            try:
                outcome = await self._stream(gen, send)
            finally:
                self._turns.release()
        self._on_done(outcome)
        await send(
            LlmDone(
                request_id=gen.request_id,
                finish_reason=outcome.finish_reason,
                ttft_ms=outcome.ttft_ms,
                tokens=outcome.tokens,
            )
        )
        return outcome

    async def _wait_for_turn(self, gen: Generation) -> bool:
        """True once this request holds a turn; False if it was cancelled first (then it never starts)."""
        if gen.cancelled:
            return False
        turn = asyncio.ensure_future(self._turns.acquire())
        cancelled = asyncio.ensure_future(gen.wait_cancelled())
        try:
            await asyncio.wait({turn, cancelled}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            cancelled.cancel()
            if not turn.done():
                turn.cancel()  # Semaphore.acquire passes a wake-up it can no longer use on to the next waiter
        with contextlib.suppress(asyncio.CancelledError):
            await turn
        if turn.cancelled():
            return False
        if gen.cancelled:  # got the turn and the cancel at the same moment
            self._turns.release()
            return False
        return True

    async def _stream(self, gen: Generation, send: Send) -> Outcome:
        loop = asyncio.get_running_loop()
        queue: asyncio.Queue[Any] = asyncio.Queue()

        def put(item: Any) -> None:
            with contextlib.suppress(RuntimeError):  # the loop closed during shutdown: nobody is listening
                loop.call_soon_threadsafe(queue.put_nowait, item)

        worker = loop.run_in_executor(self._executor, self._produce, gen, put)
        tokens, ttft_ms, failure = 0, None, None
        finish: Literal["stop", "length"] = "stop"
        called = False
        try:
            while (item := await queue.get()) is not _END:
                if isinstance(item, BaseException):
                    failure = item
                    continue
                piece: Piece = item
                tokens += piece.tokens
                finish = piece.finish_reason or finish
                if gen.cancelled:  # after a cancel nothing more is sent, even tokens already made
                    continue
                for call in piece.calls:
                    called = True
                    message = LlmToolCall(
                        request_id=gen.request_id, call_id=call.id, name=call.name, arguments=call.arguments
                    )
                    await send(message)
                if not piece.text:
                    continue
                if ttft_ms is None:
                    ttft_ms = (time.perf_counter() - gen.received) * 1000
                    self._on_first_token(ttft_ms / 1000)
                await send(LlmDelta(request_id=gen.request_id, text=piece.text))
        except asyncio.CancelledError:
            gen.cancel()  # the connection's task was torn down: stop the worker at its next token
            raise
        finally:
            await worker  # the model is free again only once the worker thread has let go of it
        if failure is not None:
            code = "context_length_exceeded" if isinstance(failure, ContextOverflow) else "generation_failed"
            await send(
                ErrorMessage(code=code, message=f"{type(failure).__name__}: {failure}", request_id=gen.request_id)
            )
            return Outcome("error", tokens, ttft_ms)
        if gen.cancelled:
            return Outcome("cancelled", tokens, ttft_ms)
        return Outcome("tool_calls" if called and finish == "stop" else finish, tokens, ttft_ms)

    def _produce(self, gen: Generation, put: Callable[[Any], None]) -> None:
        """Worker thread: pulls pieces from the backend, checking the cancel flag between tokens."""
        pieces = None
        try:
            pieces = self.backend.generate(gen.request, gen.flag)
            for piece in pieces:
                put(piece)
                if gen.cancelled:
                    break
        except Exception as exc:  # reported to the client as a typed error and finish_reason "error"
            put(exc)
        finally:
            if pieces is not None:
                with contextlib.suppress(Exception):
                    pieces.close()  # backends release their resources (HTTP stream, generate thread) here
            put(_END)
