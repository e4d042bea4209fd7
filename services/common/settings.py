"""Settings shared by every service; each stage subclasses with its own ``S2S_<STAGE>_`` prefix."""

from __future__ import annotations

import os
from typing import Any, ClassVar

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# S2S_PROFILE picks a set of defaults for every stage at once: cpu (the embedded models) or gpu (the big models on CUDA).
PROFILE_ENV = "S2S_PROFILE"
PROFILES = ("cpu", "gpu")


def active_profile() -> str:
    profile = os.environ.get(PROFILE_ENV, "").strip().lower() or "cpu"
    if profile not in PROFILES:
        raise ValueError(f"{PROFILE_ENV}={profile!r} is not a profile; choose one of {', '.join(PROFILES)}")
    return profile


# S2S_PRESET picks the models of STT and LLM together, trading answer quality for speed (measured: docs/models.md):
# fast (Whisper tiny.en + SmolLM2-135M), balanced (Whisper base + Qwen2.5-Coder-0.5B: the fields' own defaults) or
# best (Whisper base with beam search + Qwen2.5-Coder-1.5B, from requirements/best.txt). Unset: no preset.
PRESET_ENV = "S2S_PRESET"
PRESETS = ("fast", "balanced", "best")


def active_preset() -> str | None:
    preset = os.environ.get(PRESET_ENV, "").strip().lower()
    if preset and preset not in PRESETS:
        raise ValueError(f"{PRESET_ENV}={preset!r} is not a preset; choose one of {', '.join(PRESETS)}")
    return preset or None


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_", extra="ignore")

    # Defaults that differ from the fields' own (which are the cpu profile's), per profile: {"gpu": {"device": "cuda"}}.
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {}
    # Defaults per preset, applied over the profile's: {"fast": {"model": "embedded:tiny.en"}}.
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, description="TCP port.")
    log_level: str = Field(default="info", description="uvicorn log level.")
    max_message_bytes: int = Field(
        default=1_048_576, description="Largest WebSocket message accepted; bigger ones get an error event."
    )
    max_sessions: int = Field(
        default=0,
        ge=0,
        description="Sessions (streams) served at once; more are refused as session_limit_reached (0: no limit).",
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        """Fills in the profile's and then the preset's defaults for fields that neither the environment nor the
        caller set."""
        preset = active_preset()
        defaults = {**cls.profile_defaults.get(active_profile(), {}), **cls.preset_defaults.get(preset or "", {})}
        if not defaults or not isinstance(data, dict):
            return data
        return {**defaults, **data}
