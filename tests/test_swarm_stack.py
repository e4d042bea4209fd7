"""The Docker Swarm stack (deploy/swarm/), checked without an engine: the Compose specification, and the rules that
make the gateway's replica pools work there (docs/scaling.md)."""

from __future__ import annotations

import re

import pytest
import yaml

from services.gateway.pool import parse_stage_urls
from tests.procs import REPO
from tests.test_containers import compose_schema, merged

STACK = REPO / "deploy" / "swarm" / "stack.yml"
STACK_GPU = REPO / "deploy" / "swarm" / "stack.gpu.yml"
STAGES = {"vad": 8001, "stt": 8002, "llm": 8003, "tts": 8004}
VARIABLE = re.compile(r"\$\{(\w+)(?::-([^}]*)|:\?[^}]*)?\}")


def interpolated(text: str, env: dict[str, str]) -> dict:
    """What `docker stack deploy` reads: ${VAR:-default} and ${VAR:?message} filled from ``env``, YAML typed after."""
    return yaml.safe_load(VARIABLE.sub(lambda m: env.get(m.group(1), m.group(2) or ""), text))


@pytest.fixture(scope="module")
def stacks() -> dict[str, dict]:
    env = {"S2S_GATEWAY_TOKEN": "t"}
    base = interpolated(STACK.read_text(), env)
    return {"cpu": base, "gpu": merged(base, interpolated(STACK_GPU.read_text(), env))}


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_the_stack_follows_the_compose_specification(stacks: dict[str, dict], kind: str) -> None:
    errors = [f"{'/'.join(map(str, e.path))}: {e.message}" for e in compose_schema().iter_errors(stacks[kind])]
    assert not errors, errors


@pytest.mark.parametrize("kind", ["cpu", "gpu"])
def test_stages_are_pools_the_gateway_resolves(stacks: dict[str, dict], kind: str) -> None:
    services = stacks[kind]["services"]
    gateway_env = services["gateway"]["environment"]
    for stage, port in STAGES.items():
        deploy = services[stage]["deploy"]
        assert deploy["endpoint_mode"] == "dnsrr", f"{stage}: tasks.{stage} must list the replicas, not a VIP"
        assert isinstance(deploy["replicas"], int) and deploy["replicas"] >= 1
        assert int(services[stage]["environment"][f"S2S_{stage.upper()}_MAX_SESSIONS"]) > 0
        assert "ports" not in services[stage], f"{stage} is unauthenticated: only the gateway publishes a port"
        assert services[stage]["networks"] in (["stages"], ["stages", "models"])
        spec = parse_stage_urls(gateway_env[f"S2S_GATEWAY_{stage.upper()}_URL"])
        assert spec.static == () and spec.dns == (f"ws://tasks.{stage}:{port}/v1/{stage}",)
    assert [p["mode"] for p in services["gateway"]["ports"]] == ["host"], "no routing mesh (IPVS)"
    assert stacks[kind]["networks"]["stages"]["internal"] is True


def test_gpu_stages_are_placed_by_node_label(stacks: dict[str, dict]) -> None:
    services = stacks["gpu"]["services"]
    for stage in ("stt", "llm", "tts"):
        assert "node.labels.s2s.gpu == true" in services[stage]["deploy"]["placement"]["constraints"]
        assert services[stage]["image"].endswith(":cuda") and services[stage]["environment"]["S2S_PROFILE"] == "gpu"
    assert "constraints" not in services["vad"]["deploy"].get("placement", {})


def test_the_token_is_required() -> None:
    match = next(m for m in VARIABLE.finditer(STACK.read_text()) if m.group(1) == "S2S_GATEWAY_TOKEN")
    assert ":?" in match.group(0), "the stack must refuse to deploy a gateway without a token"
