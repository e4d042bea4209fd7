"""What every fake stage shares: a WebSocket server on 127.0.0.1, its controls, and a record of what it received.

Controls are called from the test's thread; the server runs on the fakes' own loop (fake_stages.FakeStages), so
every change of state that a stream reads is applied on that loop (``_apply``) and cannot race a stream.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import time
from collections.abc import Callable, Coroutine
from dataclasses import dataclass, field
from typing import Any

from pydantic import BaseModel
from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed
from websockets.http11 import Request, Response

from services.common.messages import ErrorMessage
from services.common.wire import WireError, decode, encode


@dataclass
class Connection:
    """One WebSocket a stage accepted: the message types it received in order, its audio, and what it sent when."""

    number: int
    messages: list[str] = field(default_factory=list)
    audio_bytes: int = 0
    sent: list[tuple[str, float]] = field(default_factory=list)  # (message type, time.monotonic() when sent)
    closed: bool = False
    ws: ServerConnection | None = field(default=None, repr=False)
    lock: asyncio.Lock = field(default_factory=asyncio.Lock, repr=False)

    async def send(self, message: BaseModel | bytes) -> None:
        """Sends unless the gateway has gone (a fake must not die of a peer that left)."""
        assert self.ws is not None
        async with self.lock:
            with contextlib.suppress(ConnectionClosed):
                await self.ws.send(message if isinstance(message, bytes) else encode(message))
                if isinstance(message, BaseModel):
                    self.sent.append((getattr(message, "type", ""), time.monotonic()))


class FakeStage:
    """The server and the controls every fake shares; subclasses handle one stream's messages."""

    stage = ""
    adapter: Any = None

    def __init__(self, loop: asyncio.AbstractEventLoop) -> None:
        self.loop = loop
        self.port = 0
        self._server: Server | None = None
        self._accepts_open = asyncio.Event()
        self.reset()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/{self.stage}"

    def reset(self) -> None:
        """Back to a plain, accepting stage with no history (between tests)."""
        self.connections: list[Connection] = []
        self.refusing = False
        self.accept_delay_s = 0.0
        self.pending_accepts = 0
        self.accepted_at: list[float] = []  # time.monotonic() of each handshake this stage let through
        self._apply(self._accepts_open.set)

    # ------------------------------------------------------------------ controls

    def refuse_connections(self, refuse: bool = True) -> None:
        """Answer WebSocket handshakes with HTTP 503 (the gateway cannot connect)."""
        self.refusing = refuse

    def delay_accept(self, seconds: float) -> None:
        self.accept_delay_s = seconds

    def hold_accepts(self) -> None:
        """New connections wait in their handshake until ``release_accepts`` (``pending_accepts`` counts them)."""
        self._apply(self._accepts_open.clear)

    def release_accepts(self) -> None:
        self._apply(self._accepts_open.set)

    async def drop_connections(self) -> int:
        """Closes every open connection from this side (a restart of the stage); returns how many."""
        return await asyncio.wrap_future(asyncio.run_coroutine_threadsafe(self._drop(), self.loop))

    def _apply(self, change: Callable[[], None]) -> None:
        """Runs ``change`` on the fakes' loop and returns once it has (no race with a stream reading the state)."""

        async def run() -> None:
            change()

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=10)

    def live(self) -> list[Connection]:
        return [c for c in self.connections if not c.closed]

    def received(self, message_type: str) -> int:
        return sum(c.messages.count(message_type) for c in self.connections)

    def sent_at(self, message_type: str) -> list[float]:
        """When this stage sent each ``message_type`` message (time.monotonic(), in order)."""
        return sorted(t for c in self.connections for kind, t in c.sent if kind == message_type)

    # ------------------------------------------------------------------ server

    async def start(self) -> None:
        self._server = await serve(
            self._handle, "127.0.0.1", 0, process_request=self._process_request, max_size=None, compression=None
        )
        self.port = next(iter(self._server.sockets)).getsockname()[1]

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()

    async def _drop(self) -> int:
        live = self.live()
        await asyncio.gather(*(c.ws.close() for c in live if c.ws is not None))
        return len(live)

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            response = connection.respond(200, json.dumps({"stage": self.stage, "status": "ready"}))
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        if request.path != f"/v1/{self.stage}":
            return connection.respond(404, "not found\n")
        if self.refusing:
            return connection.respond(503, f"{self.stage} is refusing connections\n")
        self.pending_accepts += 1
        try:
            if self.accept_delay_s:
                await asyncio.sleep(self.accept_delay_s)  # the scripted slowness of a restarting service
            await self._accepts_open.wait()
        finally:
            self.pending_accepts -= 1
        self.accepted_at.append(time.monotonic())
        return None

    async def _handle(self, ws: ServerConnection) -> None:
        conn = Connection(len(self.connections) + 1, ws=ws)
        self.connections.append(conn)
        stream = self.open_stream(conn)
        try:
            async for frame in ws:
                if isinstance(frame, bytes):
                    conn.audio_bytes += len(frame)
                    await stream.on_audio(frame)
                    continue
                try:
                    message = decode(self.adapter, frame)
                except WireError as err:
                    await conn.send(ErrorMessage(code=err.code, message=err.message))
                    continue
                conn.messages.append(message.type)
                await stream.on_message(message)
        except ConnectionClosed:
            pass
        finally:
            conn.closed = True
            await stream.close()

    def open_stream(self, conn: Connection) -> Stream:
        raise NotImplementedError


class Stream:
    """One connection's state in a fake stage."""

    def __init__(self, conn: Connection) -> None:
        self.conn = conn
        self.tasks: set[asyncio.Task[None]] = set()

    async def on_message(self, message: Any) -> None:
        pass

    async def on_audio(self, pcm: bytes) -> None:
        await self.conn.send(ErrorMessage(code="unexpected_binary", message="this stage takes JSON text frames only"))

    def spawn(self, work: Coroutine[Any, Any, None]) -> asyncio.Task[None]:
        task = asyncio.get_running_loop().create_task(work)
        self.tasks.add(task)
        task.add_done_callback(self.tasks.discard)
        return task

    async def close(self) -> None:
        for task in list(self.tasks):
            task.cancel()
        await asyncio.gather(*self.tasks, return_exceptions=True)


async def first_of(*events: asyncio.Event) -> None:
    waits = [asyncio.ensure_future(e.wait()) for e in events]
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for w in waits:
            w.cancel()


async def stopped_or_after(stop: asyncio.Event, seconds: float) -> None:
    """Waits ``seconds`` (a scripted delay) unless ``stop`` is set first."""
    with contextlib.suppress(asyncio.TimeoutError):
        await asyncio.wait_for(stop.wait(), seconds)
