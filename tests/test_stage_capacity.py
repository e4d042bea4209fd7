"""A stage's session limit (S2S_<STAGE>_MAX_SESSIONS, services/common/service.py), on the real VAD service and
through a real gateway: /healthz reports the load and the limit, a session beyond it is refused before the upgrade
(HTTP 503 naming session_limit_reached), and the gateway tells its client so at once."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
import time
from pathlib import Path

import httpx
import pytest
import websockets

from tests.procs import free_port, service_process, start_logged, stop


@pytest.fixture(scope="module")
def vad_port():
    port = free_port()
    env = {"S2S_VAD_PORT": str(port), "S2S_VAD_MAX_SESSIONS": "1", "S2S_VAD_END_OF_TURN": "silence"}
    with service_process("services.vad", port, env):
        yield port


def health(port: int) -> dict:
    return httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=5).json()


async def test_a_stage_at_its_limit_refuses_the_next_session_and_takes_one_when_a_slot_frees(vad_port):
    url = f"ws://127.0.0.1:{vad_port}/v1/vad"
    assert (health(vad_port)["sessions"], health(vad_port)["max_sessions"]) == (0, 1)
    async with websockets.connect(url) as first:
        await first.send(json.dumps({"type": "vad.start"}))
        assert health(vad_port)["sessions"] == 1
        with pytest.raises(websockets.InvalidStatus) as refused:
            await websockets.connect(url)
        assert refused.value.response.status_code == 503
        body = json.loads(refused.value.response.body)
        assert body["code"] == "session_limit_reached" and "vad" in body["message"]
    async with websockets.connect(url) as again:  # the slot is free once the first has gone
        await again.send(json.dumps({"type": "vad.start"}))
        await again.send(bytes(3200))
        await again.send("{}")  # answered in order: the stream is served
        assert json.loads(await again.recv())["code"] == "missing_type"


async def test_the_gateway_tells_its_client_when_the_stage_is_full(vad_port):
    """The other stages are not even running: the full VAD decides before they matter."""
    port, token = free_port(), secrets.token_hex(8)
    closed = {s: f"ws://127.0.0.1:{free_port()}/v1/{s}" for s in ("stt", "llm", "tts")}
    env = {
        "S2S_GATEWAY_PORT": str(port),
        "S2S_GATEWAY_TOKEN": token,
        "S2S_GATEWAY_VAD_URL": f"ws://127.0.0.1:{vad_port}/v1/vad",
        **{f"S2S_GATEWAY_{s.upper()}_URL": u for s, u in closed.items()},
    }
    proc, log = start_logged([sys.executable, "-m", "services.gateway"], env)
    try:
        wait_answering(f"http://127.0.0.1:{port}/healthz", proc, log)
        async with websockets.connect(f"ws://127.0.0.1:{vad_port}/v1/vad"):  # the VAD's one session is taken
            headers = {"Authorization": f"Bearer {token}"}
            async with websockets.connect(f"ws://127.0.0.1:{port}/v1/realtime", additional_headers=headers) as ws:
                first = json.loads(await ws.recv())
                assert first["type"] == "error" and first["error"]["code"] == "session_limit_reached", first
                assert "vad" in first["error"]["message"]
                with pytest.raises(websockets.ConnectionClosed) as closed_by:
                    await ws.recv()
                assert closed_by.value.rcvd is not None and closed_by.value.rcvd.code == 1013
    finally:
        stop(proc, timeout_s=10)


def wait_answering(url: str, proc: subprocess.Popen, log: Path, timeout_s: float = 30.0) -> None:
    """Until ``url`` answers at all (the gateway is degraded here: three of its stages are not running)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        assert proc.poll() is None, f"the gateway exited:\n{log.read_text()[-3000:]}"
        try:
            httpx.get(url, timeout=5)
            return
        except httpx.TransportError:
            time.sleep(0.1)  # polling interval of a port that is about to open, not synchronisation
    raise AssertionError(f"{url} never answered:\n{log.read_text()[-3000:]}")
