"""Shared fixtures: the whole stack started once per test run, exactly as `make run` starts it."""

from __future__ import annotations

import os
from collections.abc import Iterator

import pytest

from tests.procs import Stack, free_port, service_process
from tests.split_stack import split_stack
from tests.virtual_sound import virtual_sound_card

os.environ.setdefault("HF_HUB_OFFLINE", "1")


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    """``s2s up`` as a real process tree: five services on loopback, models loaded, gateway healthy."""
    port = free_port()
    with service_process("services.runner", port, args=["up", "--port", str(port), "--stage-port-base", "0"]):
        yield Stack(port=port, token=None)


@pytest.fixture(scope="module")
def gateway():
    """The stack as separate processes with a token, and a gateway the test may kill and start again (one per module)."""
    with split_stack() as stack:
        yield stack


@pytest.fixture(scope="module")
def sound_card(tmp_path_factory):
    """A private PulseAudio server with a virtual speaker and microphone (one per module)."""
    with virtual_sound_card(tmp_path_factory.mktemp("vsnd")) as card:
        yield card
