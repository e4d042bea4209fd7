"""`make deploy-runpod` against a fake RunPod API (REST v2, the default): GPU choice, every fault, Ctrl-C — and never a
leaked pod. The GraphQL provider's own tests: test_deploy_graphql.py; v2 specifics: test_deploy_v2.py."""

from __future__ import annotations

import sys
from io import StringIO

import pytest
from rich.console import Console

from deploy.deployer import Deployment
from deploy.provider import GpuOffer, PodInfo
from deploy.settings import DEFAULT_IMAGE, DeploySettings
from deploy.ui import Ui
from tests.deploy_helpers import LiveRun, deploy_env, read_state, run_deploy
from tests.fake_runpod import DEFAULT_GPUS, FakeGpu, FakeRunPod
from tests.procs import REPO

PRICE_LIST = (
    FakeGpu("TINY 16GB", 16, 0.05, 0.04),  # cheapest, too small
    FakeGpu("MID 24GB", 24, 0.40, 0.30),
    FakeGpu("BIG 48GB", 48, 0.35, 0.25),  # cheapest that fits
    FakeGpu("HUGE 80GB", 80, 2.50, 1.90),  # over the cap
    FakeGpu("COMMUNITY ONLY 24GB", 24, None, 0.10),  # not on SECURE cloud
)


@pytest.fixture
def fake():
    with FakeRunPod() as fake:
        yield fake
        assert fake.pods() == [], "a test left pods behind"


@pytest.fixture
def state_file(tmp_path):
    return tmp_path / "config" / "runpod.json"


def assert_no_pods(fake: FakeRunPod) -> None:
    assert fake.pods() == [], [pod.id for pod in fake.pods()]


def test_missing_api_key_is_one_line_before_any_api_call(fake, state_file):
    run = run_deploy(fake, state_file, "up", env={"RUNPOD_API_KEY": ""})
    assert run.returncode == 2
    assert run.stdout == ""
    assert len(run.stderr.strip().splitlines()) == 1 and "RUNPOD_API_KEY is not set" in run.stderr
    assert fake.requests == []


def test_dry_run_picks_the_cheapest_gpu_within_the_price_cap_and_vram_minimum(state_file):
    with FakeRunPod(gpus=PRICE_LIST) as fake:
        run = run_deploy(fake, state_file, "up", "--dry-run", "--min-vram", "24", "--max-price", "1.00")
        assert run.returncode == 0, run.output
        assert "1 × BIG 48GB on SECURE cloud at $0.35/h" in run.stdout
        assert "TINY" not in run.stdout  # below the VRAM minimum: not even listed
        assert "COMMUNITY ONLY" not in run.stdout  # not offered on SECURE cloud
        assert "over the price cap" in run.stdout  # HUGE
        assert "Dry run: nothing was created." in run.stdout
        assert "POST /v2/pods" not in fake.requests and not state_file.exists()

        run = run_deploy(
            fake, state_file, "up", "--dry-run", "--gpu-count", "2", "--min-vram", "48", "--max-price", "0.65"
        )
        assert run.returncode == 1
        assert "no GPU type fits: 2 × GPU with ≥ 48 GB on SECURE cloud for ≤ $0.65/h" in run.stderr
        assert "the cheapest with enough memory is BIG 48GB at $0.70/h" in run.stderr  # two GPUs, twice the price
        assert_no_pods(fake)


def test_no_capacity_falls_back_to_the_next_cheapest_gpu(state_file):
    with FakeRunPod(gpus=PRICE_LIST) as fake:
        fake.faults.no_capacity = {"BIG 48GB"}
        run = run_deploy(fake, state_file, "up")
        assert run.returncode == 0, run.output
        assert "RunPod has no capacity for BIG 48GB now" in run.stdout
        [pod] = fake.pods()
        assert pod.gpu.id == "MID 24GB" and read_state(state_file)["gpu"] == "MID 24GB"
        assert [c["gpu"]["id"] for c in fake.created] == ["BIG 48GB", "MID 24GB"]
        assert run_deploy(fake, state_file, "down").returncode == 0
        assert_no_pods(fake)


def test_a_pod_billed_above_the_cap_is_terminated(fake, state_file):
    fake.faults.billed_price_factor = 4.0  # listed $0.27/h, billed $1.08/h
    run = run_deploy(fake, state_file, "up")
    assert run.returncode == 1
    assert "RunPod bills this pod $1.08/h, over the cap $1.00/h" in run.stderr
    assert "terminated; nothing is left running or billing" in run.stdout
    assert_no_pods(fake)


