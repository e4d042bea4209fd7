"""The Provider interface over the ``runpod`` SDK (1.12, GraphQL): ``S2S_DEPLOY_API=graphql``, while RunPod serves it.

The SDK inlines every argument into the GraphQL text without escaping, so each value is validated or escaped here
before it reaches the SDK; SDK exceptions become the ProviderError family with messages a user can act on.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any, TypeVar

from deploy.provider import (
    AuthError,
    CloudType,
    GpuOffer,
    NoCapacity,
    PodInfo,
    PodSpec,
    ProviderError,
    check_pod_id,
)
from deploy.settings import check_env_name

T = TypeVar("T")

# RunPod's capacity errors ("...with the requested specifications", "...with enough disk space") share this text.
NO_CAPACITY_TEXT = "no longer any instances available"
PRICE_LOOKUPS_IN_PARALLEL = 8


class UnknownGpuType(ProviderError):
    """The SDK's get_gpu found no such GPU type (it raises a bare ValueError)."""


def gql_string_body(value: str) -> str:
    """Escapes a value for the inside of a GraphQL string literal (JSON's escapes are GraphQL's escapes)."""
    return json.dumps(str(value), ensure_ascii=True)[1:-1]


def offer_price(gpu: dict[str, Any], cloud_type: CloudType) -> float | None:
    """Per-GPU $/h on the cloud type; None when it is not offered there. ALL may land on either, so the higher."""
    secure = gpu.get("securePrice") if gpu.get("secureCloud") else None
    community = gpu.get("communityPrice") if gpu.get("communityCloud") else None
    prices = {"SECURE": [secure], "COMMUNITY": [community], "ALL": [secure, community]}[cloud_type]
    offered = [float(p) for p in prices if p]
    return max(offered) if offered else None


def pod_info(raw: dict[str, Any]) -> PodInfo:
    runtime = raw.get("runtime")
    public = {
        int(port["privatePort"]): (str(port["ip"]), int(port["publicPort"]))
        for port in ((runtime or {}).get("ports") or [])
        if port.get("isIpPublic") and port.get("type") == "tcp" and port.get("publicPort")
    }
    return PodInfo(
        id=raw["id"],
        name=raw.get("name") or "",
        status=raw.get("desiredStatus") or "UNKNOWN",
        cost_per_hr=float(raw.get("costPerHr") or 0.0),
        uptime_s=int(raw.get("uptimeSeconds") or 0),
        gpu_name=(raw.get("machine") or {}).get("gpuDisplayName"),
        started=runtime is not None,
        public_tcp=public,
    )


class RunPodProvider:
    def __init__(self, api_key: str) -> None:
        import runpod  # heavy (≈2 s): imported only once a command really talks to RunPod

        # Importing the SDK runs logging.basicConfig(INFO) (runpod/serverless/utils/rp_upload.py): keep our output ours.
        logging.getLogger().setLevel(logging.WARNING)
        self._runpod = runpod
        self._key = api_key
        runpod.api_key = api_key  # create/terminate take no api_key argument: the SDK reads this module attribute

    @property
    def api_url(self) -> str:
        return os.environ.get("RUNPOD_API_BASE_URL", "https://api.runpod.io")  # what the SDK reads on every call

    def _call(self, what: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        import requests

        errors = self._runpod.error
        try:
            return fn(*args, **kwargs)
        except errors.AuthenticationError as exc:
            raise AuthError("RunPod rejected the API key (HTTP 401): check RUNPOD_API_KEY") from exc
        except errors.QueryError as exc:
            if NO_CAPACITY_TEXT in str(exc):
                raise NoCapacity(str(exc)) from exc
            raise ProviderError(f"RunPod API error while {what}: {exc}") from exc
        except requests.exceptions.JSONDecodeError as exc:
            raise ProviderError(
                f"RunPod API answered with something that is not JSON while {what} (a server error)"
            ) from exc
        except requests.RequestException as exc:
            raise ProviderError(f"RunPod API unreachable while {what}: {exc}") from exc
        except ValueError as exc:
            raise UnknownGpuType(f"RunPod knows no such GPU type while {what}: {exc}") from exc
        except (KeyError, TypeError) as exc:
            raise ProviderError(f"unexpected RunPod API response while {what}: {exc!r}") from exc

    def list_gpu_offers(self, cloud_type: CloudType, gpu_count: int, min_vram_gb: int) -> list[GpuOffer]:
        gpus = self._call("listing GPU types", self._runpod.get_gpus, api_key=self._key)
        big_enough = [g for g in gpus if (g.get("memoryInGb") or 0) >= min_vram_gb]

        def details(gpu: dict[str, Any]) -> dict[str, Any] | None:
            try:
                return self._call(
                    f"pricing {gpu['id']}",
                    self._runpod.get_gpu,
                    gql_string_body(gpu["id"]),
                    gpu_count,
                    api_key=self._key,
                )
            except UnknownGpuType:  # listed a moment ago, gone now
                return None

        with ThreadPoolExecutor(PRICE_LOOKUPS_IN_PARALLEL) as pool:
            priced = [d for d in pool.map(details, big_enough) if d]
        offers = []
        for gpu in priced:
            price = offer_price(gpu, cloud_type)
            max_count = int(gpu.get("maxGpuCount") or gpu_count)
            if price is None or max_count < gpu_count:
                continue
            name = gpu.get("displayName") or gpu["id"]
            offers.append(GpuOffer(gpu["id"], name, int(gpu["memoryInGb"]), price, max_count, cloud_type))
        return offers

    def create_pod(self, spec: PodSpec) -> str:
        env = {check_env_name(key): gql_string_body(value) for key, value in spec.env.items()}
        created = self._call(
            f"creating pod {spec.name}",
            self._runpod.create_pod,
            name=gql_string_body(spec.name),
            image_name=gql_string_body(spec.image),
            gpu_type_id=gql_string_body(spec.gpu_type_id),
            cloud_type=spec.cloud_type,
            support_public_ip=True,
            start_ssh=False,
            gpu_count=spec.gpu_count,
            volume_in_gb=0,
            container_disk_in_gb=spec.container_disk_gb,
            ports=",".join(f"{int(port)}/tcp" for port in spec.tcp_ports),
            docker_args=gql_string_body(spec.args),
            env=env,
        )
        if not created or not created.get("id"):
            raise ProviderError(f"RunPod returned no pod for {spec.name}")
        return str(created["id"])

    def get_pod(self, pod_id: str) -> PodInfo | None:
        raw = self._call(f"getting pod {pod_id}", self._runpod.get_pod, check_pod_id(pod_id), api_key=self._key)
        return pod_info(raw) if raw else None

    def list_pods(self) -> list[PodInfo]:
        return [pod_info(raw) for raw in self._call("listing pods", self._runpod.get_pods, api_key=self._key) or []]

    def terminate_pod(self, pod_id: str) -> None:
        self._call(f"terminating pod {pod_id}", self._runpod.terminate_pod, check_pod_id(pod_id))
