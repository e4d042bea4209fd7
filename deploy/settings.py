"""Deploy settings (``S2S_DEPLOY_*``): what to run, on which GPU, at what price, and how long to wait."""

from __future__ import annotations

import re
from typing import Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

# The all-in-one image's name:tag for `make images` (the Makefile reads this line) and for `--image` once pushed.
DEFAULT_IMAGE = "ghcr.io/s2s-oss/s2s-allinone:latest"
# A public CUDA + PyTorch image that RunPod hosts keep cached; the pod installs this project on it at start.
# Tag from RunPod's REST v2 reference (its create-a-pod example); PyTorch 2.8.0, CUDA 12.8.1, Ubuntu 24.04.
DEFAULT_BASE_IMAGE = "runpod/pytorch:1.0.2-cu1281-torch280-ubuntu2404"
IMAGE_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._/:@-]*$"


# Not a ServiceSettings subclass: the deploy tool listens on nothing, so host/port/log_level would only mislead.
class DeploySettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_DEPLOY_", extra="ignore")

    api: Literal["rest", "graphql"] = Field(
        default="rest",
        description="RunPod API: rest (REST v2, httpx) or graphql (the runpod SDK, while RunPod still serves it).",
    )
    image: str = Field(
        default="",
        pattern=r"^([A-Za-z0-9][A-Za-z0-9._/:@-]*)?$",
        description="Your own all-in-one image (name:tag, built with `make images` and pushed); empty: the pod "
        "installs this project on S2S_DEPLOY_BASE_IMAGE at start, no image of your own needed.",
    )
    base_image: str = Field(
        default=DEFAULT_BASE_IMAGE,
        pattern=IMAGE_PATTERN,
        description="Public image the pod installs the project on when S2S_DEPLOY_IMAGE is empty.",
    )
    install: Literal["gpu", "cpu"] = Field(
        default="gpu",
        description="What the pod installs on the base image: gpu (CUDA models, the base's PyTorch) or cpu "
        "(the embedded CPU models; builds llama.cpp).",
    )
    install_steps: list[str] = Field(
        default_factory=list,
        description="Shell commands that replace the built-in install (JSON list; $S2S_SRC is the unpacked project).",
    )
    start_command: str = Field(
        default="", description="Shell command that replaces the built-in start after the install (empty: built-in)."
    )
    bootstrap_wait_s: float = Field(
        default=1800.0,
        gt=0,
        description="The pod's installer waits this long for the project upload (or shows a failed install this "
        "long), then terminates its own pod.",
    )
    idle_minutes: float = Field(
        default=30.0,
        ge=0,
        description="The gateway in the pod terminates the pod after this many minutes without a session (0: never).",
    )
    idle_key: Literal["deploy", "pod"] = Field(
        default="deploy",
        description="Key for the idle shutdown: deploy (your RUNPOD_API_KEY, passed in the pod's environment) or "
        "pod (only the key RunPod itself puts in the pod, if it may terminate the pod).",
    )
    min_vram_gb: int = Field(default=24, ge=1, description="Smallest GPU memory per GPU, in GB.")
    max_price_per_hr: float = Field(
        default=1.00, gt=0, description="Most the pod may cost per hour in USD (all its GPUs together)."
    )
    gpu_count: int = Field(default=1, ge=1, le=8, description="GPUs per pod.")
    cloud_type: Literal["SECURE", "COMMUNITY", "ALL"] = Field(
        default="SECURE",
        description="RunPod cloud: SECURE (always a public IP), COMMUNITY (cheaper), ALL (either: REST offers both "
        "clouds' prices; GraphQL holds the higher price against the cap).",
    )
    gpu_types: list[str] = Field(
        default_factory=list,
        description='Only these GPU type ids, e.g. ["NVIDIA L4"] (JSON list; empty: any that fits).',
    )
    container_disk_gb: int = Field(
        default=50, ge=10, description="Container disk for the installed project and model weights, GB."
    )
    gateway_port: int = Field(default=8000, ge=1, le=65535, description="Gateway port inside the pod, exposed as TCP.")
    name_prefix: str = Field(
        default="s2s", pattern=r"^[A-Za-z0-9][A-Za-z0-9_-]{0,30}$", description="Pod names are PREFIX-<random hex>."
    )
    pod_env: dict[str, str] = Field(
        default_factory=dict, description='Extra environment for the pod, e.g. {"S2S_LLM_MODEL": "..."} (JSON object).'
    )
    forward_env_prefixes: list[str] = Field(
        default_factory=lambda: ["S2S_PRESET", "S2S_VAD_", "S2S_STT_", "S2S_LLM_", "S2S_TTS_"],
        description="Local environment variables with these prefixes (model settings) are copied into the pod, "
        "except *_HOST and *_PORT.",
    )
    create_attempts: int = Field(
        default=2, ge=1, description="Create tries per GPU type after a server error (not after 'no capacity')."
    )
    ports_timeout_s: float = Field(
        default=900.0,
        gt=0,
        description="Wait for the pod's public IP and port (image pull: ~30 s cached, minutes cold).",
    )
    health_timeout_s: float = Field(
        default=1800.0,
        gt=0,
        description="Wait for the gateway's /healthz to answer 200 (project install, model download and load).",
    )
    health_request_timeout_s: float = Field(default=3.0, gt=0, description="Timeout of one /healthz request.")
    poll_interval_s: float = Field(default=5.0, gt=0, description="Time between status polls and health checks.")
    api_error_limit: int = Field(
        default=5, ge=1, description="Consecutive failed RunPod status calls that abort the deploy."
    )
    terminate_timeout_s: float = Field(default=60.0, gt=0, description="Wait for a terminated pod to disappear.")

    @field_validator("pod_env")
    @classmethod
    def _env_names(cls, env: dict[str, str]) -> dict[str, str]:
        for key in env:
            check_env_name(key)
        return env

    @property
    def own_image(self) -> bool:
        return bool(self.image)


def check_env_name(name: str) -> str:
    """Environment variable names are inlined into RunPod's GraphQL query text, so only plain names pass."""
    if not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]{0,127}", name):
        raise ValueError(f"not a valid environment variable name: {name!r}")
    return name
