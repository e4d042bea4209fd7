"""No image of one's own: the pod starts from a base image, the real installer (deploy/bootstrap.py) takes this checkout
over the pod's port, runs the install steps and hands the port to the gateway; a gateway without sessions ends its own
pod through the fake's REST v2 API; a failed install or a pod nobody finishes ends too. The gateway's stages are the
fast tier's scripted fakes (tests/fast/fake_stages.py), so no model loads here."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from websockets.sync.client import connect

from deploy.bootstrap_plan import BootstrapPlan
from deploy.plan import full_pod_env, pod_env, pod_spec
from deploy.provider import GpuOffer
from deploy.rest_provider import RestProvider
from deploy.settings import DeploySettings
from deploy.upload import pack_project
from tests.deploy_helpers import read_state, run_deploy
from tests.fake_runpod import FakeRunPod
from tests.fast.fake_stages import FakeStages
from tests.procs import REPO, free_port

IDLE_MINUTES = 0.1  # 6 s
START_GATEWAY = f'PYTHONPATH="$S2S_SRC" exec {sys.executable} -m services.gateway'
CHECK_STEPS = json.dumps(
    ['test -f "$S2S_SRC/pyproject.toml"', 'test -f "$S2S_SRC/services/gateway/idle.py" && echo "project unpacked"']
)


@pytest.fixture
def fake() -> Iterator[FakeRunPod]:
    with FakeRunPod() as fake:
        yield fake
        assert fake.pods() == [], "a test left pods behind"


@pytest.fixture(scope="module")
def stages() -> Iterator[FakeStages]:
    fakes = FakeStages()
    try:
        yield fakes
    finally:
        fakes.close()


def install_env(steps: str = CHECK_STEPS, **extra: str) -> dict[str, str]:
    return {
        "S2S_DEPLOY_IMAGE": "",
        "S2S_DEPLOY_INSTALL_STEPS": steps,
        "S2S_DEPLOY_START_COMMAND": START_GATEWAY,
        "S2S_DEPLOY_IDLE_MINUTES": str(IDLE_MINUTES),
        **extra,
    }


def gateway_flags(stages: FakeStages) -> list[str]:
    flags = ["--env", "S2S_GATEWAY_IDLE_CHECK_INTERVAL_S=0.2"]
    for stage, url in stages.urls().items():
        flags += ["--env", f"S2S_GATEWAY_{stage.upper()}_URL={url}"]
    return flags


def test_install_at_start_then_the_idle_pod_ends_itself_through_the_api(fake, stages, tmp_path):
    state_file = tmp_path / "runpod.json"
    up = run_deploy(fake, state_file, "up", *gateway_flags(stages), env=install_env())
    assert up.returncode == 0, up.output + fake.container_logs()
    [pod] = fake.pods()
    state = read_state(state_file)
    project = pack_project()
    assert pod.image == DeploySettings().base_image and pod.args.startswith("python3 -c ")
    assert pod.env["S2S_BOOTSTRAP_SHA256"] == project.sha256 == state["project_sha256"]
    assert f"Project uploaded (sha256 {project.sha256[:12]})" in up.stdout and ", install " in up.stdout
    assert "project unpacked" in fake.container_logs() and "[bootstrap] step 2 done" in fake.container_logs()
    assert pod.env["S2S_GATEWAY_RUNPOD_API_KEY"] == fake.api_key and state["token"] not in up.output

    status = run_deploy(fake, state_file, "status")
    assert status.returncode == 0 and "gateway:   healthy" in status.stdout
    assert "left (ends itself after 0.1 min without a session)" in status.stdout, status.stdout

    # An open session holds the pod past the idle time; closing it starts the clock, and the pod goes.
    with connect(state["endpoint"], additional_headers={"Authorization": f"Bearer {state['token']}"}):
        idle = httpx.get(state["endpoint"].replace("ws://", "http://").replace("/v1/realtime", "/idle")).json()
        assert idle["sessions"] == 1 and idle["state"] == "watching"
        with pytest.raises(TimeoutError):
            fake.wait_for_pods(0, timeout_s=IDLE_MINUTES * 60 * 1.5)
    fake.wait_for_pods(0, timeout_s=30)
    assert ("DELETE", pod.id, "") in fake.v2_log and "DELETE /v2/pods/{id}" in fake.requests
    assert f"idle shutdown: no session for 6 s; terminating pod {pod.id}" in fake.container_logs()

    down = run_deploy(fake, state_file, "down")  # the record of a pod that ended itself is cleared as usual
    assert down.returncode == 0 and not state_file.exists()


def test_a_failed_install_fails_the_deploy_at_once_and_terminates_the_pod(fake, tmp_path):
    steps = json.dumps(["echo 'no wheel for this platform'; exit 3"])
    run = run_deploy(fake, tmp_path / "s.json", "up", env=install_env(steps, S2S_DEPLOY_HEALTH_TIMEOUT_S="60"))
    assert run.returncode == 1
    assert "installing the project in the pod failed: step 1 of 1 failed (exit 3)" in run.stderr
    assert "no wheel for this platform" in run.stderr
    assert "terminated; nothing is left running or billing" in run.stdout


def test_a_pod_nobody_uploads_to_ends_itself_after_its_wait(fake, tmp_path):
    """The deploy died between create and upload (or RunPod restarted the container): the installer ends the pod."""
    settings = DeploySettings(image="", bootstrap_wait_s=1.0, idle_minutes=30)
    provider = RestProvider(fake.api_key, fake.url)
    plan = BootstrapPlan(("true",), "exec true", settings.bootstrap_wait_s)
    base = pod_env(settings, "t0ken", {}, {})
    source = (REPO / "deploy" / "bootstrap.py").read_text()
    env = full_pod_env(settings, base, provider.api_url, fake.api_key, plan, "0" * 64, source)
    offer = GpuOffer("NVIDIA L4", "L4", 24, 0.43, 8, "SECURE", "HIGH")
    pod_id = provider.create_pod(pod_spec(settings, "s2s-orphan", offer, env))
    assert [pod.id for pod in fake.wait_for_pods(1, timeout_s=10)] == [pod_id]
    fake.wait_for_pods(0, timeout_s=60)
    assert "nothing finished this pod within 1.0 s" in fake.container_logs()
    assert ("DELETE", pod_id, "") in fake.v2_log  # through the API, with the key (the container dies with the pod)


def test_the_installer_takes_only_the_planned_project_from_the_token_holder(tmp_path):
    project = pack_project()
    port = free_port()
    env = {
        "PATH": "/usr/bin:/bin",
        "S2S_GATEWAY_TOKEN": "right-token",
        "S2S_GATEWAY_HOST": "127.0.0.1",
        "S2S_GATEWAY_PORT": str(port),
        "S2S_BOOTSTRAP_SHA256": project.sha256,
        "S2S_BOOTSTRAP_PLAN": BootstrapPlan(("true",), "exec sleep 30", 60).as_json(),
        "S2S_BOOTSTRAP_DIR": str(tmp_path),
    }
    proc = subprocess.Popen(
        [sys.executable, str(Path(REPO) / "deploy" / "bootstrap.py")],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        assert proc.stdout is not None
        assert "listening on" in proc.stdout.readline()  # the port is bound once this line is out
        url = f"http://127.0.0.1:{port}"
        health = httpx.get(f"{url}/healthz")
        assert health.status_code == 503 and health.json()["phase"] == "waiting"
        put = f"{url}/bootstrap/project"
        assert httpx.put(put, content=project.data, headers={"Authorization": "Bearer wrong"}).status_code == 401
        other = httpx.put(put, content=project.data + b"x", headers={"Authorization": "Bearer right-token"})
        assert other.status_code == 400 and "is not the planned" in other.json()["error"]
        good = httpx.put(put, content=project.data, headers={"Authorization": "Bearer right-token"})
        assert good.status_code == 202 and good.json()["sha256"] == project.sha256
        for line in proc.stdout:  # the installer's own account, line by line, until the install is through
            if "[bootstrap] starting: installed" in line:
                break
        assert (tmp_path / "src" / "services" / "gateway" / "app.py").is_file()
        assert not list((tmp_path / "src").rglob("__pycache__"))
    finally:
        proc.kill()
        proc.wait()
