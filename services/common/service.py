"""The parts every stage service shares: readiness, /healthz, /metrics, frame intake, uvicorn start.

Every stage app is built the same way: settings -> ``backends.get(settings.backend)`` (its registry, see
services/common/registry.py) -> a ``load`` that builds and warms the backend -> ``create_stage_app``, which loads it in
the background and hands it to the stream handler once ready.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager, suppress
from typing import Any, TypeVar

import uvicorn
from fastapi import FastAPI, WebSocket
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, TypeAdapter, ValidationError
from starlette.websockets import WebSocketDisconnect, WebSocketState

from services.common.messages import ErrorMessage
from services.common.metrics import Metrics
from services.common.registry import ConfigError as ConfigError  # re-exported: the gateway raises it too
from services.common.settings import ServiceSettings
from services.common.wire import WireError, decode, encode

log = logging.getLogger(__name__)

SESSION_LIMIT = "session_limit_reached"  # the error code of a stage (or gateway) at its limit of sessions

# uvicorn closes a connection on a frame bigger than this; below it our own limit answers with an error event.
TRANSPORT_MAX_BYTES = 16 * 1024 * 1024
STARTUP_FAILURE = 3  # uvicorn's exit code when the server cannot start

M = TypeVar("M")  # what the stage loads (its backend) and hands to every stream


class Readiness:
    """Whether the stage's model is loaded and warmed up; /healthz reports it."""

    def __init__(self) -> None:
        self.state = "loading"
        self.error: str | None = None
        self.load_seconds: float | None = None
        self.on_failure: Callable[[], None] | None = None  # serve() ends the process: a dead model is no service

    @property
    def ready(self) -> bool:
        return self.state == "ready"


def create_stage_app(
    stage: str,
    settings: ServiceSettings,
    load_model: Callable[[], M],
    ws_path: str,
    handle_stream: Callable[[WebSocket, M], Awaitable[None]],
    metrics: Metrics,
) -> FastAPI:
    """A FastAPI app that loads its model in the background (``load_model``, in a worker thread) and serves one
    WebSocket endpoint: ``handle_stream(ws, model)`` once the model is ready, a not_ready error before."""
    readiness = Readiness()
    loaded: list[M] = []  # the model, once load_model has returned

    async def load() -> None:
        started = time.perf_counter()
        try:
            loaded.append(await asyncio.to_thread(load_model))
        except Exception as exc:  # a broken model must show in /healthz, not kill the server silently
            log.exception("%s: model failed to load", stage)
            readiness.state, readiness.error = "failed", f"{type(exc).__name__}: {exc}"
            if readiness.on_failure is not None:
                readiness.on_failure()
            return
        readiness.load_seconds = time.perf_counter() - started
        readiness.state = "ready"
        log.info("%s: ready (model loaded and warmed up in %.1f s)", stage, readiness.load_seconds)

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        task = asyncio.create_task(load())
        yield
        task.cancel()

    app = FastAPI(title=f"s2s {stage}", lifespan=lifespan)
    app.state.readiness = readiness
    app.state.settings = settings
    app.state.metrics = metrics

    streams = [0]  # sessions served now (the gateway's pool reads it with the limit from /healthz)
    limit = settings.max_sessions

    @app.get("/healthz")
    async def healthz() -> JSONResponse:
        body = {
            "stage": stage,
            "status": readiness.state,
            "error": readiness.error,
            "load_seconds": readiness.load_seconds,
            "sessions": streams[0],
            "max_sessions": limit or None,
        }
        return JSONResponse(body, status_code=200 if readiness.ready else 503)

    @app.get("/metrics")
    async def prometheus() -> Response:
        return Response(metrics.render(), media_type="text/plain; version=0.0.4")

    @app.websocket(ws_path)
    async def stream(ws: WebSocket) -> None:
        if limit and streams[0] >= limit:  # checked and counted with no await between: sessions cannot slip past
            await refuse_full(ws, stage, limit)
            return
        streams[0] += 1
        try:
            await ws.accept()
            if not readiness.ready:
                await send(ws, ErrorMessage(code="not_ready", message=f"{stage} model is {readiness.state}"))
                await ws.close(code=1013)
                return
            with suppress(WebSocketDisconnect):
                await handle_stream(ws, loaded[0])
        finally:
            streams[0] -= 1

    return app


