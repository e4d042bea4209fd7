"""``down`` (terminate the recorded pod, confirm it is gone, forget it) and ``status`` (state, uptime, cost so far)."""

from __future__ import annotations

from datetime import datetime, timezone

import httpx

from deploy.cleanup import signals_ignored, terminate_and_confirm
from deploy.provider import Provider
from deploy.settings import DeploySettings
from deploy.state import DeployState, clear_state, load_state, state_path
from deploy.ui import Ui


def destroy(provider: Provider, settings: DeploySettings, ui: Ui) -> int:
    state = load_state(include_pending=True)
    if state is None:
        ui.say(f"Nothing to destroy: no deployment recorded in {state_path()}.")
        return 0
    ui.say(f"Terminating pod {state.pod_id} ({state.gpu})…")
    with signals_ignored():  # half a teardown is the worst outcome: finish it
        gone = terminate_and_confirm(provider, state.pod_id, ui, settings.terminate_timeout_s, settings.poll_interval_s)
    if not gone:
        ui.error(f"the record stays in {state_path()}; run `make destroy-runpod` again or check https://www.runpod.io/console/pods")
        return 1
    clear_state()
    ui.say(f"Pod {state.pod_id} is gone (RunPod no longer lists it); removed {state_path()}.")
    return 0


def cost_so_far(state: DeployState, now: datetime | None = None) -> tuple[float, float]:
    """Hours since creation and the cost they add up to (RunPod bills from creation, image pull included)."""
    hours = ((now or datetime.now(timezone.utc)) - state.created_at).total_seconds() / 3600.0
    return hours, hours * state.cost_per_hr


def gateway_health(endpoint: str | None, timeout_s: float) -> str:
    if not endpoint:
        return "not ready (deploy still running, or it was interrupted)"
    url = endpoint.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rsplit("/v1/", 1)[0] + "/healthz"
    try:
        answer = httpx.get(url, timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"not answering ({type(exc).__name__})"
    return "healthy" if answer.status_code == 200 else f"HTTP {answer.status_code}"


def status(provider: Provider, settings: DeploySettings, ui: Ui) -> int:
    state = load_state(include_pending=True)
    if state is None:
        ui.say(f"No deployment recorded in {state_path()}.")
        return 0
    pod = provider.get_pod(state.pod_id)
    hours, cost = cost_so_far(state)
    if pod is None:
        ui.error(f"pod {state.pod_id} no longer exists; run `make destroy-runpod` to forget it")
        return 1
    if pod.cost_per_hr:
        cost = hours * pod.cost_per_hr
    uptime = f"{pod.uptime_s // 3600}h {pod.uptime_s % 3600 // 60}m {pod.uptime_s % 60}s"
    ui.say(f"pod:       {pod.id} ({pod.name}), {pod.status}")
    ui.say(f"gpu:       {state.gpu_count} × {pod.gpu_name or state.gpu}")
    ui.say(f"uptime:    {uptime} (container); created {hours * 60:.0f} min ago")
    ui.say(f"cost:      ${pod.cost_per_hr or state.cost_per_hr:.2f}/h, ≈ ${cost:.2f} so far")
    ui.say(f"endpoint:  {state.endpoint or '-'}")
    ui.say(f"gateway:   {gateway_health(state.endpoint, settings.health_request_timeout_s)}")
    return 0
