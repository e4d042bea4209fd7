"""Shared fixtures: the whole stack started once per test run, exactly as `make run` starts it."""

from __future__ import annotations

import os

import pytest

from tests.procs import Stack, free_port, service_process

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def stack() -> Stack:
    """``s2s up`` as a real process tree: five services on loopback, models loaded, gateway healthy."""
    port = free_port()
    with service_process("services.runner", port, args=["up", "--port", str(port), "--stage-port-base", "0"]):
        yield Stack(port=port, token=None)
