"""S2S_PROFILE=gpu switches every stage to its GPU defaults at once, S2S_PRESET picks the STT and LLM models together;
a stage's own variable still wins."""

from __future__ import annotations

import subprocess
import sys

import pytest

from services.gateway.settings import GatewaySettings
from services.llm.settings import LlmSettings
from services.stt.settings import SttSettings
from services.tts.settings import TtsSettings
from services.vad.settings import VadSettings
from tests.procs import REPO, service_env

SETTINGS = (VadSettings, SttSettings, LlmSettings, TtsSettings, GatewaySettings)

GPU = {
    SttSettings: {"model": "mobiuslabsgmbh/faster-whisper-large-v3-turbo", "device": "cuda", "compute_type": "float16"},
    LlmSettings: {
        "backend": "transformers",
        "model": "HuggingFaceTB/SmolLM2-1.7B-Instruct",
        "device": "cuda",
        "dtype": "bfloat16",
    },
    TtsSettings: {
        "backend": "parler",
        "device": "cuda",
        "dtype": "bfloat16",
        "parler_model": "parler-tts/parler-tts-mini-v1",
    },
}


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch):
    """Only what each test sets: none of the runner's or a developer's S2S_* variables."""
    import os

    for key in [k for k in os.environ if k.startswith("S2S_")]:
        monkeypatch.delenv(key)


def fields_of(settings) -> dict:
    return settings.model_dump()


@pytest.mark.parametrize("profile", ["", "cpu", "CPU"])
def test_cpu_profile_is_the_fields_own_defaults(monkeypatch, profile):
    monkeypatch.setenv("S2S_PROFILE", profile)
    for cls in SETTINGS:
        settings = cls()
        for name, field in cls.model_fields.items():
            assert getattr(settings, name) == field.get_default(call_default_factory=True), f"{cls.__name__}.{name}"


def test_gpu_profile_switches_every_model_stage(monkeypatch):
    monkeypatch.setenv("S2S_PROFILE", "gpu")
    for cls, expected in GPU.items():
        settings = cls()
        assert {name: getattr(settings, name) for name in expected} == expected, cls.__name__
    # VAD stays on CPU in every profile (silero scores a 32 ms chunk in ~0.07 ms) and the gateway has no model.
    monkeypatch.delenv("S2S_PROFILE")
    cpu = {cls: fields_of(cls()) for cls in (VadSettings, GatewaySettings)}
    monkeypatch.setenv("S2S_PROFILE", "gpu")
    assert {cls: fields_of(cls()) for cls in (VadSettings, GatewaySettings)} == cpu


def test_a_stage_variable_wins_over_the_profile(monkeypatch):
    monkeypatch.setenv("S2S_PROFILE", "gpu")
    monkeypatch.setenv("S2S_STT_DEVICE", "cpu")
    monkeypatch.setenv("S2S_STT_COMPUTE_TYPE", "int8")
    monkeypatch.setenv("S2S_LLM_MODEL", "Qwen/Qwen2.5-7B-Instruct")
    monkeypatch.setenv("S2S_TTS_BACKEND", "piper")
    stt, llm, tts = SttSettings(), LlmSettings(), TtsSettings()
    assert (stt.device, stt.compute_type, stt.model) == ("cpu", "int8", "mobiuslabsgmbh/faster-whisper-large-v3-turbo")
    assert (llm.model, llm.backend, llm.device) == ("Qwen/Qwen2.5-7B-Instruct", "transformers", "cuda")
    assert (tts.backend, tts.device) == ("piper", "cuda")
    assert TtsSettings(dtype="float32").dtype == "float32", "arguments win too"


def test_every_profile_default_names_a_field_and_validates(monkeypatch):
    monkeypatch.setenv("S2S_PROFILE", "gpu")
    for cls in SETTINGS:
        for profile, defaults in cls.profile_defaults.items():
            assert profile in ("cpu", "gpu"), cls
            assert set(defaults) <= set(cls.model_fields), f"{cls.__name__}: {set(defaults) - set(cls.model_fields)}"
        cls()  # the defaults pass the fields' own validation (Literal choices, ranges)


