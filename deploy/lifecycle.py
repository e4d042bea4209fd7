"""``down`` (terminate the recorded pod, confirm it is gone, forget it) and ``status`` (state, uptime, cost so far,
gateway health, idle time left before the pod ends itself)."""

from __future__ import annotations

from datetime import datetime, timezone
from typing import Any

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
        ui.error(
            f"the record stays in {state_path()}; run `make destroy-runpod` again or check https://www.runpod.io/console/pods"
        )
        return 1
    clear_state()
    ui.say(f"Pod {state.pod_id} is gone (RunPod no longer lists it); removed {state_path()}.")
    return 0


def cost_so_far(state: DeployState, now: datetime | None = None) -> tuple[float, float]:
    """Hours since creation and the cost they add up to (RunPod bills from creation, image pull included)."""
    hours = ((now or datetime.now(timezone.utc)) - state.created_at).total_seconds() / 3600.0
    return hours, hours * state.cost_per_hr


def http_root(endpoint: str) -> str:
    return endpoint.replace("ws://", "http://", 1).replace("wss://", "https://", 1).rsplit("/v1/", 1)[0]


def gateway_health(endpoint: str | None, timeout_s: float) -> str:
    if not endpoint:
        return "not ready (deploy still running, or it was interrupted)"
    try:
        answer = httpx.get(http_root(endpoint) + "/healthz", timeout=timeout_s)
    except httpx.HTTPError as exc:
        return f"not answering ({type(exc).__name__})"
    return "healthy" if answer.status_code == 200 else f"HTTP {answer.status_code}"


def minutes(seconds: float) -> str:
    return f"{int(seconds) // 60} min {int(seconds) % 60:02d} s"


def idle_text(report: dict[str, Any]) -> str:
    """The gateway's ``GET /idle`` report in one line (pure)."""
    if not report.get("enabled"):
        return "off (the pod runs until `make destroy-runpod`)"
    after = float(report.get("shutdown_after_s") or 0)
    if report.get("state") == "terminated":
        return "the pod terminated itself (idle)"
    if report.get("error"):
        return f"{report.get('state')}: {report['error']}"
    sessions = int(report.get("sessions") or 0)
    if sessions:
        return f"{sessions} session(s) open; the pod ends itself {after / 60:g} min after the last one closes"
    return f"{minutes(float(report.get('left_s') or 0))} left (ends itself after {after / 60:g} min without a session)"


def idle_status(state: DeployState, timeout_s: float) -> str:
    if not state.endpoint:
        return f"{state.idle_minutes:g} min without a session, once ready" if state.idle_minutes else "off"
    try:
        answer = httpx.get(http_root(state.endpoint) + "/idle", timeout=timeout_s)
        return idle_text(answer.json()) if answer.status_code == 200 else f"unknown (HTTP {answer.status_code})"
    except (httpx.HTTPError, ValueError) as exc:
        return f"unknown ({type(exc).__name__})"


def status(provider: Provider, settings: DeploySettings, ui: Ui) -> int:
    state = load_state(include_pending=True)
    if state is None:
        ui.say(f"No deployment recorded in {state_path()}.")
        return 0
    pod = provider.get_pod(state.pod_id)
    hours, cost = cost_so_far(state)
    if pod is None:
        idle = f" (it ends itself after {state.idle_minutes:g} min without a session)" if state.idle_minutes else ""
        ui.error(f"pod {state.pod_id} no longer exists{idle}; run `make destroy-runpod` to forget it")
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
    ui.say(f"idle:      {idle_status(state, settings.health_request_timeout_s)}")
    return 0
