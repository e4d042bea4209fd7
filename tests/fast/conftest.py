"""The fast tier's fixtures: four scripted fake stages in this process, the REAL gateway as a subprocess, a client.

Everything is a real socket and the gateway is the real program (``python -m services.gateway``); only the models
are gone, replaced by fakes (tests/fast/fake_stages.py) whose answers are exact, so a test can say which words a
turn must come back with. One gateway and one set of fakes serve the whole tier; each test opens its own session.
"""

from __future__ import annotations

import secrets
import sys
from collections.abc import AsyncIterator, Awaitable, Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from tests.fast.fake_stages import FakeStages
from tests.fast.realtime_client import Realtime, open_realtime
from tests.procs import free_port, start_logged, stop, wait_healthy

STAGE_TIMEOUT_S = 4  # the gateway's watchdog: a hung turn becomes an error within a test's deadline


@dataclass
class Gateway:
    url: str
    token: str
    log: Path

    def log_size(self) -> int:
        return self.log.stat().st_size

    def log_since(self, offset: int) -> str:
        with self.log.open("rb") as f:
            f.seek(offset)
            return f.read().decode(errors="replace")


@pytest.fixture(scope="session")
def fakes() -> Iterator[FakeStages]:
    stages = FakeStages()
    try:
        yield stages
    finally:
        stages.close()


@pytest.fixture(scope="session")
def gateway(fakes: FakeStages) -> Iterator[Gateway]:
    port, token = free_port(), secrets.token_hex(8)
    env = {
        "S2S_GATEWAY_HOST": "127.0.0.1",
        "S2S_GATEWAY_PORT": str(port),
        "S2S_GATEWAY_TOKEN": token,
        "S2S_GATEWAY_STAGE_TIMEOUT_S": str(STAGE_TIMEOUT_S),
        "S2S_GATEWAY_CONNECT_TIMEOUT_S": "3",
        "S2S_GATEWAY_SPECULATIVE_REPLY": "true",  # off by default for now; this tier covers it
        **{f"S2S_GATEWAY_{stage.upper()}_URL": url for stage, url in fakes.urls().items()},
    }
    proc, log = start_logged([sys.executable, "-m", "services.gateway"], env)
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, log, timeout_s=30)
        yield Gateway(f"ws://127.0.0.1:{port}/v1/realtime", token, log)
    finally:
        stop(proc, timeout_s=10)
    assert proc.returncode in (0, -15), f"gateway exited with {proc.returncode}:\n{log.read_text()[-3000:]}"


@pytest.fixture(autouse=True)
def fresh_fakes(fakes: FakeStages) -> Iterator[None]:
    """Every test starts with accepting, undelayed fakes and empty records."""
    fakes.reset()
    yield
    fakes.reset()


@pytest.fixture
async def connect(gateway: Gateway) -> AsyncIterator[Callable[..., Awaitable[Realtime]]]:
    """Opens Realtime sessions (16 kHz both ways, mic streaming silence); closes them after the test."""
    opened: list[Realtime] = []

    async def open_one(**kwargs: Any) -> Realtime:
        client = await open_realtime(gateway.url, gateway.token, **kwargs)
        opened.append(client)
        return client

    yield open_one
    for client in opened:
        await client.close()


@pytest.fixture
async def client(connect: Callable[..., Awaitable[Realtime]]) -> Realtime:
    return await connect()
