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


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_", extra="ignore")

    # Defaults that differ from the fields' own (which are the cpu profile's), per profile: {"gpu": {"device": "cuda"}}.
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {}

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, description="TCP port.")
    log_level: str = Field(default="info", description="uvicorn log level.")
    max_message_bytes: int = Field(
        default=1_048_576, description="Largest WebSocket message accepted; bigger ones get an error event."
    )

    @model_validator(mode="before")
    @classmethod
    def _apply_profile(cls, data: Any) -> Any:
        """Fills in the profile's defaults for fields that neither the environment nor the caller set."""
        defaults = cls.profile_defaults.get(active_profile(), {})
        if not defaults or not isinstance(data, dict):
            return data
        return {**defaults, **data}
