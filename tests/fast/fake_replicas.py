"""Fake STT replicas for the pool tests: the fake STT (fake_stages.py) with the real stage's capacity contract.

Like a real stage (services/common/service.py), each reports ``sessions`` and ``max_sessions`` in /healthz and, at its
limit, refuses the handshake with HTTP 503 naming ``session_limit_reached``. Controls: ``max_sessions``, ``report_limit``,
``fail_health`` (/healthz answers 503 "failed" while streams are still accepted) and ``kill`` (the listening socket
goes and every connection is cut without a close frame, as when the process is killed).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import Awaitable, Callable, Iterator
from typing import Any

from websockets.asyncio.server import ServerConnection
from websockets.http11 import Request, Response

from tests.fast.fake_stages import FakeStages, FakeStt


class FakeSttReplica(FakeStt):
    def reset(self) -> None:
        super().reset()
        self.max_sessions: int | None = None  # None: no limit; 0: refuses every session
        self.report_limit = True  # False: /healthz does not tell the limit (the gateway learns it from a refusal)
        self.health_failing = False
        self.refused_full = 0  # handshakes refused at the limit

    def fail_health(self, failing: bool = True) -> None:
        self.health_failing = failing

    async def _process_request(self, connection: ServerConnection, request: Request) -> Response | None:
        if request.path == "/healthz":
            status = "failed" if self.health_failing else "ready"
            limit = self.max_sessions if self.report_limit else None
            body = {"stage": "stt", "status": status, "sessions": len(self.live()), "max_sessions": limit}
            response = connection.respond(503 if self.health_failing else 200, json.dumps(body))
            del response.headers["Content-Type"]
            response.headers["Content-Type"] = "application/json"
            return response
        if request.path == "/v1/stt" and self.max_sessions is not None and len(self.live()) >= self.max_sessions:
            self.refused_full += 1
            error = {"type": "error", "code": "session_limit_reached", "message": "stt serves its limit"}
            return connection.respond(503, json.dumps(error))
        return await super()._process_request(connection, request)

    async def _kill(self) -> None:
        assert self._server is not None
        self._server.close(close_connections=False)
        for conn in self.live():
            if conn.ws is not None:
                conn.ws.transport.abort()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._server.wait_closed(), 5)


class Replicas:
    """``n`` fake STT replicas on the fakes' loop."""

    def __init__(self, fakes: FakeStages, n: int) -> None:
        self.loop = fakes.loop
        self.all = [FakeSttReplica(fakes.loop) for _ in range(n)]
        self._run(lambda: asyncio.gather(*(r.start() for r in self.all)))

    def __iter__(self) -> Iterator[FakeSttReplica]:
        return iter(self.all)

    @property
    def urls(self) -> list[str]:
        return [r.url for r in self.all]

    def kill(self, replica: FakeSttReplica) -> None:
        self._run(replica._kill)

    def close(self) -> None:
        self._run(lambda: asyncio.gather(*(r.stop() for r in self.all)))

    def _run(self, make: Callable[[], Awaitable[Any]]) -> None:
        """Runs ``make()`` on the fakes' loop (made there, so its futures belong to it) and waits for it."""

        async def run() -> None:
            await make()

        asyncio.run_coroutine_threadsafe(run(), self.loop).result(timeout=30)
