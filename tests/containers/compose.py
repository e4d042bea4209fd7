"""`docker compose` and `docker` as a user runs them, for the container tier: one compose project per use, its own
token and published port, taken down with its volumes at the end."""

from __future__ import annotations

import json
import secrets
import subprocess
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

from tests.procs import REPO, free_port

COMPOSE_FILE = REPO / "docker-compose.yml"
WAIT_TIMEOUT_S = 300  # `up --wait`: the CPU models load in seconds; healthchecks run every 10 s
CPU_IMAGES = ("s2s-vad:cpu", "s2s-stt:cpu", "s2s-llm:cpu", "s2s-tts:cpu", "s2s-gateway")


def docker(*args: str, timeout: float = 120, check: bool = True) -> subprocess.CompletedProcess[str]:
    done = subprocess.run(["docker", *args], capture_output=True, text=True, timeout=timeout, check=False)
    if check and done.returncode != 0:
        raise AssertionError(
            f"docker {' '.join(args)} exited {done.returncode}:\n{done.stdout[-3000:]}{done.stderr[-3000:]}"
        )
    return done


@dataclass
class Project:
    """A compose project of docker-compose.yml (plus ``overrides``), with the settings a user's .env would hold."""

    name: str
    env_file: Path
    token: str
    port: int
    overrides: tuple[Path, ...] = ()

    @property
    def url(self) -> str:
        return f"ws://127.0.0.1:{self.port}/v1/realtime"

    def compose(self, *args: str, timeout: float = 600, check: bool = True) -> subprocess.CompletedProcess[str]:
        files = [arg for path in (COMPOSE_FILE, *self.overrides) for arg in ("-f", str(path))]
        return docker(
            "compose", "-p", self.name, "--env-file", str(self.env_file), *files, *args, timeout=timeout, check=check
        )

    def up(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        """`docker compose up --wait`: returns once every service started is healthy (or fails)."""
        wait = ("--wait", "--wait-timeout", str(WAIT_TIMEOUT_S))
        return self.compose("up", *wait, *args, timeout=WAIT_TIMEOUT_S + 120, check=check)

    def containers(self, service: str) -> list[dict]:
        """`docker compose ps` of one service: its containers' Name, State, Health, ExitCode..."""
        out = self.compose("ps", "--all", "--format", "json", service).stdout
        text = out.strip()
        if text.startswith("["):  # older compose: one JSON array; newer: one object a line
            return json.loads(text)
        return [json.loads(line) for line in text.splitlines() if line.strip()]

    def logs(self, service: str) -> str:
        done = self.compose("logs", "--no-color", service, check=False)
        return done.stdout + done.stderr


@contextmanager
def project(name: str, directory: Path, overrides: tuple[Path, ...] = ()) -> Iterator[Project]:
    """A fresh project (its leftovers from an interrupted run removed first), always taken down with its volumes."""
    token, port = secrets.token_urlsafe(24), free_port()
    env_file = directory / f"{name}.env"
    env_file.write_text(f"S2S_GATEWAY_TOKEN={token}\nS2S_PUBLISH_ADDRESS=127.0.0.1\nS2S_PUBLISH_PORT={port}\n")
    running = Project(name=name, env_file=env_file, token=token, port=port, overrides=overrides)
    running.compose("down", "--volumes", "--remove-orphans", check=False)
    try:
        yield running
    finally:
        running.compose("down", "--volumes", "--remove-orphans", check=False)


def ask(running: Project, question: Path, reply: Path) -> subprocess.CompletedProcess[str]:
    """The file client as a user runs it: `python -m client --input q.wav --output r.wav` (URL and token given)."""
    argv = [sys.executable, "-m", "client", "--url", running.url, "--token", running.token]
    argv += ["--input", str(question), "--output", str(reply), "--timeout", "120"]
    return subprocess.run(argv, cwd=REPO, capture_output=True, text=True, timeout=240, check=False)


def said(output: str, who: str) -> str:
    """The client's `user: ...` / `assistant: ...` line."""
    return next((line.split(":", 1)[1].strip() for line in output.splitlines() if line.startswith(f"{who}:")), "")
