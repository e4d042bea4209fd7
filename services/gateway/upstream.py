"""A session's WebSocket link to one stage service: connect with a deadline, send, and read in a task."""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable
from typing import Any

import websockets
from pydantic import BaseModel, TypeAdapter

from services.common.wire import WireError, decode, encode

log = logging.getLogger(__name__)

Handler = Callable[[Any], Awaitable[None]]


class StageUnavailable(RuntimeError):
    def __init__(self, stage: str, url: str, reason: str) -> None:
        super().__init__(f"{stage} service at {url} is unavailable: {reason}")
        self.stage = stage


class StageLink:
    def __init__(
        self, stage: str, url: str, adapter: TypeAdapter[Any], on_frame: Handler, on_lost: Handler, timeout_s: float
    ) -> None:
        self.stage = stage
        self.url = url
        self._adapter = adapter
        self._on_frame = on_frame
        self._on_lost = on_lost
        self._timeout_s = timeout_s
        self._ws: websockets.ClientConnection | None = None
        self._reader: asyncio.Task[None] | None = None

    @property
    def connected(self) -> bool:
        return self._ws is not None

    async def connect(self, hello: BaseModel | None = None) -> None:
        try:
            self._ws = await asyncio.wait_for(websockets.connect(self.url, max_size=None, compression=None), self._timeout_s)
        except (OSError, asyncio.TimeoutError, websockets.InvalidHandshake, websockets.InvalidURI) as exc:
            raise StageUnavailable(self.stage, self.url, str(exc) or type(exc).__name__) from None
        if hello is not None:
            await self.send(hello)
        self._reader = asyncio.create_task(self._read(self._ws), name=f"{self.stage}-reader")

    async def send(self, message: BaseModel) -> None:
        await self._send(encode(message))

    async def send_bytes(self, data: bytes) -> None:
        await self._send(data)

    async def _send(self, frame: str | bytes) -> None:
        if self._ws is None:
            raise StageUnavailable(self.stage, self.url, "not connected")
        try:
            await self._ws.send(frame)
        except websockets.ConnectionClosed as exc:
            self._ws = None
            raise StageUnavailable(self.stage, self.url, f"connection closed ({exc.code})") from None

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
            if self._ws is ws:
                self._ws = None
                await self._on_lost(self.stage)

    async def close(self) -> None:
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()
        if self._reader is not None:
            self._reader.cancel()
