"""A session's WebSocket link to one stage service: (re)connect in the background, send in order, read in a task.

Sending never waits for a connection: while the link (re)connects, frames queue and go out in order once it is up,
so the session's one task keeps taking events (the user's speech among them) however slow the stage is to answer.
A connect that fails or a link that drops is reported once through ``on_down``.

Each connect asks the stage's replica pool (services/gateway/replicas.py) for a replica, and tries the next one when
a connect fails or a replica refuses as full, up to ``attempts``; a link that was lost prefers another replica than
the one it lost. When every replica is at its limit, the failure's code is ``session_limit_reached``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable, Iterable
from typing import Any, Protocol

import websockets
from pydantic import BaseModel, TypeAdapter

from services.common.service import SESSION_LIMIT
from services.common.wire import WireError, decode, encode
from services.gateway.pool import Choice, Full, Pick

log = logging.getLogger(__name__)

OnFrame = Callable[[Any], Awaitable[None]]
OnDown = Callable[[str, str], None]  # (error code, message)
Hello = Callable[[], BaseModel | None]  # the stream's opening message, made when a connection starts


UNAVAILABLE = "upstream_unavailable"


class StageUnavailable(RuntimeError):
    code = UNAVAILABLE

    def __init__(self, stage: str, url: str, reason: str) -> None:
        super().__init__(f"{stage} service at {url} is unavailable: {reason}")
        self.stage = stage


class StageFull(StageUnavailable):
    """Every replica of the stage serves its limit of sessions."""

    code = SESSION_LIMIT

    def __init__(self, stage: str, url: str, reason: str) -> None:
        RuntimeError.__init__(self, f"{stage} service at {url} is full: {reason}")
        self.stage = stage


class Replicas(Protocol):
    """A stage's replica pool, as a link sees it (services/gateway/replicas.py)."""

    attempts: int  # replicas one connect tries at most
    display: str  # the stage's URL setting, for messages

    def choose(self, avoid: Iterable[str], exclude: Iterable[str]) -> Choice: ...

    def failed(self, url: str, full: bool) -> None: ...

    def release(self, url: str) -> None: ...


def refused_as_full(exc: websockets.InvalidStatus) -> bool:
    """A stage at its limit answers the handshake with 503 naming session_limit_reached (services/common/service.py)."""
    return exc.response.status_code == 503 and SESSION_LIMIT.encode() in (exc.response.body or b"")