def test_no_capacity_anywhere_fails_cleanly(fake, state_file):
    fake.faults.no_capacity = {gpu.id for gpu in DEFAULT_GPUS}
    run = run_deploy(fake, state_file, "up")
    assert run.returncode == 1
    assert "could not create a pod on any GPU type that fits" in run.stderr
    assert "No pod was created" in run.stdout
    assert_no_pods(fake)
    assert not state_file.exists()


def test_rejected_api_key(fake, state_file):
    run = run_deploy(fake, state_file, "up", env={"RUNPOD_API_KEY": "not-the-key"})
    assert run.returncode == 1
    assert "RunPod rejected the API key (HTTP 401)" in run.stderr
    assert set(fake.requests) == {"401"}
    assert_no_pods(fake)


def test_create_that_errors_after_making_the_pod_reuses_it_instead_of_making_another(fake, state_file):
    fake.faults.create_error_after_create = 1
    run = run_deploy(fake, state_file, "up")
    assert run.returncode == 0, run.output
    [pod] = fake.pods()
    assert f"the create call failed (RunPod API error while creating pod {pod.name}: HTTP 500" in run.stderr
    assert f"but RunPod did create pod {pod.id}; using it" in run.stderr
    assert len(fake.created) == 1
    assert read_state(state_file)["pod_id"] == pod.id
    down = run_deploy(fake, state_file, "down")
    assert down.returncode == 0 and f"Pod {pod.id} is gone" in down.stdout
    assert_no_pods(fake)
    assert not state_file.exists()


def test_ports_that_never_appear_time_out_and_terminate_the_pod(fake, state_file):
    fake.faults.ports_never_appear = True
    run = run_deploy(fake, state_file, "up", env={"S2S_DEPLOY_PORTS_TIMEOUT_S": "1.5"})
    assert run.returncode == 1
    assert "no public address for 8000/tcp after 1.5 s (status PROVISIONING, container not started)" in run.stderr
    assert "terminated; nothing is left running or billing" in run.stdout
    assert_no_pods(fake)
    assert not state_file.exists()


def test_health_check_that_never_passes_times_out_and_terminates_the_pod(fake, state_file):
    fake.faults.health_never_passes = True
    run = run_deploy(fake, state_file, "up", env={"S2S_DEPLOY_HEALTH_TIMEOUT_S": "1.5"})
    assert run.returncode == 1
    assert "was not healthy after 1.5 s (last: HTTP 503" in run.stderr
    assert "terminated; nothing is left running or billing" in run.stdout
    assert_no_pods(fake)


def test_http_500_on_every_get_aborts_and_terminates_the_pod(fake, state_file):
    fake.faults.get_pod_http_500 = -1
    run = run_deploy(fake, state_file, "up")
    assert run.returncode == 1
    assert "RunPod status calls failed 5 times in a row" in run.stderr and "not JSON" in run.stderr
    assert "terminated; nothing is left running or billing" in run.stdout
    assert_no_pods(fake)


def test_a_few_http_500s_on_get_are_retried(fake, state_file):
    fake.faults.get_pod_http_500 = 3
    run = run_deploy(fake, state_file, "up")
    assert run.returncode == 0, run.output
    assert fake.faults.get_pod_http_500 == 0
    assert run_deploy(fake, state_file, "down").returncode == 0
    assert_no_pods(fake)


def deploy_command() -> list[str]:
    """``make deploy-runpod`` (the install stamp treated as up to date: no reinstall in a test)."""
    makefile = REPO / "Makefile"
    if makefile.exists() and "deploy-runpod:" in makefile.read_text():
        return [
            "make",
            "--no-print-directory",
            "-o",
            ".venv/.installed-cpu",
            "deploy-runpod",
            f"PY={sys.executable}",
            "ARGS=",
        ]
    return [sys.executable, "-m", "deploy", "up"]  # what the target runs, until the Makefile has it


