"""`s2s up` (what `make run` starts): names a dying child and why, and stops every child on Ctrl-C."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import httpx
import psutil
import pytest

from tests.procs import REPO, free_port, service_env, wait_healthy


def runner(port: int, env: dict[str, str] | None = None) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "services.runner", "up", "--port", str(port), "--stage-port-base", "0"],
        env=service_env(env),
        cwd=REPO,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def wait_for_text(log, text: str, timeout_s: float = 30.0) -> None:
    deadline = time.monotonic() + timeout_s
    while text not in log.read_text():
        assert time.monotonic() < deadline, f"{text!r} not printed:\n{log.read_text()[-2000:]}"
        time.sleep(0.05)  # polling a log file for a line, with a deadline


def test_a_child_that_dies_is_named_with_its_reason():
    proc = runner(free_port(), {"S2S_TTS_BACKEND": "no-such-backend"})
    output, _ = proc.communicate(timeout=120)
    assert proc.returncode == 1
    assert "error: tts stopped (exit code 1)" in output
    assert "tts: invalid settings: S2S_TTS_BACKEND='no-such-backend'" in output  # its last lines say why
    assert "tts | " in output  # log lines carry the service's name


PARLER_PYTHON = REPO / ".venv-parler" / "bin" / "python"


def test_ctrl_c_stops_every_child(tmp_path):
    """Also runs TTS from another virtualenv (S2S_RUNNER_TTS_PYTHON), as the all-in-one image does for parler."""
    if not PARLER_PYTHON.exists() and not os.environ.get("CI"):
        pytest.skip("no .venv-parler here: make parler-venv (CI always builds it)")
    port = free_port()
    log = tmp_path / "runner.log"
    env = {"S2S_RUNNER_TTS_PYTHON": str(PARLER_PYTHON), "S2S_TTS_BACKEND": "espeak"}
    with log.open("w") as out:
        proc = subprocess.Popen(
            [sys.executable, "-m", "services.runner", "up", "--port", str(port), "--stage-port-base", "0"],
            env=service_env(env),
            cwd=REPO,
            stdout=out,
            stderr=subprocess.STDOUT,
        )
    try:
        wait_healthy(f"http://127.0.0.1:{port}/healthz", proc, log)
        children = psutil.Process(proc.pid).children(recursive=True)
        modules = {c.cmdline()[-1]: c for c in children if "-m" in c.cmdline()}
        assert set(modules) >= {"services.vad", "services.stt", "services.llm", "services.tts", "services.gateway"}
        assert modules["services.tts"].cmdline()[0] == str(PARLER_PYTHON)
        wait_for_text(log, f"ready: ws://127.0.0.1:{port}/v1/realtime")
        # The browser address it prints serves the page.
        wait_for_text(log, "Press Ctrl-C to stop.")
        found = re.search(r"in a browser: +(\S+)", log.read_text())
        assert found, log.read_text()
        page = found.group(1)
        assert page == f"http://127.0.0.1:{port}/" and "s2s — talk to the assistant" in httpx.get(page).text, page
        os.kill(proc.pid, signal.SIGINT)
        assert proc.wait(timeout=60) == 0
        _gone, alive = psutil.wait_procs(children, timeout=30)
        assert alive == []
        try:
            httpx.get(f"http://127.0.0.1:{port}/healthz", timeout=2)
            raise AssertionError("the gateway still answers after Ctrl-C")
        except httpx.TransportError:
            pass
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
