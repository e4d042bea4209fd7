"""Our rules for the Dockerfiles, checked without a Docker engine: every stage of a CPU Dockerfile builds on a CPU
machine (the classic builder builds them all), the five images share one base stage, compilers stay in builder
stages; and a stage whose model cannot load exits non-zero (what compose's `restart:` needs), run as a plain process."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import pytest

from tests.dockerfile import Stage, instructions, parse
from tests.procs import free_port, service_env
from tests.test_containers import CPU_BASE, CUDA_DOCKERFILES, DOCKERFILES, SERVICES, command, image, image_env


@pytest.mark.parametrize("service", SERVICES)
def test_every_stage_of_a_cpu_dockerfile_builds_on_a_cpu_machine(service):
    """The classic builder (DOCKER_BUILDKIT=0) builds every stage before the target, needed or not: a CPU Dockerfile
    holds no stage a CPU machine cannot build (CUDA bases cannot even be pulled everywhere: they have their own file)."""
    for name, stage in parse(DOCKERFILES[service]).items():
        assert stage.base == CPU_BASE, f"{service}: stage {name or '(last)'} starts from {stage.base}"
    cuda = parse(CUDA_DOCKERFILES[service]) if service in CUDA_DOCKERFILES else {}
    for name, stage in cuda.items():
        assert stage.base.startswith("nvidia/cuda:"), (
            f"{service}: CUDA stage {name or '(last)'} starts from {stage.base}"
        )


def base_instructions(path: Path) -> list[tuple[str, str]]:
    """The instructions of the stage named `base`, FROM included."""
    out: list[tuple[str, str]] = []
    for keyword, rest in instructions(path.read_text()):
        if keyword == "FROM" and out:
            break
        if out or (keyword == "FROM" and rest.endswith(" AS base")):
            out.append((keyword, rest))
    return out


def test_the_five_images_share_one_base():
    """Docker reuses a layer when the instruction and everything before it are the same: the same `base` stage in the
    five Dockerfiles is built once and stored once, and every image is FROM it."""
    shared = base_instructions(DOCKERFILES["gateway"])
    assert any(keyword == "RUN" and "pip install" in rest for keyword, rest in shared), shared
    for service, path in DOCKERFILES.items():
        assert base_instructions(path) == shared, f"{service}: its base stage differs from the gateway's"
        assert parse(path)[""].parent == "base", f"{service}: the image is not FROM base"


COMPILERS = re.compile(r"\b(build-essential|gcc|g\+\+|clang|cmake|python3-dev)\b")


def copied_from(stages: dict[str, Stage], stage: Stage) -> set[str]:
    """The stages whose files reach ``stage`` through COPY --from, directly or through other stages."""
    found: set[str] = set()
    pending = [stage]
    while pending:
        current = pending.pop()
        for name in current.copies_from:
            if name not in found:
                found.add(name)
                pending.append(stages[name])
        if current.parent:
            pending.append(stages[current.parent])
    return found


@pytest.mark.parametrize("dockerfile", [*DOCKERFILES.values(), *CUDA_DOCKERFILES.values()], ids=str)
def test_images_carry_no_compilers(dockerfile):
    """Compiled code (llama.cpp) is built in a builder stage and reaches the image as files (COPY --from)."""
    stages = parse(dockerfile)
    image_runs = stages[""].runs  # the image's RUNs, its parent stages' included
    assert not [run for run in image_runs if COMPILERS.search(run)], f"{dockerfile}: compilers in the image"
    builders = {name for name, stage in stages.items() if name and any(COMPILERS.search(run) for run in stage.runs)}
    assert builders <= copied_from(stages, stages[""]), f"{dockerfile}: builder stages the image takes nothing from"
    if dockerfile.parent.name == "llm":
        assert builders, "llama-cpp-python has no binary wheel: it is compiled in a builder stage"


def test_a_stage_whose_model_cannot_load_exits_non_zero_with_the_reason(tmp_path):
    """So that compose's `restart:` (or the runner) acts, rather than a process that serves 503s forever."""
    stage = image("vad")
    missing = tmp_path / "missing.onnx"
    env = image_env(stage, tmp_path / "cache", S2S_VAD_HOST="127.0.0.1", S2S_VAD_PORT=str(free_port()))
    env["S2S_VAD_MODEL_PATH"] = str(missing)
    done = subprocess.run(
        command(stage.cmd), env=service_env(env), capture_output=True, text=True, timeout=120, check=False
    )
    assert done.returncode == 1, done.stderr[-2000:]
    last = done.stderr.strip().splitlines()[-1]
    assert "model failed to load" in last and str(missing) in last, done.stderr[-2000:]
