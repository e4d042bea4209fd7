"""The small interface the deploy flow needs from a GPU cloud; RunPod's SDK is one implementation.

RunPod's GraphQL API retires in early 2027: a REST v2 client implements this same Protocol and nothing else changes.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal, Protocol

CloudType = Literal["SECURE", "COMMUNITY", "ALL"]


class ProviderError(Exception):
    """A provider call failed; the message is fit to show the user."""


class AuthError(ProviderError):
    """The API key was rejected."""


class NoCapacity(ProviderError):
    """The provider has no machine for the requested GPU type right now."""


@dataclass(frozen=True)
class GpuOffer:
    id: str
    name: str
    vram_gb: int
    price_per_gpu_hr: float  # on the requested cloud type; for ALL the higher of the two
    max_count: int


@dataclass(frozen=True)
class PodSpec:
    name: str
    image: str
    gpu_type_id: str
    gpu_count: int
    cloud_type: CloudType
    container_disk_gb: int
    tcp_ports: tuple[int, ...]
    env: dict[str, str] = field(repr=False)  # holds the gateway token


@dataclass(frozen=True)
class PodInfo:
    id: str
    name: str
    status: str  # RunPod's desiredStatus: RUNNING, EXITED, TERMINATED, ...
    cost_per_hr: float
    uptime_s: int
    gpu_name: str | None
    started: bool  # the container is up (RunPod reports a runtime)
    public_tcp: dict[int, tuple[str, int]]  # private port -> (public IP, public port)


class Provider(Protocol):
    def list_gpu_offers(self, cloud_type: CloudType, gpu_count: int, min_vram_gb: int) -> list[GpuOffer]:
        """GPU types with at least ``min_vram_gb`` per GPU that the cloud type offers, with prices."""

    def create_pod(self, spec: PodSpec) -> str:
        """Creates a pod and returns its id. Raises NoCapacity, AuthError or ProviderError."""

    def get_pod(self, pod_id: str) -> PodInfo | None:
        """The pod, or None when it does not exist (any more)."""

    def list_pods(self) -> list[PodInfo]:
        """Every pod of the account."""

    def terminate_pod(self, pod_id: str) -> None:
        """Terminates the pod (billing stops; its disk is deleted)."""
