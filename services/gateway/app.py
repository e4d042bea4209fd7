"""Gateway app: ``WS /v1/realtime`` (OpenAI Realtime dialect), ``/healthz`` (all stages ready), ``/metrics``, and the
browser page at ``/``."""

from __future__ import annotations

import asyncio
import hmac
import ipaddress
import itertools
import logging
import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse, Response

from services.common import realtime_server as ev
from services.common.service import SESSION_LIMIT, ConfigError
from services.gateway.idle import install_idle_shutdown
from services.gateway.metrics import GatewayMetrics
from services.gateway.replicas import StagePools
from services.gateway.session import RealtimeSession
from services.gateway.settings import GatewaySettings
from services.gateway.web import mount_web

log = logging.getLogger(__name__)

MODEL_NAME = "s2s-cascade"
BROWSER_TOKEN_PREFIX = "openai-insecure-api-key."  # how browsers pass a key: WebSocket subprotocol


class InsecureBindError(ConfigError):
    pass


def is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def presented_token(ws: WebSocket) -> tuple[str | None, str | None]:
    """The client's token and, for browsers, the subprotocol to echo back."""
    auth = ws.headers.get("authorization", "")
    if auth.lower().startswith("bearer "):
        return auth[7:].strip(), None
    for proto in ws.headers.get("sec-websocket-protocol", "").split(","):
        proto = proto.strip()
        if proto.startswith(BROWSER_TOKEN_PREFIX):
            return proto[len(BROWSER_TOKEN_PREFIX) :], proto
    return None, None


def create_app(settings: GatewaySettings | None = None) -> FastAPI:
    settings = settings or GatewaySettings()
    if not settings.token and not is_loopback(settings.host):
        raise InsecureBindError(
            f"refusing to listen on {settings.host} without a token: set S2S_GATEWAY_TOKEN (e.g. `openssl rand -hex 16`)"
        )
    metrics = GatewayMetrics()
    session_numbers = itertools.count(1)
    open_sessions: set[str] = set()
    pools = StagePools(settings)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        await pools.resolve()  # the dns+ pools have their replicas before the first session
        task = asyncio.create_task(pools.run(), name="stage-pools")
        try:
            yield
        finally:
            task.cancel()
            await asyncio.gather(task, return_exceptions=True)

    app = FastAPI(title="s2s gateway", lifespan=lifespan)
    app.state.settings = settings
    app.state.pools = pools
    install_idle_shutdown(app, settings)  # a deployed pod ends itself without sessions (off unless set)

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        async with httpx.AsyncClient() as http:
            await pools.check(http)  # fresh answers, which the pools take too
        ready, states, replicas = pools.report()
        return JSONResponse(
            {
                "status": "ready" if ready else "degraded",
                "stages": states,
                "replicas": replicas,
                "sessions": len(open_sessions),
            },
            status_code=200 if ready else 503,
        )

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.websocket("/v1/realtime")
    async def realtime(ws: WebSocket) -> None:
        token, subprotocol = presented_token(ws)
        if settings.token and not (token and hmac.compare_digest(token.encode(), settings.token.encode())):
            await refuse_token(ws)
            return
        await ws.accept(subprotocol=subprotocol)
        session_id = f"{next(session_numbers)}{secrets.token_hex(3)}"
        if len(open_sessions) >= settings.max_sessions:
            detail = ev.ErrorDetail(
                code=SESSION_LIMIT,
                message=f"the server holds its limit of {settings.max_sessions} conversations",
            )
            await ws.send_json(ev.to_wire(ev.ErrorEvent(event_id=f"event_{session_id}_1", error=detail)))
            await ws.close(code=1013)
            return
        open_sessions.add(session_id)
        metrics.sessions.inc()
        try:
            model = ws.query_params.get("model", MODEL_NAME)
            await RealtimeSession(ws, session_id, settings, metrics, model, pools.handles).run()
        except Exception:  # one broken session must not take others down; log it with its id
            log.exception("session %s failed", session_id)
        finally:
            open_sessions.discard(session_id)
            metrics.sessions.dec()

    mount_web(app)
    return app


async def refuse_token(ws: WebSocket) -> None:
    """HTTP 401 before the upgrade, so a client can tell a wrong token from a wrong address (403/404)."""
    try:
        await ws.send_denial_response(JSONResponse({"error": "invalid or missing bearer token"}, status_code=401))
    except RuntimeError:  # a server without the WebSocket denial extension: a plain refusal (HTTP 403)
        await ws.close(code=1008, reason="invalid or missing bearer token")