@pytest.mark.parametrize("moment", ["while_waiting_for_ports", "during_the_create_call"])
def test_ctrl_c_terminates_the_pod(fake, state_file, moment):
    if moment == "while_waiting_for_ports":
        fake.faults.ports_never_appear = True
    else:
        fake.faults.hold_create_response = True  # the pod exists but the deploy has not heard its id
    run = LiveRun(deploy_command(), deploy_env(fake, state_file, {"S2S_DEPLOY_PORTS_TIMEOUT_S": "120"}))
    try:
        [pod] = fake.wait_for_pods(1, timeout_s=60)
        if moment == "while_waiting_for_ports":
            run.wait_for_line(f"Pod {pod.id} created", timeout_s=30)
        run.interrupt()
    finally:
        returncode, output = run.finish(timeout_s=60)
    assert returncode != 0
    assert "error: deploy interrupted" in output
    assert f"Pod {pod.id} terminated; nothing is left running or billing" in output
    assert_no_pods(fake)
    assert not state_file.exists()


def test_keep_leaves_the_failed_pod_until_destroy(fake, state_file):
    fake.faults.health_never_passes = True
    run = run_deploy(fake, state_file, "up", "--keep", env={"S2S_DEPLOY_HEALTH_TIMEOUT_S": "0.5"})
    assert run.returncode == 1
    assert "--keep: pod" in run.stderr and "make destroy-runpod" in run.stderr
    [pod] = fake.pods()
    status = run_deploy(fake, state_file, "status")
    assert status.returncode == 0
    assert f"pod:       {pod.id}" in status.stdout and "gateway:   not ready" in status.stdout
    assert run_deploy(fake, state_file, "down").returncode == 0
    assert_no_pods(fake)


def test_pod_env_carries_token_model_settings_and_quoted_values_intact(fake, state_file):
    tricky = 'Say "hi" \\ then\nstop — ok'
    env = {"S2S_LLM_MODEL": "some/model", "S2S_LLM_PORT": "9999", "S2S_DEPLOY_POD_ENV": '{"S2S_TTS_VOICE": "joe"}'}
    run = run_deploy(fake, state_file, "up", "--env", f"S2S_LLM_SYSTEM_PROMPT={tricky}", env=env)
    assert run.returncode == 0, run.output
    [pod] = fake.pods()
    state = read_state(state_file)
    assert pod.env["S2S_LLM_SYSTEM_PROMPT"] == tricky
    assert pod.env["S2S_GATEWAY_TOKEN"] == state["token"] and len(state["token"]) >= 32
    assert pod.env["S2S_LLM_MODEL"] == "some/model" and pod.env["S2S_TTS_VOICE"] == "joe"
    assert "S2S_LLM_PORT" not in pod.env  # where a local process listens does not travel
    assert pod.ports == "8000/tcp" and pod.image == DEFAULT_IMAGE and pod.args == ""
    assert state_file.stat().st_mode & 0o777 == 0o600
    assert state["token"] not in run.output  # the token goes to the state file, not the terminal

    again = run_deploy(fake, state_file, "up")
    assert again.returncode == 1 and f"pod {pod.id} is already deployed" in again.stderr
    assert len(fake.pods()) == 1
    assert run_deploy(fake, state_file, "down").returncode == 0
    assert_no_pods(fake)


class BrokenStatusProvider:
    """In memory, behind the same Provider interface: status calls hit a bug (not a ProviderError)."""

    api_url = "http://127.0.0.1:9"

    def __init__(self) -> None:
        self.pods: dict[str, PodInfo] = {}

    def list_gpu_offers(self, cloud_type, gpu_count, min_vram_gb):
        return [GpuOffer("NVIDIA L4", "L4", 24, 0.43, 8)]

    def create_pod(self, spec):
        self.pods["pod1"] = PodInfo("pod1", spec.name, "RUNNING", 0.43, 0, "NVIDIA L4", False, {})
        return "pod1"

    def get_pod(self, pod_id):
        raise RuntimeError("a bug in reading the pod")

    def list_pods(self):
        return list(self.pods.values())

    def terminate_pod(self, pod_id):
        del self.pods[pod_id]


def test_an_unexpected_exception_after_create_still_terminates_the_pod(monkeypatch, state_file):
    monkeypatch.setenv("S2S_DEPLOY_STATE", str(state_file))
    out, err = StringIO(), StringIO()
    provider = BrokenStatusProvider()
    settings = DeploySettings(poll_interval_s=0.01, image=DEFAULT_IMAGE)
    deployment = Deployment(provider, settings, Ui(Console(file=out), Console(file=err)))
    with pytest.raises(RuntimeError, match="a bug in reading the pod"):
        deployment.up(environ={})
    assert provider.pods == {}
    assert "unexpected RuntimeError: a bug in reading the pod" in err.getvalue()
    assert "Pod pod1 terminated" in out.getvalue()
    assert not state_file.exists()
