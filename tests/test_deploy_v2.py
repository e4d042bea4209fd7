"""The REST v2 provider against the fake's v2 routes: stock-aware GPU choice, a create that errors after creating,
ports that come late, a pod that goes to ERROR, and the fake's own fidelity (unknown fields named, honest codes).
After every test the fake lists no pod."""

from __future__ import annotations

import httpx
import pytest

from deploy.provider import NoCapacity
from deploy.rest_provider import RestProvider
from tests.deploy_helpers import read_state, run_deploy
from tests.fake_runpod import FakeGpu, FakeRunPod

STOCK_LIST = (
    FakeGpu("CHEAP 24GB", 24, 0.20, 0.15),  # cheapest that fits: out of stock in the tests below
    FakeGpu("NEXT 24GB", 24, 0.30, 0.22),
    FakeGpu("DEAR 48GB", 48, 0.80, 0.60),
)


@pytest.fixture
def fake():
    with FakeRunPod(gpus=STOCK_LIST) as fake:
        yield fake
        assert fake.pods() == [], "a test left pods behind"


@pytest.fixture
def state_file(tmp_path):
    return tmp_path / "runpod.json"


def pod_calls(fake: FakeRunPod, pod_id: str) -> list[tuple[str, str]]:
    return [(method, status) for method, pid, status in fake.v2_log if pid == pod_id]


def test_the_cheapest_gpu_out_of_stock_is_never_tried_and_the_next_one_is_used(fake, state_file):
    fake.faults.out_of_stock = {"CHEAP 24GB"}
    run = run_deploy(fake, state_file, "up")
    assert run.returncode == 0, run.output
    assert [body["gpu"]["id"] for body in fake.created] == ["NEXT 24GB"]  # no blind create on CHEAP
    assert "out of stock" in run.stdout and "1 × NEXT 24GB on SECURE cloud at $0.30/h" in run.stdout
    [pod] = fake.pods()
    assert pod.gpu.id == "NEXT 24GB" and read_state(state_file)["gpu"] == "NEXT 24GB"
    assert run_deploy(fake, state_file, "down").returncode == 0


def test_everything_that_fits_out_of_stock_fails_before_any_create(fake, state_file):
    fake.faults.out_of_stock = {"CHEAP 24GB", "NEXT 24GB"}
    run = run_deploy(fake, state_file, "up", "--max-price", "0.50")
    assert run.returncode == 1
    assert "out of stock now: CHEAP 24GB, NEXT 24GB" in run.stderr
    assert fake.created == [] and not state_file.exists()


def test_a_500_after_the_create_made_the_pod_makes_no_duplicate_and_leaks_nothing(fake, state_file):
    fake.faults.create_error_after_create = 1
    fake.faults.health_never_passes = True  # and then the deploy fails: the pod it did not hear about must go too
    run = run_deploy(fake, state_file, "up", env={"S2S_DEPLOY_HEALTH_TIMEOUT_S": "1"})
    assert run.returncode == 1
    assert len(fake.created) == 1, "a second create after the 500 would be a duplicate pod"
    assert "HTTP 500" in run.stderr and "but RunPod did create pod" in run.stderr
    assert "terminated; nothing is left running or billing" in run.stdout
    assert not state_file.exists()


def test_ports_that_come_late_are_waited_for(fake, state_file):
    fake.faults.ports_after_polls = 5  # RUNNING, but the public mapping shows only on the 6th poll
    run = run_deploy(fake, state_file, "up")
    assert run.returncode == 0, run.output
    [pod] = fake.pods()
    assert [status for _, status in pod_calls(fake, pod.id)].count("RUNNING") >= 6
    assert read_state(state_file)["endpoint"].startswith("ws://127.0.0.1:")
    assert run_deploy(fake, state_file, "down").returncode == 0


def test_a_pull_error_is_seen_within_one_poll_and_the_pod_terminated(fake, state_file):
    fake.faults.start_error = True
    run = run_deploy(fake, state_file, "up", env={"S2S_DEPLOY_PORTS_TIMEOUT_S": "120"})
    assert run.returncode == 1
    assert "is in RunPod's ERROR state" in run.stderr
    pod_id = read_state_or_created_id(run.stdout)
    calls = pod_calls(fake, pod_id)
    first_error = calls.index(("GET", "ERROR"))
    assert calls[first_error + 1][0] == "DELETE", calls  # the poll that saw ERROR is the last one before the delete
    assert calls.count(("GET", "ERROR")) == 1
    assert "terminated; nothing is left running or billing" in run.stdout


def read_state_or_created_id(stdout: str) -> str:
    line = next(line for line in stdout.splitlines() if line.startswith("Pod ") and " created " in line)
    return line.split()[1]


def test_the_fake_rejects_unknown_fields_by_name_with_the_documented_problem_body(fake):
    headers = {"Authorization": f"Bearer {fake.api_key}"}
    body = {"name": "x", "image": "i", "gpu": {"id": "NEXT 24GB", "type": "x"}, "gpuTypeId": "NEXT 24GB"}
    answer = httpx.post(f"{fake.url}/v2/pods", json=body, headers=headers)
    assert answer.status_code == 422 and answer.headers["content-type"].startswith("application/problem+json")
    problem = answer.json()
    assert problem["status"] == 422 and problem["title"] == "Unprocessable Entity"
    assert sorted(problem["errors"]) == [
        "$.gpu: additional properties 'type' not allowed",
        "$: additional properties 'gpuTypeId' not allowed",
    ]
    assert fake.pods() == []
    assert (
        httpx.get(f"{fake.url}/v2/catalog/gpus", params={"include": "AVAILABILITY"}, headers=headers).status_code == 400
    )
    assert httpx.get(f"{fake.url}/v2/catalog/gpus", params={"count": 2}, headers=headers).status_code == 400
    assert httpx.get(f"{fake.url}/v2/pods").json() == {
        "title": "Unauthorized",
        "status": 401,
        "detail": "missing bearer token",
    }
    missing = httpx.delete(f"{fake.url}/v2/pods/nosuchpod", headers=headers)
    assert missing.status_code == 404 and missing.json()["detail"] == "pod not found"


def test_the_provider_reads_both_clouds_and_treats_gone_pods_as_gone(fake):
    provider = RestProvider(fake.api_key, fake.url)
    offers = provider.list_gpu_offers("ALL", 1, 24)
    assert {(o.id, o.cloud, o.price_per_gpu_hr, o.stock) for o in offers} == {
        ("CHEAP 24GB", "SECURE", 0.20, "HIGH"),
        ("CHEAP 24GB", "COMMUNITY", 0.15, "HIGH"),
        ("NEXT 24GB", "SECURE", 0.30, "HIGH"),
        ("NEXT 24GB", "COMMUNITY", 0.22, "HIGH"),
        ("DEAR 48GB", "SECURE", 0.80, "HIGH"),
        ("DEAR 48GB", "COMMUNITY", 0.60, "HIGH"),
    }
    assert provider.get_pod("nosuchpod") is None
    provider.terminate_pod("nosuchpod")  # 404: already gone is what was asked
    fake.faults.no_capacity = {"NEXT 24GB"}
    from deploy.provider import PodSpec

    spec = PodSpec("s2s-x", "img", "NEXT 24GB", 1, "SECURE", 20, (8000,), {})
    with pytest.raises(NoCapacity, match="no longer any instances available"):
        provider.create_pod(spec)
    assert fake.pods() == []
