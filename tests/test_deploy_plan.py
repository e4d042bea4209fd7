"""The deploy's pure decisions, without a fake or a process: which GPU, which pod, which environment, how an API
answer reads, and when an idle pod ends itself."""

from __future__ import annotations

import asyncio
import base64
import io
import math
import shlex
import subprocess
import sys
import tarfile
import zlib

import httpx
import pytest

from deploy.bootstrap_plan import CPU_STEPS, GPU_STEPS, LAUNCHER, packed_bootstrap, plan_for
from deploy.lifecycle import idle_text
from deploy.plan import choose_offers, full_pod_env, pod_env, pod_spec, why_nothing_fits
from deploy.provider import AuthError, BadRequest, GpuOffer, NoCapacity, NoFunds, ProviderError
from deploy.rest_provider import error_for, gpu_offers, pod_info
from deploy.settings import DEFAULT_IMAGE, DeploySettings
from deploy.upload import pack_project
from services.gateway.idle import IdleWatch, decide
from services.gateway.settings import GatewaySettings
from tests.fake_runpod_pods import FakeGpu, gpu_as_v2


def offer(gpu_id: str, price: float, stock: str | None = "HIGH", vram: int = 24, cloud: str = "SECURE") -> GpuOffer:
    return GpuOffer(gpu_id, gpu_id, vram, price, 8, cloud, stock)  # type: ignore[arg-type]


def test_out_of_stock_offers_are_never_chosen_and_the_rest_go_cheapest_first():
    offers = [offer("A", 0.20, "NONE"), offer("B", 0.30, "LOW"), offer("C", 0.30, "HIGH"), offer("D", 0.25, None)]
    assert [o.id for o in choose_offers(offers, DeploySettings())] == ["D", "C", "B"]
    nothing = [offer("A", 0.20, "NONE"), offer("E", 2.0)]
    assert choose_offers(nothing, DeploySettings()) == []
    assert "out of stock now: A" in why_nothing_fits(nothing, DeploySettings())


def test_rest_offers_on_all_clouds_are_one_per_cloud_with_that_clouds_price():
    gpus = [gpu_as_v2(FakeGpu("G", 24, 0.40, 0.30), cloud, 1, True, True) for cloud in ("SECURE", "COMMUNITY")]
    offers = gpu_offers([gpus[0]], "SECURE", 1, 24) + gpu_offers([gpus[1]], "COMMUNITY", 1, 24)
    chosen = choose_offers(offers, DeploySettings(cloud_type="ALL"))
    assert [(o.cloud, o.price_per_gpu_hr) for o in chosen] == [("COMMUNITY", 0.30), ("SECURE", 0.40)]
    community_only = gpu_as_v2(FakeGpu("H", 24, None, 0.10), "SECURE", 1, True, True)
    assert gpu_offers([community_only], "SECURE", 1, 24) == []  # a placeholder price off-cloud is no offer


def test_the_pod_is_the_base_image_with_the_installer_unless_an_own_image_is_set():
    base = pod_env(DeploySettings(), "tok", {"S2S_LLM_MODEL": "m", "S2S_LLM_PORT": "1"}, {})
    default = DeploySettings()
    env = full_pod_env(default, base, "https://api", "key", plan_for(default), "ab" * 32, "print('x')")
    spec = pod_spec(default, "s2s-1", offer("G", 0.3), env)
    assert spec.image == default.base_image and spec.args == LAUNCHER and spec.cloud_type == "SECURE"
    assert env["S2S_BOOTSTRAP_SHA256"] == "ab" * 32 and env["S2S_GATEWAY_RUNPOD_API_KEY"] == "key"
    assert env["S2S_GATEWAY_IDLE_SHUTDOWN_S"] == "1800" and env["S2S_LLM_MODEL"] == "m" and "S2S_LLM_PORT" not in env
    own = DeploySettings(image=DEFAULT_IMAGE, idle_minutes=0)
    own_env = full_pod_env(own, base, "https://api", "key", None, "", "")
    assert pod_spec(own, "s2s-2", offer("G", 0.3), own_env).args == ""
    assert "S2S_BOOTSTRAP" not in own_env and "S2S_GATEWAY_RUNPOD_API_KEY" not in own_env  # no key without need
    pod_key = DeploySettings(idle_key="pod")
    assert "S2S_GATEWAY_RUNPOD_API_KEY" not in full_pod_env(pod_key, base, "u", "key", None, "", "")


