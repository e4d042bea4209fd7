"""The small interface the deploy flow needs from a GPU cloud.

Two implementations: ``rest_provider.RestProvider`` (RunPod REST v2 over httpx, the default) and
``runpod_provider.RunPodProvider`` (the ``runpod`` SDK, GraphQL; ``S2S_DEPLOY_API=graphql`` while RunPod serves it).
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Literal, Protocol

CloudType = Literal["SECURE", "COMMUNITY", "ALL"]
Stock = Literal["NONE", "LOW", "MEDIUM", "HIGH"]

# Lifecycle states that mean the pod will not come up by itself: the deploy fails at once instead of waiting out its
# timeout. ERROR is REST v2's "unrecoverable error" (an image that cannot be pulled, a container that cannot start);
# EXITED/TERMINATED/DEAD are what both APIs report for a pod stopped or removed from elsewhere.
FAILED_STATUSES = ("ERROR", "EXITED", "TERMINATED", "DEAD")


POD_ID = re.compile(r"[A-Za-z0-9_-]{1,64}")


class ProviderError(Exception):
    """A provider call failed; the message is fit to show the user."""


class AuthError(ProviderError):
    """The API key was rejected (401), or it lacks the permission the call needs (403 outside a create)."""


class NoCapacity(ProviderError):
    """This GPU type cannot be placed now (no machine free, or the cloud refused this candidate): try the next."""


class NoFunds(ProviderError):
    """The account cannot pay for a pod (REST v2 answers 402): no other GPU type will do better."""


class BadRequest(ProviderError):
    """The API refused the request's shape (REST v2 answers 422, naming each field): a bug here, never retried."""


def check_pod_id(pod_id: str) -> str:
    """Pod ids go into URL paths and query text: only plain ids pass."""
    if not POD_ID.fullmatch(pod_id):
        raise ProviderError(f"not a RunPod pod id: {pod_id!r}")
    return pod_id


@dataclass(frozen=True)
class GpuOffer:
    id: str
    name: str
    vram_gb: int
    price_per_gpu_hr: float  # on `cloud`; for ALL (GraphQL only) the higher of the two clouds' prices
    max_count: int
    cloud: CloudType = "SECURE"  # where a pod of this offer is created
    stock: Stock | None = None  # the catalog's availability for the requested GPU count; None: the API does not say


@dataclass(frozen=True)
class PodSpec:
    name: str
    image: str
    gpu_type_id: str
    gpu_count: int
    cloud_type: CloudType
    container_disk_gb: int
    tcp_ports: tuple[int, ...]
    env: dict[str, str] = field(repr=False)  # holds the gateway token (and, with idle shutdown, maybe an API key)
    args: str = ""  # the container's command (replaces the image's CMD); empty: the image's own


@dataclass(frozen=True)
class PodInfo:
    id: str
    name: str
    status: str  # REST v2: PROVISIONING, STARTING, RUNNING, EXITED, ERROR, TERMINATED; GraphQL: desiredStatus
    cost_per_hr: float
    uptime_s: int
    gpu_name: str | None
    started: bool  # the container is up (RunPod reports a runtime)
    public_tcp: dict[int, tuple[str, int]]  # private port -> (public IP, public port)

    @property
    def failed(self) -> bool:
        return self.status in FAILED_STATUSES


class Provider(Protocol):
    @property
    def api_url(self) -> str:
        """The API's base URL (the pod's idle shutdown calls the same API)."""

    def list_gpu_offers(self, cloud_type: CloudType, gpu_count: int, min_vram_gb: int) -> list[GpuOffer]:
        """GPU types with at least ``min_vram_gb`` per GPU that the cloud type offers, with prices (and stock)."""

    def create_pod(self, spec: PodSpec) -> str:
        """Creates a pod and returns its id. Raises NoCapacity, NoFunds, AuthError or ProviderError."""

    def get_pod(self, pod_id: str) -> PodInfo | None:
        """The pod, or None when it does not exist (any more)."""

    def list_pods(self) -> list[PodInfo]:
        """Every pod of the account."""

    def terminate_pod(self, pod_id: str) -> None:
        """Terminates the pod (billing stops; its disk is deleted)."""
