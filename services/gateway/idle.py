"""Idle shutdown: a gateway deployed on a RunPod pod terminates its own pod after a while without a session.

A forgotten pod bills by the hour; the deploy turns this on (``S2S_GATEWAY_IDLE_SHUTDOWN_S``) and it is off
everywhere else. The decision is pure (``decide``: sessions open and time since the last one → stop or not, and the
time left); an ASGI middleware counts the accepted ``/v1/realtime`` connections, a background task ticks, and the one
call with an effect — ``DELETE /v2/pods/{id}`` on RunPod's REST API — happens at the edge, in ``terminate_pod``.
``GET /idle`` reports the state (``make status-runpod`` shows the time left).
"""

from __future__ import annotations

import asyncio
import logging
import math
import os
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import httpx
from fastapi import FastAPI
from fastapi.responses import JSONResponse
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from services.gateway.settings import GatewaySettings

log = logging.getLogger(__name__)

SESSION_PATH = "/v1/realtime"
RETRY_AFTER_FAILURE_S = 60.0


@dataclass(frozen=True)
class IdleDecision:
    stop: bool
    left_s: float  # until the stop: the whole idle time while a session is open, inf when off


def decide(sessions: int, since_last_session_s: float, idle_s: float) -> IdleDecision:
    """Stop once no session has been open for ``idle_s`` seconds; an open session restarts the clock."""
    if idle_s <= 0:
        return IdleDecision(False, math.inf)
    if sessions > 0:
        return IdleDecision(False, idle_s)
    left = idle_s - since_last_session_s
    return IdleDecision(left <= 0, max(0.0, left))


async def terminate_pod(api_url: str, api_key: str, pod_id: str, timeout_s: float = 30.0) -> None:
    """RunPod REST v2: ``DELETE /v2/pods/{id}`` answers 204 (404: already gone). Raises on anything else."""
    async with httpx.AsyncClient(timeout=timeout_s) as http:
        answer = await http.delete(
            f"{api_url.rstrip('/')}/v2/pods/{pod_id}", headers={"Authorization": f"Bearer {api_key}"}
        )
    if answer.status_code not in (204, 404):
        raise RuntimeError(f"RunPod answered HTTP {answer.status_code}: {answer.text[:200]}")


class IdleWatch:
    def __init__(
        self,
        settings: GatewaySettings,
        clock: Callable[[], float] = time.monotonic,
        terminate: Callable[[str, str, str], Awaitable[None]] = terminate_pod,
    ) -> None:
        self.idle_s = settings.idle_shutdown_s
        self.interval_s = settings.idle_check_interval_s
        self.api_url = settings.runpod_api_url
        self.api_key = settings.runpod_api_key or os.environ.get("RUNPOD_API_KEY", "")  # RunPod's own pod key
        self.pod_id = settings.runpod_pod_id or os.environ.get("RUNPOD_POD_ID", "")  # set by RunPod in every pod
        self.clock, self.terminate = clock, terminate
        self.sessions = 0
        self.last_active = clock()
        self.state, self.error = ("watching" if self.idle_s > 0 else "off"), ""
        if self.idle_s > 0 and not (self.api_key and self.pod_id):
            self.state, self.error = "unable", "RUNPOD_POD_ID or an API key is missing: the pod cannot end itself"
            log.warning("idle shutdown: %s", self.error)

    def touch(self, delta: int) -> None:
        """A session opened (+1) or closed (-1): both count as activity."""
        self.sessions += delta
        self.last_active = self.clock()

    def decision(self) -> IdleDecision:
        return decide(self.sessions, self.clock() - self.last_active, self.idle_s)

    async def tick(self) -> None:
        if self.state not in ("watching", "retrying") or not self.decision().stop:
            return
        self.state = "terminating"
        log.warning("idle shutdown: no session for %.0f s; terminating pod %s", self.idle_s, self.pod_id)
        try:
            await self.terminate(self.api_url, self.api_key, self.pod_id)
        except Exception as exc:  # the API may be down for a while: say why and try again later
            self.state, self.error = "retrying", str(exc)
            self.last_active = self.clock() - self.idle_s + RETRY_AFTER_FAILURE_S
            log.error("idle shutdown: terminating pod %s failed: %s", self.pod_id, exc)
            return
        self.state, self.error = "terminated", ""
        log.warning("idle shutdown: pod %s terminated", self.pod_id)

    async def run(self) -> None:
        while True:
            await self.tick()
            await asyncio.sleep(self.interval_s)

    def report(self) -> dict[str, Any]:
        decision = self.decision()
        return {
            "enabled": self.idle_s > 0,
            "state": self.state,
            "shutdown_after_s": self.idle_s,
            "sessions": self.sessions,
            "idle_s": 0.0 if self.sessions else round(self.clock() - self.last_active, 1),
            "left_s": None if math.isinf(decision.left_s) else round(decision.left_s, 1),
            "pod_id": self.pod_id,
            "error": self.error,
        }


class SessionActivity:
    """ASGI middleware: an accepted ``/v1/realtime`` connection is a session from its accept to its end."""

    def __init__(self, app: ASGIApp, watch: IdleWatch) -> None:
        self.app, self.watch = app, watch

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "websocket" or scope.get("path") != SESSION_PATH:
            await self.app(scope, receive, send)
            return
        accepted = False

        async def watch_send(message: Message) -> None:
            nonlocal accepted
            if message["type"] == "websocket.accept" and not accepted:
                accepted = True
                self.watch.touch(+1)
            await send(message)

        try:
            await self.app(scope, receive, watch_send)
        finally:
            if accepted:
                self.watch.touch(-1)


def install_idle_shutdown(app: FastAPI, settings: GatewaySettings) -> IdleWatch:
    """Adds the session counter, ``GET /idle`` and (when on) the watch task that runs with the app's lifespan."""
    watch = IdleWatch(settings)
    app.add_middleware(SessionActivity, watch=watch)

    async def idle() -> JSONResponse:
        return JSONResponse(watch.report())

    app.add_api_route("/idle", idle, methods=["GET"], include_in_schema=False)
    if settings.idle_shutdown_s > 0:
        inner = app.router.lifespan_context

        @asynccontextmanager
        async def lifespan(application: Any) -> AsyncIterator[Any]:
            async with inner(application) as state:
                task = asyncio.create_task(watch.run(), name="idle-shutdown")
                try:
                    yield state
                finally:
                    task.cancel()
                    await asyncio.gather(task, return_exceptions=True)

        app.router.lifespan_context = lifespan
    return watch
