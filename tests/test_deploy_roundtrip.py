"""The whole story against the fake RunPod: deploy → the real stack behind the "public" port → the file client, given
no URL or token, reads the state file and completes a spoken round trip → destroy → zero pods."""

from __future__ import annotations

import subprocess
import sys
from difflib import SequenceMatcher

import pytest
import soundfile as sf
from websockets.exceptions import InvalidStatus
from websockets.sync.client import connect

from tests.deploy_helpers import deploy_env, read_state, run_deploy
from tests.fake_runpod import FakeRunPod
from tests.procs import REPO
from tests.speech import speak

QUESTION = "What is the capital of France?"
# The stack loads real models on a shared 2-core box: give health its time, keep everything else short.
STACK_SETTINGS = {"S2S_DEPLOY_HEALTH_TIMEOUT_S": "300", "S2S_DEPLOY_POLL_INTERVAL_S": "0.5"}


def assert_token_required(endpoint: str) -> None:
    with pytest.raises(InvalidStatus) as refused, connect(endpoint, open_timeout=10):
        pass
    assert refused.value.response.status_code == 401


def test_deploy_talk_destroy(tmp_path):
    state_file = tmp_path / "runpod.json"
    question = speak(QUESTION, tmp_path / "question.wav")
    with FakeRunPod(launch_stack=True) as fake:
        up = run_deploy(fake, state_file, "up", env=STACK_SETTINGS, timeout_s=360)
        assert up.returncode == 0, up.output + fake.container_logs()
        [pod] = fake.pods()
        state = read_state(state_file)
        assert state["pod_id"] == pod.id and state["endpoint"] in up.stdout
        assert state["endpoint"].startswith("ws://127.0.0.1:") and state["endpoint"].endswith("/v1/realtime")
        assert_token_required(state["endpoint"])

        client = subprocess.run(
            [sys.executable, "-m", "client", "--input", str(question), "--output", str(tmp_path / "reply.wav")],
            env=deploy_env(fake, state_file),
            cwd=REPO,
            capture_output=True,
            text=True,
            timeout=180,
        )
        assert client.returncode == 0, client.stdout + client.stderr
        lines = {
            line.split(":", 1)[0]: line.split(":", 1)[1].strip() for line in client.stdout.splitlines() if ":" in line
        }
        # Whisper's greedy transcript of espeak speech varies ("capital and friends"): a fuzzy match, not luck
        assert SequenceMatcher(None, lines["user"].lower(), QUESTION.lower()).ratio() > 0.6, client.stdout
        assert lines["assistant"], client.stdout
        reply, rate = sf.read(str(tmp_path / "reply.wav"))
        assert len(reply) / rate > 0.3

        down = run_deploy(fake, state_file, "down")
        assert down.returncode == 0, down.output
        assert fake.pods() == []
        assert not state_file.exists()
        assert pod.stopped.wait(30) and pod.process is not None and pod.process.poll() is not None
