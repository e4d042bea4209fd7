"""The local record of the deployed pod: endpoint, token and pod id; the client reads it when given no --url.

The file is written as soon as the pod exists (``endpoint`` still None), so a deploy that is killed outright still
leaves ``make destroy-runpod`` something to terminate; ``load_state()`` returns only a ready deployment unless asked.
"""

from __future__ import annotations

import os
from datetime import datetime
from pathlib import Path

from pydantic import BaseModel, Field, ValidationError

DEFAULT_STATE_PATH = "~/.config/s2s/runpod.json"


class StateError(ValueError):
    """The state file exists but cannot be read as a deployment record."""


class DeployState(BaseModel):
    pod_id: str = Field(pattern=r"^[A-Za-z0-9_-]{1,64}$", description="RunPod pod id.")
    name: str = Field(description="Pod name (PREFIX-<random hex>); a pod is looked up by it after a failed create.")
    endpoint: str | None = Field(
        default=None,
        pattern=r"^wss?://",
        description="ws://IP:PORT/v1/realtime once the gateway is healthy; None before.",
    )
    token: str = Field(description="Bearer token the gateway requires.")
    gpu: str = Field(description="GPU type id.")
    gpu_count: int = 1
    cost_per_hr: float = Field(description="USD per hour for the whole pod, as RunPod reports it.")
    created_at: datetime = Field(description="When the pod was created (UTC); billing starts here.")
    image: str = ""
    project_sha256: str = Field(default="", description="The uploaded project's SHA-256 (no-own-image path).")
    idle_minutes: float = Field(default=0.0, description="The pod ends itself after this long without a session.")

    @property
    def ready(self) -> bool:
        return self.endpoint is not None


def state_path() -> Path:
    return Path(os.environ.get("S2S_DEPLOY_STATE") or DEFAULT_STATE_PATH).expanduser()


def load_state(include_pending: bool = False) -> DeployState | None:
    """The recorded deployment, or None. A pod still starting counts only with ``include_pending``."""
    path = state_path()
    try:
        text = path.read_text()
    except FileNotFoundError:
        return None
    try:
        state = DeployState.model_validate_json(text)
    except ValidationError as exc:
        raise StateError(
            f"{path} is not a deployment record ({exc.error_count()} problems): delete it or fix it"
        ) from exc
    return state if state.ready or include_pending else None


def save_state(state: DeployState) -> Path:
    """Writes atomically with mode 0600 (the file holds the gateway token)."""
    path = state_path()
    path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
    partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    fd = os.open(partial, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    os.fchmod(fd, 0o600)  # also when the file was left over with wider permissions
    with os.fdopen(fd, "w") as out:
        out.write(state.model_dump_json(indent=2))
    os.replace(partial, path)
    return path


def clear_state() -> None:
    state_path().unlink(missing_ok=True)