def test_an_unknown_profile_stops_the_service_with_one_clear_line():
    env = service_env({"S2S_PROFILE": "gpus", "S2S_VAD_PORT": "1"})
    argv = [sys.executable, "-m", "services.vad"]
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "S2S_PROFILE='gpus' is not a profile; choose one of cpu, gpu" in done.stderr
    assert "Traceback" not in done.stderr


# --------------------------------------------------------------------------- S2S_PRESET

PRESETS = {
    "fast": {
        SttSettings: {"model": "embedded:tiny.en", "beam_size": 1},
        LlmSettings: {"backend": "llama-cpp", "model": "embedded:smollm2-135m", "temperature": 0.2},
    },
    "balanced": {
        SttSettings: {"model": "embedded:base", "beam_size": 1},
        LlmSettings: {"backend": "llama-cpp", "model": "embedded:qwen2.5-coder-0.5b", "temperature": 0.0},
    },
    "best": {
        SttSettings: {"model": "embedded:base", "beam_size": 5},
        LlmSettings: {"backend": "llama-cpp", "model": "embedded:qwen2.5-coder-1.5b", "temperature": 0.0},
    },
}


@pytest.mark.parametrize("preset", ["fast", "balanced", "best", "BEST"])
def test_a_preset_sets_the_stt_and_llm_models_together(monkeypatch, preset):
    monkeypatch.setenv("S2S_PRESET", preset)
    for cls, expected in PRESETS[preset.lower()].items():
        settings = cls()
        assert {name: getattr(settings, name) for name in expected} == expected, cls.__name__
    for cls in (VadSettings, TtsSettings, GatewaySettings):  # the other stages have no model choice in a preset
        assert fields_of(cls()) == fields_of(cls.model_construct()), cls.__name__


def test_no_preset_is_the_balanced_one(monkeypatch):
    """The default stack is the balanced preset: what the measurements in docs/models.md favour."""
    unset = {cls: fields_of(cls()) for cls in (SttSettings, LlmSettings)}
    monkeypatch.setenv("S2S_PRESET", "balanced")
    assert {cls: fields_of(cls()) for cls in (SttSettings, LlmSettings)} == unset


def test_a_stage_variable_wins_over_the_preset(monkeypatch):
    monkeypatch.setenv("S2S_PRESET", "fast")
    monkeypatch.setenv("S2S_LLM_MODEL", "embedded:qwen2.5-coder-0.5b")
    monkeypatch.setenv("S2S_STT_BEAM_SIZE", "3")
    llm, stt = LlmSettings(), SttSettings()
    assert (llm.model, llm.temperature) == ("embedded:qwen2.5-coder-0.5b", 0.2)
    assert (stt.model, stt.beam_size) == ("embedded:tiny.en", 3)
    assert LlmSettings(temperature=0.7).temperature == 0.7, "arguments win too"


def test_a_preset_wins_over_the_profile_for_the_models_it_names(monkeypatch):
    monkeypatch.setenv("S2S_PROFILE", "gpu")
    monkeypatch.setenv("S2S_PRESET", "fast")
    stt, llm = SttSettings(), LlmSettings()
    assert (stt.model, stt.device, stt.compute_type) == ("embedded:tiny.en", "cuda", "float16")
    assert (llm.backend, llm.model) == ("llama-cpp", "embedded:smollm2-135m")


def test_every_preset_default_names_a_field_and_validates(monkeypatch):
    for preset in ("fast", "balanced", "best"):
        monkeypatch.setenv("S2S_PRESET", preset)
        for cls in SETTINGS:
            assert set(cls.preset_defaults) <= {"fast", "balanced", "best"}, cls
            defaults = cls.preset_defaults.get(preset, {})
            assert set(defaults) <= set(cls.model_fields), f"{cls.__name__}: {set(defaults) - set(cls.model_fields)}"
            cls()


def test_an_unknown_preset_stops_the_service_with_one_clear_line():
    env = service_env({"S2S_PRESET": "fastest", "S2S_VAD_PORT": "1"})
    argv = [sys.executable, "-m", "services.vad"]
    done = subprocess.run(argv, env=env, cwd=REPO, capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode != 0
    assert "S2S_PRESET='fastest' is not a preset; choose one of fast, balanced, best" in done.stderr
    assert "Traceback" not in done.stderr