def test_install_plans_gpu_cpu_and_custom():
    gpu = plan_for(DeploySettings())
    assert gpu.steps == GPU_STEPS and 'S2S_PROFILE="gpu"' in gpu.start and "venv-parler" in gpu.start
    assert any("pins.txt" in step for step in gpu.steps)  # the base image's torch is kept
    cpu = plan_for(DeploySettings(install="cpu"))
    assert cpu.steps == CPU_STEPS and 'S2S_PROFILE="cpu"' in cpu.start
    custom = plan_for(DeploySettings(install_steps=["echo hi"], start_command="exec x", bootstrap_wait_s=5))
    assert (custom.steps, custom.start, custom.wait_s) == (("echo hi",), "exec x", 5)


def test_the_launcher_runs_the_installer_text_from_the_environment():
    argv = shlex.split(LAUNCHER)  # RunPod passes `args` as one string; a shell-style split must keep it whole
    assert argv[:2] == ["python3", "-c"] and len(argv) == 3
    env = {"S2S_BOOTSTRAP": packed_bootstrap("import sys\nprint('installer ran', __name__)\n"), "PATH": "/usr/bin:/bin"}
    out = subprocess.run([sys.executable, *argv[1:]], env=env, capture_output=True, text=True, check=True).stdout
    assert out == "installer ran __main__\n"
    assert zlib.decompress(base64.b64decode(packed_bootstrap("x" * 1000))) == b"x" * 1000


def test_the_project_tarball_is_reproducible_and_holds_only_what_the_pod_installs():
    first, second = pack_project(), pack_project()
    assert first.sha256 == second.sha256 and first.data == second.data
    with tarfile.open(fileobj=io.BytesIO(first.data)) as tar:
        names = tar.getnames()
    assert "pyproject.toml" in names and "services/gateway/app.py" in names and "requirements/parler.txt" in names
    assert not [n for n in names if "__pycache__" in n or n.startswith(("tests/", "deploy/", "client/"))]


def v2_pod(**over: object) -> dict:
    base = {"id": "p1", "name": "s2s-1", "status": "RUNNING", "cost": 0.44, "gpu": {"id": "NVIDIA L4", "count": 1}}
    return {**base, **over}


def test_v2_pods_read_public_tcp_mappings_only():
    ports = [
        {"private": 8000, "public": 8000, "type": "tcp", "ip": "100.65.0.2"},  # private address: not for clients
        {"private": 8000, "public": 41234, "type": "tcp", "ip": "203.0.113.7"},
        {"private": 8888, "public": 50000, "type": "http", "ip": "203.0.113.7"},
        {"private": 22, "public": None, "type": "tcp", "ip": None},  # not mapped yet
    ]
    pod = pod_info(v2_pod(runtime={"uptime": 12, "ports": ports}))
    assert pod.public_tcp == {8000: ("203.0.113.7", 41234)} and pod.started and pod.uptime_s == 12
    starting = pod_info(v2_pod(status="PROVISIONING", runtime={}))
    assert not starting.started and starting.public_tcp == {} and not starting.failed
    assert pod_info(v2_pod(status="ERROR", runtime=None)).failed


@pytest.mark.parametrize(
    ("status", "what", "kind"),
    [
        (400, "creating pod x", NoCapacity),
        (403, "creating pod x", NoCapacity),
        (402, "creating pod x", NoFunds),
        (422, "creating pod x", BadRequest),
        (401, "listing pods", AuthError),
        (403, "listing pods", AuthError),
        (500, "listing pods", ProviderError),
    ],
)
def test_v2_error_codes_decide_what_the_deploy_does(status, what, kind):
    body = {"title": "x", "status": status, "detail": "why", "errors": ["$: additional properties 'y' not allowed"]}
    error = error_for(httpx.Response(status, json=body), what)
    assert type(error) is kind
    if status != 401:
        assert "why" in str(error) and "'y' not allowed" in str(error)
    assert "not JSON" in str(error_for(httpx.Response(502, text="<html>bad gateway"), "getting pod p1"))


def test_idle_decision():
    assert decide(0, 10.0, 0) == decide(3, 1e9, 0)  # off
    assert math.isinf(decide(0, 10.0, 0).left_s)
    assert decide(1, 1e9, 60).stop is False and decide(1, 1e9, 60).left_s == 60  # a session holds the clock
    assert decide(0, 59.5, 60).stop is False and decide(0, 59.5, 60).left_s == pytest.approx(0.5)
    assert decide(0, 60.0, 60).stop is True and decide(0, 61.0, 60).left_s == 0