class StageLink:
    def __init__(
        self,
        stage: str,
        replicas: Replicas,
        adapter: TypeAdapter[Any],
        on_frame: OnFrame,
        on_down: OnDown,
        timeout_s: float,
        hello: Hello = lambda: None,
    ) -> None:
        self.stage = stage
        self.url = replicas.display  # the replica of the link now (or last)
        self._replicas = replicas
        self._held: str | None = None  # the replica this link counts on in the pool
        self._avoid: tuple[str, ...] = ()  # the replica a lost link was on: the next connect prefers another
        self._adapter = adapter
        self._on_frame = on_frame
        self._on_down = on_down
        self._timeout_s = timeout_s
        self._hello = hello
        self._ws: websockets.ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None
        self._connecting: asyncio.Task[None] | None = None
        self._queue: deque[str | bytes] = deque()  # frames sent while connecting
        self._retry_at = 0.0  # after a failed connect, new sends do not retry before this (loop time)
        self._backoff_s = 0.0

    @property
    def connected(self) -> bool:
        return self._ws is not None and self._connecting is None

    @property
    def down(self) -> bool:
        return self._ws is None and self._connecting is None

    @property
    def backing_off(self) -> bool:
        """A connect failed a moment ago: sends are dropped until a pause has passed (it is reported once)."""
        return self._ws is None and self._connecting is None and asyncio.get_running_loop().time() < self._retry_at

    async def connect_now(self) -> None:
        """Connects and waits for it (the session's start); raises StageUnavailable."""
        self._start_connecting(report=False)
        assert self._connecting is not None
        await self._connecting
        if self._ws is None:
            error = StageFull if self._last_code == SESSION_LIMIT else StageUnavailable
            raise error(self.stage, self.url, self._last_failure)

    def reconnect(self) -> None:
        """Starts a new connection in the background (a new stream: its hello is made now)."""
        if self._connecting is None:
            self._start_connecting(report=True)

    async def send(self, message: BaseModel | bytes, connect: bool = True) -> None:
        """Sends now, or queues while connecting; when the link is down, ``connect`` starts a new connection (unless
        one just failed), else the frame is dropped: a cancel for a stage that is gone has nothing to cancel."""
        frame = message if isinstance(message, bytes) else encode(message)
        if self._connecting is not None:
            self._queue.append(frame)
        elif self._ws is not None:
            await self._send(self._ws, frame)
        elif not connect:
            pass
        elif not self.backing_off:
            self._start_connecting(report=True)
            self._queue.append(frame)
        elif not isinstance(message, bytes):  # audio waits quietly for the retry; a request must not hang
            self._report_failure()

    # ------------------------------------------------------------------ internals

    _last_failure = ""
    _last_code = UNAVAILABLE

    def _start_connecting(self, report: bool) -> None:
        hello = self._hello()  # made now: a stream's clock starts with its hello, before any queued audio
        self._queue.clear()
        self._connecting = asyncio.create_task(self._connect(hello, report), name=f"{self.stage}-connect")

    async def _connect(self, hello: BaseModel | None, report: bool) -> None:
        tried: list[str] = []
        failures: list[str] = []
        all_full = True
        for _ in range(self._replicas.attempts):
            choice = self._replicas.choose(self._avoid, tried)
            if isinstance(choice, Full):
                limit = f", {choice.capacity} sessions in all" if choice.capacity else ""
                reason = f"every replica serves its limit ({choice.replicas} replicas{limit})"
                self._failed(SESSION_LIMIT, "; ".join([*failures, reason]), report)
                return
            if not isinstance(choice, Pick):
                failures.append(choice.reason)
                break
            url = self.url = choice.url
            tried.append(url)
            try:
                ws = await asyncio.wait_for(websockets.connect(url, max_size=None, compression=None), self._timeout_s)
            except websockets.InvalidStatus as exc:
                full = refused_as_full(exc)
                all_full &= full
                self._replicas.failed(url, full)
                failures.append(f"{url}: {'full' if full else exc}")
                continue
            except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
                all_full = False
                self._replicas.failed(url, False)
                failures.append(f"{url}: {exc or type(exc).__name__}")
                continue
            except BaseException:  # cancelled (the session ends): the pick is given back
                self._replicas.release(url)
                raise
            self._held, self._avoid = url, ()
            await self._opened(ws, hello)
            return
        code = SESSION_LIMIT if tried and all_full else UNAVAILABLE
        self._failed(code, "; ".join(failures) or "no replica to try", report)

    async def _opened(self, ws: websockets.ClientConnection, hello: BaseModel | None) -> None:
        self._ws = ws
        self._backoff_s = 0.0
        if hello is not None:
            self._queue.appendleft(encode(hello))
        while self._queue:  # frames queued meanwhile, in order; more may arrive while these are sent
            if not await self._send(ws, self._queue.popleft()):
                self._connecting = None
                return
        self._connecting = None
        self._reader = asyncio.create_task(self._read(ws), name=f"{self.stage}-reader")

    def _failed(self, code: str, reason: str, report: bool) -> None:
        self._connecting = None
        self._queue.clear()
        self._last_failure, self._last_code = reason, code
        self._backoff_s = min(5.0, max(0.5, self._backoff_s * 2))
        self._retry_at = asyncio.get_running_loop().time() + self._backoff_s
        if report:
            self._report_failure()

    def _report_failure(self) -> None:
        error = StageFull if self._last_code == SESSION_LIMIT else StageUnavailable
        self._on_down(self._last_code, str(error(self.stage, self.url, self._last_failure)))

    def _release(self) -> None:
        held, self._held = self._held, None
        if held is not None:
            self._replicas.release(held)

    async def _send(self, ws: websockets.ClientConnection, frame: str | bytes) -> bool:
        try:
            await ws.send(frame)
        except websockets.ConnectionClosed:
            self._lost(ws)
            return False
        return True

    def _lost(self, ws: websockets.ClientConnection) -> None:
        if self._ws is ws:
            self._ws = None
            self._avoid = (self.url,)
            self._release()
            msg = f"lost the connection to the {self.stage} service; it will be retried on next use"
            self._on_down("upstream_lost", msg)

    async def _read(self, ws: websockets.ClientConnection) -> None:
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    await self._on_frame(frame)
                    continue
                try:
                    await self._on_frame(decode(self._adapter, frame))
                except WireError as err:  # a stage speaking garbage is a bug there, not a reason to drop the session
                    log.error("%s sent an unreadable frame: %s", self.stage, err)
        except websockets.ConnectionClosed:
            pass
        finally:
            self._lost(ws)

    async def close(self) -> None:
        """Closes the link without reporting it (the session ends, or restarts this stream)."""
        ws, self._ws = self._ws, None
        for task in (self._connecting, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        self._connecting = self._reader = None
        self._queue.clear()
        self._release()
        if ws is not None:
            await ws.close()
