"""The GraphQL provider (the ``runpod`` SDK), kept behind ``S2S_DEPLOY_API=graphql`` while RunPod still serves it:
the same deploy through the real SDK against the fake's ``/graphql``, its price reading and its escaping."""

from __future__ import annotations

from typing import Any

import pytest
from graphql import parse

from deploy.plan import choose_offers
from deploy.provider import GpuOffer
from deploy.runpod_provider import gql_string_body, offer_price
from deploy.settings import DeploySettings
from tests.deploy_helpers import read_state, run_deploy
from tests.fake_runpod import FakeGpu, FakeRunPod, gpu_as_graphql

GRAPHQL = {"S2S_DEPLOY_API": "graphql"}
PRICE_LIST = (
    FakeGpu("TINY 16GB", 16, 0.05, 0.04),
    FakeGpu("MID 24GB", 24, 0.40, 0.30),
    FakeGpu("BIG 48GB", 48, 0.35, 0.25),
    FakeGpu("HUGE 80GB", 80, 2.50, 1.90),
    FakeGpu("COMMUNITY ONLY 24GB", 24, None, 0.10),
)


@pytest.fixture
def state_file(tmp_path):
    return tmp_path / "runpod.json"


def test_choice_follows_cloud_type_gpu_count_and_allow_list():
    def chosen(**settings) -> list[str]:
        config = DeploySettings(**settings)
        offers = []
        for gpu in PRICE_LIST:
            price = offer_price(gpu_as_graphql(gpu, True), config.cloud_type)
            if price is not None:
                offers.append(GpuOffer(gpu.id, gpu.id, gpu.memory_gb, price, gpu.max_count, config.cloud_type))
        return [offer.id for offer in choose_offers(offers, config)]

    assert chosen() == ["BIG 48GB", "MID 24GB"]
    assert chosen(cloud_type="COMMUNITY") == ["COMMUNITY ONLY 24GB", "BIG 48GB", "MID 24GB"]
    # ALL may land on either cloud, so the higher of the two prices counts: BIG 0.35 (not 0.25) stays below MID 0.40
    assert chosen(cloud_type="ALL", max_price_per_hr=0.38) == ["COMMUNITY ONLY 24GB", "BIG 48GB"]
    assert chosen(gpu_count=2, max_price_per_hr=0.75) == ["BIG 48GB"]
    assert chosen(min_vram_gb=80, max_price_per_hr=3.0) == ["HUGE 80GB"]
    assert chosen(gpu_types=["MID 24GB"]) == ["MID 24GB"]


def test_graphql_deploy_falls_back_on_no_capacity_reuses_an_errored_create_and_leaves_nothing(state_file):
    with FakeRunPod(gpus=PRICE_LIST) as fake:
        fake.faults.no_capacity = {"BIG 48GB"}
        fake.faults.create_error_after_create = 1
        run = run_deploy(fake, state_file, "up", env=GRAPHQL)
        assert run.returncode == 0, run.output
        assert "RunPod has no capacity for BIG 48GB now" in run.stdout
        [pod] = fake.pods()
        assert "Something went wrong" in run.stderr and f"but RunPod did create pod {pod.id}; using it" in run.stderr
        assert [c["gpuTypeId"] for c in fake.created] == ["BIG 48GB", "MID 24GB"]
        assert read_state(state_file)["pod_id"] == pod.id and "podFindAndDeployOnDemand" in fake.requests
        assert not any(r.startswith(("GET /v2", "POST /v2")) for r in fake.requests)  # GraphQL only
        assert run_deploy(fake, state_file, "down", env=GRAPHQL).returncode == 0
        assert fake.pods() == []


def test_graphql_pull_error_fails_fast_and_terminates(state_file):
    with FakeRunPod() as fake:
        fake.faults.start_error = True  # GraphQL shows it as desiredStatus EXITED
        run = run_deploy(fake, state_file, "up", env={**GRAPHQL, "S2S_DEPLOY_PORTS_TIMEOUT_S": "60"})
        assert run.returncode == 1
        assert "stopped while starting (status EXITED)" in run.stderr
        assert "terminated; nothing is left running or billing" in run.stdout
        assert fake.pods() == []


def test_graphql_rejected_api_key(state_file):
    with FakeRunPod() as fake:
        run = run_deploy(fake, state_file, "up", env={**GRAPHQL, "RUNPOD_API_KEY": "not-the-key"})
        assert run.returncode == 1
        assert "RunPod rejected the API key (HTTP 401)" in run.stderr
        assert set(fake.requests) == {"401"}
        assert fake.pods() == []


@pytest.mark.parametrize("value", ['a"b', "back\\slash", "new\nline", "tab\t", "ünï ☃ 😀", '"}) { x } #'])
def test_values_inlined_into_graphql_are_escaped(value):
    document: Any = parse(
        f'mutation {{ podFindAndDeployOnDemand(input: {{name: "{gql_string_body(value)}"}}) {{ id }} }}'
    )
    field = document.definitions[0].selection_set.selections[0]
    assert field.arguments[0].value.fields[0].value.value == value


def test_graphql_pods_run_the_installer_too_with_its_environment_escaped_intact(state_file):
    steps = '["echo \\"quoted\\" \'single\' \\\\ done; exit 4"]'  # quotes and a backslash through GraphQL's text
    env = {**GRAPHQL, "S2S_DEPLOY_IMAGE": "", "S2S_DEPLOY_INSTALL_STEPS": steps, "S2S_DEPLOY_HEALTH_TIMEOUT_S": "60"}
    with FakeRunPod() as fake:
        run = run_deploy(fake, state_file, "up", env=env)
        assert run.returncode == 1
        assert "step 1 of 1 failed (exit 4)" in run.stderr
        assert "\"quoted\" 'single' \\ done" in run.stderr  # the step arrived as written
        assert fake.created[0]["dockerArgs"].startswith("python3 -c ")
        assert fake.pods() == []
