"""A session's WebSocket link to one stage service: (re)connect in the background, send in order, read in a task.

Sending never waits for a connection: while the link (re)connects, frames queue and go out in order once it is up,
so the session's one task keeps taking events (the user's speech among them) however slow the stage is to answer.
A connect that fails or a link that drops is reported once through ``on_down``.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from pydantic import BaseModel, TypeAdapter

from services.common.wire import WireError, decode, encode

log = logging.getLogger(__name__)

OnFrame = Callable[[Any], Awaitable[None]]
OnDown = Callable[[str, str], None]  # (error code, message)
Hello = Callable[[], BaseModel | None]  # the stream's opening message, made when a connection starts


class StageUnavailable(RuntimeError):
    def __init__(self, stage: str, url: str, reason: str) -> None:
        super().__init__(f"{stage} service at {url} is unavailable: {reason}")
        self.stage = stage


class StageLink:
    def __init__(
        self,
        stage: str,
        url: str,
        adapter: TypeAdapter[Any],
        on_frame: OnFrame,
        on_down: OnDown,
        timeout_s: float,
        hello: Hello = lambda: None,
    ) -> None:
        self.stage = stage
        self.url = url
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
            raise StageUnavailable(self.stage, self.url, self._last_failure)

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
            self._on_down("upstream_unavailable", str(StageUnavailable(self.stage, self.url, self._last_failure)))

    # ------------------------------------------------------------------ internals

    _last_failure = ""

    def _start_connecting(self, report: bool) -> None:
        hello = self._hello()  # made now: a stream's clock starts with its hello, before any queued audio
        self._queue.clear()
        self._connecting = asyncio.create_task(self._connect(hello, report), name=f"{self.stage}-connect")

    async def _connect(self, hello: BaseModel | None, report: bool) -> None:
        try:
            ws = await asyncio.wait_for(websockets.connect(self.url, max_size=None, compression=None), self._timeout_s)
        except (OSError, TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            self._failed(str(exc) or type(exc).__name__, report)
            return
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

    def _failed(self, reason: str, report: bool) -> None:
        self._connecting = None
        self._queue.clear()
        self._last_failure = reason
        self._backoff_s = min(5.0, max(0.5, self._backoff_s * 2))
        self._retry_at = asyncio.get_running_loop().time() + self._backoff_s
        if report:
            self._on_down("upstream_unavailable", str(StageUnavailable(self.stage, self.url, reason)))

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
        if ws is not None:
            await ws.close()
