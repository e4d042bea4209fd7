"""Start project services as real processes on loopback and wait for their /healthz."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parent.parent


@dataclass
class Stack:
    """Where a running gateway listens, and the token it wants (None: none)."""

    port: int
    token: str | None

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    @property
    def http(self) -> str:
        return f"http://127.0.0.1:{self.port}"


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def service_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    env = {**os.environ, "HF_HUB_OFFLINE": "1", "PYTHONUNBUFFERED": "1"}
    env["PYTHONPATH"] = str(REPO) + os.pathsep + env.get("PYTHONPATH", "")
    env.update(extra or {})
    return env


def wait_healthy(url: str, proc: subprocess.Popen, log_path: Path, timeout_s: float = 180.0) -> None:
    """Polls /healthz until 200; fails early with the log if the process dies."""
    deadline = time.monotonic() + timeout_s
    with httpx.Client(timeout=2.0) as http:
        while time.monotonic() < deadline:
            if proc.poll() is not None:
                raise RuntimeError(f"{url} exited with {proc.returncode}:\n{log_path.read_text()[-4000:]}")
            try:
                answer = http.get(url)
                if answer.status_code == 200:
                    return
                if (
                    answer.headers.get("content-type", "").startswith("application/json")
                    and answer.json().get("status") == "failed"
                ):
                    raise RuntimeError(f"{url} reports its model failed to load: {answer.json().get('error')}")
            except httpx.TransportError:
                pass
            time.sleep(0.1)  # polling interval of a readiness check, not synchronisation by sleeping
    raise TimeoutError(f"{url} not healthy after {timeout_s} s:\n{log_path.read_text()[-4000:]}")


@contextmanager
def command_process(
    argv: list[str], health_url: str, env: dict[str, str] | None = None, timeout_s: float = 300.0, cwd: Path = REPO
) -> Iterator[Path]:
    """Runs ``argv`` (from the repository root unless ``cwd``) and yields its log file once ``health_url`` answers 200."""
    proc, log = start_logged(argv, env, cwd)
    try:
        wait_healthy(health_url, proc, log, timeout_s)
        yield log
    finally:
        stop(proc)


def start_logged(argv: list[str], env: dict[str, str] | None = None, cwd: Path = REPO) -> tuple[subprocess.Popen, Path]:
    """Starts ``argv`` with its output going to a fresh log file (what wait_healthy shows when it fails)."""
    log = Path(tempfile.mkstemp(prefix=Path(argv[0]).name + "-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=service_env(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    return proc, log


def stop(proc: subprocess.Popen, timeout_s: float = 30.0) -> None:
    """SIGTERM (the runner, s2s up, stops its children on it), then SIGKILL if it is still there after ``timeout_s``."""
    proc.terminate()
    try:
        proc.wait(timeout=timeout_s)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


@contextmanager
def service_process(
    module: str,
    port: int,
    env: dict[str, str] | None = None,
    args: list[str] | None = None,
    health_path: str = "/healthz",
) -> Iterator[str]:
    """Runs ``python -m module`` and yields its base URL once ``health_path`` answers 200."""
    base = f"http://127.0.0.1:{port}"
    with command_process([sys.executable, "-m", module, *(args or [])], base + health_path, env):
        yield base
