"""Shared fixtures: the whole stack started once per test run, exactly as `make run` starts it."""

from __future__ import annotations

import os
from dataclasses import dataclass

import pytest

from tests.procs import free_port, service_process

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@dataclass
class Stack:
    port: int
    token: str | None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


@pytest.fixture(scope="session")
def stack() -> Stack:
    """``s2s up`` as a real process tree: five services on loopback, models loaded, gateway healthy."""
    port = free_port()
    with service_process("services.runner", port, args=["up", "--port", str(port), "--stage-port-base", "0"]):
        yield Stack(port=port, token=None)
