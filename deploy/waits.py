"""Condition waits with deadlines: the pod's public port, then the gateway's /healthz through it."""

from __future__ import annotations

import time
from collections.abc import Callable
from typing import Any

import httpx

from deploy.provider import AuthError, PodInfo, Provider, ProviderError
from deploy.settings import DeploySettings
from deploy.ui import Ui


class DeployFailed(Exception):
    """The deploy cannot go on; the message says why, for the user."""


def pause(deadline: float, interval: float) -> None:
    """The interval between two polls, never past the deadline."""
    time.sleep(max(0.0, min(interval, deadline - time.monotonic())))


def wait_for_public_port(
    provider: Provider,
    pod_id: str,
    settings: DeploySettings,
    ui: Ui,
    on_status: Callable[[PodInfo], None] = lambda pod: None,
) -> tuple[str, int]:
    """Polls the pod until RunPod maps the gateway's TCP port to a public IP and port."""
    port = settings.gateway_port
    deadline = time.monotonic() + settings.ports_timeout_s
    failures, last = 0, "no answer yet"
    with ui.progress("Waiting for the container to start (RunPod is pulling the image)") as show:
        while True:
            try:
                pod = provider.get_pod(pod_id)
            except AuthError:
                raise
            except ProviderError as exc:
                failures += 1
                last = str(exc)
                if failures >= settings.api_error_limit:
                    raise DeployFailed(f"RunPod status calls failed {failures} times in a row; last: {exc}") from exc
                show(f"Waiting for the container (RunPod API error {failures} of {settings.api_error_limit}, retrying)")
            else:
                failures = 0
                if pod is None:
                    raise DeployFailed(f"pod {pod_id} no longer exists (terminated from elsewhere?)")
                if pod.status == "ERROR":  # REST v2: the image cannot be pulled or the container cannot start
                    raise DeployFailed(
                        f"pod {pod_id} is in RunPod's ERROR state: its image could not be pulled or its container "
                        "could not start (the pod's log is in the RunPod console)"
                    )
                if pod.failed:
                    raise DeployFailed(f"pod {pod_id} stopped while starting (status {pod.status})")
                on_status(pod)
                if port in pod.public_tcp:
                    return pod.public_tcp[port]
                last = f"status {pod.status}, " + (
                    "container up, no public port yet" if pod.started else "container not started"
                )
                if pod.started:
                    show(f"Container up; waiting for RunPod to map {port}/tcp to a public port")
            if time.monotonic() >= deadline:
                hint = (
                    " (community machines may lack a public IP: try --cloud SECURE)"
                    if settings.cloud_type != "SECURE"
                    else ""
                )
                raise DeployFailed(
                    f"no public address for {port}/tcp after {settings.ports_timeout_s:g} s ({last}){hint}"
                )
            pause(deadline, settings.poll_interval_s)


def bootstrap_report(answer: httpx.Response) -> dict[str, Any] | None:
    """The pod installer's /healthz report (``{"status": "bootstrap", "phase": ...}``), or None for the gateway's."""
    try:
        body = answer.json()
    except ValueError:
        return None
    return body if isinstance(body, dict) and body.get("status") == "bootstrap" else None


def wait_for_health(ip: str, port: int, settings: DeploySettings, ui: Ui, installing: bool = False) -> float | None:
    """Polls http://IP:PORT/healthz (short request timeout) until 200 or the deadline; fails at once when the pod's
    installer reports a failed install. Returns when the install ended (monotonic: the gateway's first answer), if
    the pod was ``installing`` or its installer answered."""
    url = f"http://{ip}:{port}/healthz"
    deadline = time.monotonic() + settings.health_timeout_s
    last = short = "no answer yet"
    installed_at = None
    with (
        ui.progress(f"Waiting for the gateway at {ip}:{port} (models download and load)") as show,
        httpx.Client(timeout=settings.health_request_timeout_s) as http,
    ):
        while True:
            try:
                answer = http.get(url)
                report = bootstrap_report(answer)
                if report is not None:
                    installing = True
                    if report.get("phase") == "failed":
                        tail = "\n  ".join(str(line) for line in (report.get("log") or [])[-8:])
                        raise DeployFailed(
                            f"installing the project in the pod failed: {report.get('detail')}\n  {tail}"
                        )
                    short = last = f"installing: {report.get('detail')}"
                else:
                    if installing and installed_at is None:
                        installed_at = time.monotonic()
                    if answer.status_code == 200:
                        return installed_at
                    short = f"HTTP {answer.status_code}"
                    last = f"{short} {answer.text[:120].strip()}"
            except httpx.HTTPError as exc:
                short = type(exc).__name__
                last = f"{short}: {exc}".rstrip(": ")
            show(f"Waiting for the gateway at {ip}:{port} ({short[:100]})")
            if time.monotonic() >= deadline:
                raise DeployFailed(
                    f"the gateway at {url} was not healthy after {settings.health_timeout_s:g} s (last: {last})"
                )
            pause(deadline, settings.poll_interval_s)