async def refuse_full(ws: WebSocket, stage: str, limit: int) -> None:
    """HTTP 503 before the upgrade, naming session_limit_reached (the gateway then tries another replica); a server
    without the denial extension accepts, sends the same code as an error message and closes (1013: try later)."""
    error = ErrorMessage(code=SESSION_LIMIT, message=f"{stage} serves its limit of {limit} sessions")
    try:
        await ws.send_denial_response(JSONResponse(error.model_dump(), status_code=503))
    except RuntimeError:
        await ws.accept()
        await send(ws, error)
        await ws.close(code=1013)


async def frames(
    ws: WebSocket, adapter: TypeAdapter[Any], max_bytes: int
) -> AsyncIterator[bytes | BaseModel | ErrorMessage]:
    """Yields binary frames as bytes, text frames as typed messages, bad input as ErrorMessage."""
    while True:
        event = await ws.receive()
        if event["type"] == "websocket.disconnect":
            return
        data: bytes | None = event.get("bytes")
        text: str | None = event.get("text")
        size = len(data) if data is not None else len(text or "")
        if size > max_bytes:
            yield ErrorMessage(
                code="message_too_large", message=f"message of {size} bytes exceeds the {max_bytes}-byte limit"
            )
            continue
        if data is not None:
            yield data
            continue
        try:
            yield decode(adapter, text or "")
        except WireError as err:
            yield ErrorMessage(code=err.code, message=err.message)


async def send(ws: WebSocket, message: BaseModel) -> bool:
    """Sends one message; False when the peer has gone (callers stop quietly)."""
    if ws.client_state != WebSocketState.CONNECTED:
        return False
    try:
        await ws.send_text(encode(message))
    except (WebSocketDisconnect, RuntimeError):
        return False
    return True


async def send_bytes(ws: WebSocket, data: bytes) -> bool:
    if ws.client_state != WebSocketState.CONNECTED:
        return False
    try:
        await ws.send_bytes(data)
    except (WebSocketDisconnect, RuntimeError):
        return False
    return True


def run_service(stage: str, settings_cls: type[ServiceSettings], create_app: Callable[[Any], FastAPI]) -> None:
    """What each ``python -m services.<stage>`` does: settings from the environment, then serve; bad settings get
    one clear line naming the variable, not a traceback."""
    try:
        settings = settings_cls()
    except ValidationError as err:
        prefix = settings_cls.model_config.get("env_prefix", "")
        problems = "; ".join(
            f"{prefix}{'_'.join(str(p) for p in e['loc']).upper()}={e.get('input')!r}: {e['msg']}" for e in err.errors()
        )
        sys.exit(f"{stage}: invalid settings: {problems}")
    try:
        app = create_app(settings)
    except ConfigError as err:
        sys.exit(f"{stage}: {err}")
    serve(app, settings)


def serve(app: FastAPI, settings: ServiceSettings) -> None:
    """uvicorn until SIGTERM/SIGINT; a stage whose model fails to load stops and exits 1 with the reason (after the
    traceback in its log), so that whatever runs it (compose's `restart:`, the runner) sees it die."""
    logging.basicConfig(level=settings.log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)  # health polls would drown the turn logs
    config = uvicorn.Config(
        app,
        host=settings.host,
        port=settings.port,
        log_level=settings.log_level,
        access_log=False,
        ws_max_size=TRANSPORT_MAX_BYTES,
        ws_ping_interval=20,
        ws_ping_timeout=60,
    )
    server = uvicorn.Server(config)
    readiness = getattr(app.state, "readiness", None)
    if isinstance(readiness, Readiness):
        readiness.on_failure = lambda: setattr(server, "should_exit", True)
    with suppress(KeyboardInterrupt):
        server.run()
    if isinstance(readiness, Readiness) and readiness.state == "failed":
        sys.exit(f"{app.title}: model failed to load: {readiness.error}")
    if not server.started:
        sys.exit(STARTUP_FAILURE)  # as uvicorn.run: the port could not be bound, or the lifespan failed
