"""`docker compose up` on a real Docker engine, as a user runs it (`make test-containers`, after the CPU images are
built): the five services come up healthy, a spoken question through the published gateway gets a spoken answer,
still so with stt and tts scaled to two replicas each; replicas that join the model into a fresh shared volume at the
same moment do not spoil it; a stage whose model cannot load exits non-zero, so `restart:` acts; the images share
their base layers and carry no compilers."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from tests.containers.compose import CPU_IMAGES, Project, ask, docker, project, said
from tests.speech import read_pcm16, speak
from tests.transcribe import transcribe, words

pytestmark = pytest.mark.timeout(900)

QUESTION = "What is the capital of France?"


@pytest.fixture(scope="module")
def question(tmp_path_factory) -> Path:
    return speak(QUESTION, tmp_path_factory.mktemp("question") / "q.wav")


@pytest.fixture(scope="module")
def stack(tmp_path_factory):
    """`docker compose up --wait` of docker-compose.yml on a fresh `models` volume; `down -v` at the end."""
    with project("s2s-test", tmp_path_factory.mktemp("compose")) as running:
        running.up()
        yield running


def check_answer(running: Project, question: Path, reply: Path) -> None:
    done = ask(running, question, reply)
    output = done.stdout + done.stderr
    assert done.returncode == 0, output
    assert "capital of france" in " ".join(words(said(output, "user"))), output
    answer = said(output, "assistant")
    assert "paris" in words(answer), output
    pcm, rate = read_pcm16(reply)
    assert len(pcm) / 2 / rate > 0.5, f"{reply}: {len(pcm) / 2 / rate:.2f} s of reply audio"
    heard = transcribe(pcm, rate)
    assert "paris" in words(heard), f"the reply audio says {heard!r}; its text was {answer!r}"


def healthy(running: Project, service: str) -> list[str]:
    return [
        c["Name"] for c in running.containers(service) if c.get("State") == "running" and c.get("Health") == "healthy"
    ]


def test_a_spoken_question_through_the_published_gateway_gets_a_spoken_answer(stack, question, tmp_path):
    for service in ("vad", "stt", "llm", "tts", "gateway"):
        assert len(healthy(stack, service)) == 1, stack.containers(service)
    check_answer(stack, question, tmp_path / "r.wav")


def test_with_stt_and_tts_scaled_to_two_replicas_the_answer_still_comes(stack, question, tmp_path):
    stack.up("--scale", "stt=2", "--scale", "tts=2")
    for service, replicas in (("stt", 2), ("tts", 2), ("llm", 1), ("gateway", 1)):
        assert len(healthy(stack, service)) == replicas, stack.containers(service)
    for turn in range(2):  # the gateway spreads sessions over the replicas: more than one turn
        check_answer(stack, question, tmp_path / f"r{turn}.wav")


def test_replicas_joining_the_model_into_a_fresh_volume_at_once_all_get_a_whole_model(tmp_path):
    """Each replica is PID 1 in its container: a temporary file named after the PID was the same file for all three."""
    with project("s2s-test-join", tmp_path) as running:
        running.up("--scale", "stt=3", "stt")
        assert len(healthy(running, "stt")) == 3, running.containers("stt")
        listing = running.compose("exec", "-T", "--index", "1", "stt", "ls", "-a", "/cache/s2s/faster-whisper-base")
        assert sorted(listing.stdout.split()) == [
            ".",
            "..",
            "config.json",
            "model.bin",
            "tokenizer.json",
            "vocabulary.txt",
        ]


def test_a_stage_whose_model_cannot_load_exits_non_zero_and_compose_restarts_it(tmp_path):
    missing = "/nonexistent/silero.onnx"
    done = docker(
        "run",
        "--rm",
        "--network",
        "none",
        "-e",
        f"S2S_VAD_MODEL_PATH={missing}",
        "s2s-vad:cpu",
        check=False,
        timeout=120,
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert "model failed to load" in done.stderr and missing in done.stderr, done.stderr[-2000:]

    override = tmp_path / "broken-vad.yml"
    override.write_text(f"services:\n  vad:\n    environment:\n      S2S_VAD_MODEL_PATH: {missing}\n")
    with project("s2s-test-broken", tmp_path, overrides=(override,)) as running:
        up = running.up("vad", check=False)
        assert up.returncode != 0, "up --wait must fail, not wait for a stage that cannot load"
        (container,) = running.containers("vad")
        restarts = docker("inspect", "--format", "{{.RestartCount}}", container["Name"]).stdout.strip()
        assert int(restarts) >= 1, f"restart: unless-stopped did not restart it: {container}"
        assert "model failed to load" in running.logs("vad")


def test_the_images_share_their_base_layers_and_carry_no_compilers():
    layers = {
        image: docker("image", "inspect", "--format", "{{json .RootFS.Layers}}", image).stdout for image in CPU_IMAGES
    }
    stacks = {image: json.loads(text) for image, text in layers.items()}
    base = docker("image", "inspect", "--format", "{{len .RootFS.Layers}}", "python:3.11-slim-bookworm").stdout
    shared = min(len(s) for s in stacks.values())
    for depth in range(shared):
        if len({tuple(s[: depth + 1]) for s in stacks.values()}) > 1:
            shared = depth
            break
    assert shared >= int(base) + 3, f"the five images share {shared} layers; the python base has {base.strip()}"
    for image in CPU_IMAGES:
        found = docker(
            "run",
            "--rm",
            "--network",
            "none",
            "--entrypoint",
            "sh",
            image,
            "-c",
            "for c in cc gcc g++ c++ clang cmake make; do command -v $c; done; true",
        ).stdout.split()
        assert not found, f"{image} carries {found}"


def test_the_trimmed_images_still_hold_every_model_their_settings_offer():
    """vad keeps only silero's and Smart Turn's ONNX files of its two wheels; stt drops onnxruntime (no vad_filter)."""
    load_both = (
        "import onnxruntime as ort; from services.vad.backends.silero import embedded_silero_path; "
        "from services.vad.smart_turn import embedded_smart_turn_path; "
        "[ort.InferenceSession(str(p)) for p in (embedded_silero_path(), embedded_smart_turn_path())]"
    )
    docker("run", "--rm", "--network", "none", "s2s-vad:cpu", "python", "-c", load_both)
    tiny = "from services.stt.embedded import embedded_whisper_tiny_en as t; assert (t() / 'model.bin').is_file()"
    docker("run", "--rm", "--network", "none", "s2s-stt:cpu", "python", "-c", tiny)
