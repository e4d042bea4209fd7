"""The stack as separate processes (what ``s2s up`` starts), with a gateway a test can kill and start again.

The four stage services run as in services/runner/cli.py ``plan()``; the gateway runs with a token, so clients must authenticate as they would off loopback.
"""

from __future__ import annotations

import secrets
import signal
import subprocess
import sys
from collections.abc import Iterator
from contextlib import ExitStack, contextmanager
from dataclasses import dataclass, field

from tests.procs import (
    Stack,
    free_port,
    service_process,
    start_logged,
    stop,
    wait_healthy,
)

STAGES = ("vad", "stt", "llm", "tts")


@dataclass
class SplitStack(Stack):
    gateway_env: dict[str, str] = field(default_factory=dict)
    gateway: subprocess.Popen | None = None

    def start_gateway(self, timeout_s: float = 60.0) -> None:
        self.gateway, log = start_logged([sys.executable, "-m", "services.gateway"], self.gateway_env)
        wait_healthy(f"{self.http}/healthz", self.gateway, log, timeout_s)

    def kill_gateway(self) -> None:
        """A crash, not a shutdown: SIGKILL, no close frames."""
        if self.gateway is not None and self.gateway.poll() is None:
            self.gateway.send_signal(signal.SIGKILL)
            self.gateway.wait(timeout=10)
        self.gateway = None

    def stop_gateway(self) -> None:
        if self.gateway is not None and self.gateway.poll() is None:
            stop(self.gateway, timeout_s=15)
        self.gateway = None


@contextmanager
def split_stack() -> Iterator[SplitStack]:
    ports = {stage: free_port() for stage in STAGES}
    with ExitStack() as stages:
        for stage in STAGES:
            env = {f"S2S_{stage.upper()}_PORT": str(ports[stage]), f"S2S_{stage.upper()}_HOST": "127.0.0.1"}
            stages.enter_context(service_process(f"services.{stage}", ports[stage], env=env))
        port = free_port()
        gateway_env = {
            "S2S_GATEWAY_HOST": "127.0.0.1",
            "S2S_GATEWAY_PORT": str(port),
            "S2S_GATEWAY_TOKEN": secrets.token_hex(8),
        }
        gateway_env.update({f"S2S_GATEWAY_{s.upper()}_URL": f"ws://127.0.0.1:{ports[s]}/v1/{s}" for s in STAGES})
        stack = SplitStack(port, gateway_env["S2S_GATEWAY_TOKEN"], gateway_env)
        stack.start_gateway()
        try:
            yield stack
        finally:
            stack.stop_gateway()
