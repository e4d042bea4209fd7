"""Running the deploy command as a real process against the fake RunPod API."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import threading
from dataclasses import dataclass
from pathlib import Path

from deploy.settings import DEFAULT_IMAGE
from tests.fake_runpod import FakeRunPod
from tests.procs import REPO, service_env

# Short deadlines keep the fault tests fast; every wait in the deploy code is a poll against one of these. The pod runs
# the all-in-one image (the fake's stub container) unless a test empties S2S_DEPLOY_IMAGE for the install-at-start path.
FAST_SETTINGS = {
    "S2S_DEPLOY_IMAGE": DEFAULT_IMAGE,
    "S2S_DEPLOY_POLL_INTERVAL_S": "0.05",
    "S2S_DEPLOY_PORTS_TIMEOUT_S": "20",
    "S2S_DEPLOY_HEALTH_TIMEOUT_S": "20",
    "S2S_DEPLOY_HEALTH_REQUEST_TIMEOUT_S": "1",
    "S2S_DEPLOY_TERMINATE_TIMEOUT_S": "10",
}


@dataclass
class Run:
    returncode: int
    stdout: str
    stderr: str

    @property
    def output(self) -> str:
        return self.stdout + self.stderr


def deploy_env(fake: FakeRunPod, state_file: Path, extra: dict[str, str] | None = None) -> dict[str, str]:
    env = service_env(
        {
            "RUNPOD_API_BASE_URL": fake.url,
            "RUNPOD_API_KEY": fake.api_key,
            "S2S_DEPLOY_STATE": str(state_file),
            **FAST_SETTINGS,
        }
    )
    for name in ("S2S_URL", "S2S_TOKEN", "S2S_GATEWAY_TOKEN"):  # the client would prefer these to the state file
        env.pop(name, None)
    ours = {"S2S_DEPLOY_STATE", *FAST_SETTINGS}
    for name in [key for key in env if key.startswith("S2S_DEPLOY_") and key not in ours]:
        env.pop(name)  # the developer's own deploy settings must not steer a test

    for name in (
        "MAKEFLAGS",
        "MFLAGS",
        "MAKELEVEL",
        "ARGS",
    ):  # under `make test ARGS=…` an inner make would inherit that ARGS
        env.pop(name, None)
    env.update(extra or {})
    return env


def run_deploy(
    fake: FakeRunPod, state_file: Path, *args: str, env: dict[str, str] | None = None, timeout_s: float = 120
) -> Run:
    """``python -m deploy ARGS`` as a real process, exactly what ``make deploy-runpod`` runs."""
    proc = subprocess.run(
        [sys.executable, "-m", "deploy", *args],
        env=deploy_env(fake, state_file, env),
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=timeout_s,
    )
    return Run(proc.returncode, proc.stdout, proc.stderr)


def read_state(state_file: Path) -> dict:
    return json.loads(state_file.read_text())


class LiveRun:
    """A command whose output is read as it comes, so a test can act at a given moment (e.g. press Ctrl-C)."""

    def __init__(self, command: list[str], env: dict[str, str]) -> None:
        # Its own process group, signalled as a whole: what a terminal does on Ctrl-C (make forwards no SIGINT itself).
        self.proc = subprocess.Popen(
            command,
            env=env,
            cwd=REPO,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            start_new_session=True,
        )
        self.lines: list[str] = []
        self._changed = threading.Condition()
        self._reader = threading.Thread(target=self._read, daemon=True)
        self._reader.start()

    def _read(self) -> None:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            with self._changed:
                self.lines.append(line)
                self._changed.notify_all()

    def wait_for_line(self, text: str, timeout_s: float) -> str:
        with self._changed:
            found = self._changed.wait_for(lambda: any(text in line for line in self.lines), timeout_s)
            if not found:
                raise TimeoutError(f"no line with {text!r} after {timeout_s} s:\n{''.join(self.lines)}")
            return next(line for line in self.lines if text in line)

    def interrupt(self) -> None:
        os.killpg(self.proc.pid, signal.SIGINT)

    def finish(self, timeout_s: float) -> tuple[int, str]:
        try:
            self.proc.wait(timeout=timeout_s)
        finally:
            if self.proc.poll() is None:
                os.killpg(self.proc.pid, signal.SIGKILL)
                self.proc.wait()
        self._reader.join(5)
        return self.proc.returncode, "".join(self.lines)
