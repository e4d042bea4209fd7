"""The Provider interface over RunPod's REST API v2 (``https://api.runpod.io/v2``, Bearer key), with httpx.

Routes and fields follow RunPod's published v2 OpenAPI document: ``GET /v2/catalog/gpus?include=AVAILABILITY&
product=POD`` (price and stock per cloud), ``POST /v2/pods`` (201), ``GET /v2/pods/{id}`` and ``GET /v2/pods``,
``DELETE /v2/pods/{id}`` (204). Errors come as ``application/problem+json`` (``title``, ``status``, ``detail``,
``errors``); their status codes decide what the deploy does next (see ``error_for``).
"""

from __future__ import annotations

import ipaddress
import time
from typing import Any

import httpx

from deploy.provider import (
    AuthError,
    BadRequest,
    CloudType,
    GpuOffer,
    NoCapacity,
    NoFunds,
    PodInfo,
    PodSpec,
    ProviderError,
    check_pod_id,
)

DEFAULT_API_URL = "https://api.runpod.io"
RATE_LIMIT_RETRIES = 3
RATE_LIMIT_WAIT_CAP_S = 30.0
# Addresses RunPod lists for a pod that the internet cannot reach (the v2 port mapping carries no isIpPublic flag).
PRIVATE_NETS = tuple(
    ipaddress.ip_network(net) for net in ("10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "100.64.0.0/10")
)


def problem_text(answer: httpx.Response) -> str:
    """The problem document's detail (and each validation error), or a short note on a body that is not one."""
    try:
        problem = answer.json()
    except ValueError:
        return f"HTTP {answer.status_code}, a body that is not JSON (a server error)"
    if not isinstance(problem, dict):
        return f"HTTP {answer.status_code}"
    text = f"HTTP {answer.status_code} {problem.get('title') or ''}: {problem.get('detail') or ''}".rstrip(": ")
    errors = problem.get("errors") or []
    return text + (f" ({'; '.join(str(e) for e in errors)})" if errors else "")


def error_for(answer: httpx.Response, what: str) -> ProviderError:
    """The exception for an error answer. On create, 400 and 403 only rule out this GPU type (RunPod's advice)."""
    status, text = answer.status_code, problem_text(answer)
    creating = what.startswith("creating")
    if status == 401:
        return AuthError("RunPod rejected the API key (HTTP 401): check RUNPOD_API_KEY")
    if status == 402:
        return NoFunds(f"RunPod cannot bill the account while {what} ({text}): add credit in the RunPod console")
    if creating and status in (400, 403):
        return NoCapacity(f"RunPod could not place the pod ({text})")
    if status == 403:
        return AuthError(f"the API key may not do this while {what} ({text}): give the key read/write access to pods")
    if status == 422:
        return BadRequest(f"RunPod refused the request while {what} ({text})")
    return ProviderError(f"RunPod API error while {what}: {text}")


def routable(ip: str) -> bool:
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return False
    return not any(address in net for net in PRIVATE_NETS)


def pod_info(raw: dict[str, Any]) -> PodInfo:
    runtime = raw.get("runtime") or {}  # null (or {}) until the container runs
    public = {
        int(port["private"]): (str(port["ip"]), int(port["public"]))
        for port in runtime.get("ports") or []
        if port.get("type") == "tcp" and port.get("public") and port.get("ip") and routable(str(port["ip"]))
    }
    return PodInfo(
        id=str(raw["id"]),
        name=raw.get("name") or "",
        status=raw.get("status") or "UNKNOWN",
        cost_per_hr=float(raw.get("cost") or 0.0),
        uptime_s=int(runtime.get("uptime") or 0),
        gpu_name=(raw.get("gpu") or {}).get("id"),
        started=raw.get("status") == "RUNNING" and bool(runtime),
        public_tcp=public,
    )


def gpu_offers(gpus: list[dict[str, Any]], cloud: CloudType, gpu_count: int, min_vram_gb: int) -> list[GpuOffer]:
    """The catalog's GPU types on one cloud as offers (prices are per GPU; RunPod lists placeholders off-cloud)."""
    key = cloud.lower()
    offers = []
    for gpu in gpus:
        price = (gpu.get("price") or {}).get(key)
        max_count = int((gpu.get("maxCount") or {}).get(key) or 0)
        if not gpu.get(key) or not price or int(gpu.get("memory") or 0) < min_vram_gb or max_count < gpu_count:
            continue
        offers.append(
            GpuOffer(
                id=str(gpu["id"]),
                name=str(gpu.get("name") or gpu["id"]),
                vram_gb=int(gpu["memory"]),
                price_per_gpu_hr=float(price),
                max_count=max_count,
                cloud=cloud,
                stock=gpu.get("availability"),
            )
        )
    return offers


class RestProvider:
    def __init__(
        self,
        api_key: str,
        base_url: str = DEFAULT_API_URL,
        timeout_s: float = 30.0,
        transport: httpx.BaseTransport | None = None,
    ) -> None:
        self._base = base_url.rstrip("/")
        self._http = httpx.Client(
            base_url=self._base,
            headers={"Authorization": f"Bearer {api_key}", "Accept": "application/json"},
            timeout=timeout_s,
            transport=transport,
        )

    @property
    def api_url(self) -> str:
        return self._base

    def _request(
        self,
        what: str,
        method: str,
        path: str,
        ok: tuple[int, ...],
        params: dict[str, Any] | None = None,
        body: dict[str, Any] | None = None,
    ) -> httpx.Response:
        for attempt in range(RATE_LIMIT_RETRIES + 1):
            try:
                answer = self._http.request(method, path, params=params, json=body)
            except httpx.HTTPError as exc:
                raise ProviderError(f"RunPod API unreachable while {what}: {exc!r}") from exc
            if answer.status_code != 429 or attempt == RATE_LIMIT_RETRIES:
                break
            try:  # 429: not the candidate's fault; Retry-After is whole seconds on this API
                wait = float(answer.headers.get("Retry-After", "5"))
            except ValueError:
                wait = 5.0
            time.sleep(min(max(wait, 0.0), RATE_LIMIT_WAIT_CAP_S))
        if answer.status_code in ok:
            return answer
        raise error_for(answer, what)

    def _json(self, answer: httpx.Response, what: str) -> Any:
        try:
            return answer.json()
        except ValueError as exc:
            raise ProviderError(f"RunPod API answered with something that is not JSON while {what}") from exc

    def list_gpu_offers(self, cloud_type: CloudType, gpu_count: int, min_vram_gb: int) -> list[GpuOffer]:
        clouds: tuple[CloudType, ...] = ("SECURE", "COMMUNITY") if cloud_type == "ALL" else (cloud_type,)
        offers = []
        for cloud in clouds:
            what = f"listing GPU types ({cloud})"
            params = {"include": "AVAILABILITY", "product": "POD", "count": gpu_count, "cloud": cloud}
            answer = self._json(self._request(what, "GET", "/v2/catalog/gpus", (200,), params=params), what)
            try:
                offers += gpu_offers(list(answer["gpus"]), cloud, gpu_count, min_vram_gb)
            except (KeyError, TypeError, ValueError) as exc:
                raise ProviderError(f"unexpected RunPod API response while {what}: {exc!r}") from exc
        return offers

    def create_pod(self, spec: PodSpec) -> str:
        if spec.cloud_type == "ALL":
            raise ProviderError("REST v2 creates a pod on one cloud: SECURE or COMMUNITY")
        body: dict[str, Any] = {
            "name": spec.name,
            "image": spec.image,
            "gpu": {"id": spec.gpu_type_id, "count": spec.gpu_count},
            "cloud": spec.cloud_type,
            "disk": spec.container_disk_gb,
            "ports": [f"{int(port)}/tcp" for port in spec.tcp_ports],
            "env": dict(spec.env),
        }
        if spec.args:
            body["args"] = spec.args
        what = f"creating pod {spec.name}"
        created = self._json(self._request(what, "POST", "/v2/pods", (201,), body=body), what)
        if not isinstance(created, dict) or not created.get("id"):
            raise ProviderError(f"RunPod returned no pod for {spec.name}")
        return str(created["id"])

    def get_pod(self, pod_id: str) -> PodInfo | None:
        what = f"getting pod {pod_id}"
        answer = self._request(what, "GET", f"/v2/pods/{check_pod_id(pod_id)}", (200, 404))
        return None if answer.status_code == 404 else self._pod(self._json(answer, what), what)

    def list_pods(self) -> list[PodInfo]:
        answer = self._json(self._request("listing pods", "GET", "/v2/pods", (200,)), "listing pods")
        try:
            return [self._pod(raw, "listing pods") for raw in answer["pods"]]
        except (KeyError, TypeError) as exc:
            raise ProviderError(f"unexpected RunPod API response while listing pods: {exc!r}") from exc

    def terminate_pod(self, pod_id: str) -> None:
        """DELETE answers 204; a 404 means the pod is already gone, which is what was asked."""
        self._request(f"terminating pod {pod_id}", "DELETE", f"/v2/pods/{check_pod_id(pod_id)}", (204, 404))

    def _pod(self, raw: Any, what: str) -> PodInfo:
        try:
            return pod_info(raw)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise ProviderError(f"unexpected RunPod API response while {what}: {exc!r}") from exc
