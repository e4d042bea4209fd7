"""Which gateway to talk to: flags, then environment, then the RunPod deploy state file, then the local default."""

from __future__ import annotations

import os
from dataclasses import dataclass

LOCAL_DEFAULT = "ws://127.0.0.1:8000/v1/realtime"


@dataclass
class Endpoint:
    url: str
    token: str | None
    source: str


def resolve(url: str | None, token: str | None) -> Endpoint:
    env_token = os.environ.get("S2S_TOKEN") or os.environ.get("S2S_GATEWAY_TOKEN")
    if url:
        return Endpoint(url, token or env_token, "--url")
    if os.environ.get("S2S_URL"):
        return Endpoint(os.environ["S2S_URL"], token or env_token, "S2S_URL")
    try:
        from deploy.state import load_state, state_path
    except ImportError:  # a client-only install without the deploy module
        pass
    else:
        if (state := load_state()) is not None and state.endpoint is not None:
            return Endpoint(state.endpoint, token or state.token, f"deploy state {state_path()}")
    return Endpoint(LOCAL_DEFAULT, token or env_token, "local default")