def test_idle_watch_terminates_once_and_retries_after_a_failed_call(monkeypatch):
    monkeypatch.delenv("RUNPOD_API_KEY", raising=False)
    now = [0.0]
    calls: list[tuple[str, str, str]] = []
    failures = [RuntimeError("RunPod answered HTTP 503")]

    async def terminate(url: str, key: str, pod_id: str) -> None:
        calls.append((url, key, pod_id))
        if failures:
            raise failures.pop()

    settings = GatewaySettings(idle_shutdown_s=60, runpod_api_key="k", runpod_pod_id="p1", runpod_api_url="u")
    watch = IdleWatch(settings, clock=lambda: now[0], terminate=terminate)
    watch.touch(+1)
    now[0] = 500.0
    asyncio.run(watch.tick())
    assert calls == [] and watch.report()["sessions"] == 1
    watch.touch(-1)
    now[0] = 559.0
    asyncio.run(watch.tick())
    assert calls == [] and watch.report()["left_s"] == 1.0
    now[0] = 560.0
    asyncio.run(watch.tick())
    assert calls == [("u", "k", "p1")] and watch.state == "retrying" and "HTTP 503" in watch.error
    asyncio.run(watch.tick())
    assert len(calls) == 1  # the next try waits a minute
    now[0] = 620.0
    asyncio.run(watch.tick())
    assert len(calls) == 2 and watch.state == "terminated"
    asyncio.run(watch.tick())
    assert len(calls) == 2
    unable = IdleWatch(GatewaySettings(idle_shutdown_s=60, runpod_pod_id=""), terminate=terminate)
    assert unable.state == "unable" and "missing" in unable.report()["error"]


def test_status_words_for_the_idle_report():
    assert idle_text({"enabled": False}).startswith("off")
    report = {"enabled": True, "state": "watching", "shutdown_after_s": 1800, "sessions": 0, "left_s": 754.2}
    assert idle_text(report) == "12 min 34 s left (ends itself after 30 min without a session)"
    assert "2 session(s) open" in idle_text({**report, "sessions": 2})
    assert "retrying: HTTP 503" in idle_text({**report, "state": "retrying", "error": "HTTP 503"})


def test_the_docs_list_every_deploy_setting_with_its_default_and_meaning():
    import json

    from tests.procs import REPO

    docs = (REPO / "docs" / "deploy-runpod.md").read_text()
    readme = (REPO / "README.md").read_text()
    for name, field in DeploySettings.model_fields.items():
        default = field.default if field.default_factory is None else field.default_factory()  # type: ignore[call-arg]
        shown = json.dumps(default) if isinstance(default, (list, dict)) else default
        row = f"| `S2S_DEPLOY_{name.upper()}` | `{shown}` | {(field.description or '').replace('|', chr(92) + '|')} |"
        assert row in docs and row in readme, f"docs/deploy-runpod.md and README.md need: {row}"


def test_the_built_in_install_is_valid_shell_and_the_gpu_start_runs_s2s_up_with_the_gpu_profile(tmp_path):
    for step in (*GPU_STEPS, *CPU_STEPS):
        assert subprocess.run(["sh", "-n", "-c", step], capture_output=True).returncode == 0, step
    venv_bin, cuda_lib = tmp_path / "venv" / "bin", tmp_path / "venv/lib/python3.12/site-packages/nvidia/cublas/lib"
    venv_bin.mkdir(parents=True)
    cuda_lib.mkdir(parents=True)
    (venv_bin / "s2s").write_text('#!/bin/sh\necho "$S2S_PROFILE|$S2S_RUNNER_TTS_PYTHON|$LD_LIBRARY_PATH|$*"\n')
    (venv_bin / "s2s").chmod(0o755)
    env = {
        "PATH": "/usr/bin:/bin",
        "S2S_HOME": str(tmp_path),
        "S2S_GATEWAY_HOST": "0.0.0.0",
        "S2S_GATEWAY_PORT": "8000",
    }
    out = subprocess.run(["sh", "-c", plan_for(DeploySettings()).start], env=env, capture_output=True, text=True)
    profile, tts_python, libs, args = out.stdout.strip().split("|")
    assert (profile, tts_python) == ("gpu", f"{tmp_path}/venv-parler/bin/python")
    assert str(cuda_lib) in libs.split(":") and args == "up --host 0.0.0.0 --port 8000 --stage-port-base 8001"
