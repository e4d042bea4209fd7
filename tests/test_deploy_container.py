"""The no-own-image path in a real container, timed: a plain Python base image (no project inside) runs the deploy's
installer exactly as a pod would (the same command and environment), receives this checkout from the deploy's upload
code, installs the embedded CPU stack (S2S_DEPLOY_INSTALL=cpu), starts it, and the file client gets a spoken answer.

Opt-in (it downloads the stack's packages and builds llama.cpp: about ten minutes on two cores): needs a Docker
engine with a ``python:3.11-slim-bookworm`` image (``bash ../shared/tools/docker-here.sh``) and
``S2S_TEST_CONTAINER_START=1``. Run with ``-s`` to see the phase times.
"""

from __future__ import annotations

import os
import secrets
import shlex
import shutil
import subprocess
import sys
import time
from difflib import SequenceMatcher
from io import StringIO
from pathlib import Path

import pytest
from rich.console import Console

from deploy.bootstrap_plan import BOOTSTRAP_SOURCE, LAUNCHER, bootstrap_env, plan_for
from deploy.settings import DeploySettings
from deploy.ui import Ui
from deploy.upload import pack_project, upload_project
from deploy.waits import wait_for_health
from tests.procs import REPO, free_port, service_env
from tests.speech import speak

BASE = "python:3.11-slim-bookworm"
DOCKER = "/usr/bin/docker" if Path("/usr/bin/docker").exists() else (shutil.which("docker") or "docker")
QUESTION = "What is the capital of France?"


def engine_ready() -> bool:
    try:
        return subprocess.run([DOCKER, "image", "inspect", BASE], capture_output=True, timeout=30).returncode == 0
    except (OSError, subprocess.TimeoutExpired):
        return False


pytestmark = pytest.mark.skipif(
    os.environ.get("S2S_TEST_CONTAINER_START") != "1" or not engine_ready(),
    reason=f"opt-in: S2S_TEST_CONTAINER_START=1 and a Docker engine with {BASE}",
)


@pytest.mark.timeout(3600)
def test_a_plain_python_container_installs_the_project_and_answers(tmp_path):
    settings = DeploySettings(
        image="", install="cpu", health_timeout_s=2400, poll_interval_s=2, health_request_timeout_s=5
    )
    plan, project, token, port = plan_for(settings), pack_project(), secrets.token_urlsafe(16), free_port()
    env = {
        **bootstrap_env(plan, project.sha256, BOOTSTRAP_SOURCE.read_text()),
        "S2S_GATEWAY_TOKEN": token,
        "S2S_GATEWAY_HOST": "0.0.0.0",
        "S2S_GATEWAY_PORT": "8000",
    }
    name = f"s2s-boot-{secrets.token_hex(3)}"
    command = [DOCKER, "run", "-d", "--name", name, "-p", f"127.0.0.1:{port}:8000"]
    for key, value in env.items():
        command += ["-e", f"{key}={value}"]
    ui = Ui(Console(file=StringIO()), Console(file=StringIO()))
    started = time.monotonic()
    subprocess.run([*command, BASE, *shlex.split(LAUNCHER)], check=True, capture_output=True)
    try:
        upload_project("127.0.0.1", port, token, project, settings, ui)
        uploaded = time.monotonic()
        installed = wait_for_health("127.0.0.1", port, settings, ui, installing=True) or uploaded
        healthy = time.monotonic()
        question = speak(QUESTION, tmp_path / "question.wav")
        url, reply = f"ws://127.0.0.1:{port}/v1/realtime", str(tmp_path / "reply.wav")
        client = subprocess.run(
            [
                sys.executable,
                "-m",
                "client",
                "--url",
                url,
                "--token",
                token,
                "--input",
                str(question),
                "--output",
                reply,
            ],
            env=service_env(),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=300,
        )
        answered = time.monotonic()
        assert client.returncode == 0, client.stdout + client.stderr
        lines = dict(line.split(":", 1) for line in client.stdout.splitlines() if ":" in line)
        assert SequenceMatcher(None, lines["user"].strip().lower(), QUESTION.lower()).ratio() > 0.6, client.stdout
        assert lines["assistant"].strip(), client.stdout
        print(
            f"\ncontainer start timing ({BASE}, install=cpu, project sha256 {project.sha256[:12]}): "
            f"installer answering {uploaded - started:.0f} s, install {installed - uploaded:.0f} s, "
            f"models loaded {healthy - installed:.0f} s, ready {healthy - started:.0f} s after `docker run`; "
            f"first answer {answered - healthy:.1f} s later ({lines['user'].strip()!r} -> {lines['assistant'].strip()!r})"
        )
    finally:
        logs = subprocess.run([DOCKER, "logs", "--tail", "40", name], capture_output=True, text=True).stdout
        subprocess.run([DOCKER, "rm", "-f", name], capture_output=True)
        print(f"--- container log (tail)\n{logs}")
