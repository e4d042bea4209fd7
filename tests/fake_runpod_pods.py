"""The fake RunPod's data: GPU types, fault switches, pods, and how each shows in the GraphQL API and in REST v2."""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

from aiohttp import web

NO_CAPACITY = (
    "There are no longer any instances available with the requested specifications. Please refresh and try again."
)
SOMETHING_WRONG = "Something went wrong. Please try again later or contact support."
PRIVATE_IP = "100.65.0.2"  # listed with isIpPublic false, as RunPod does; unreachable from the tests


@dataclass(frozen=True)
class FakeGpu:
    id: str
    memory_gb: int
    secure_price: float | None
    community_price: float | None
    max_count: int = 8


DEFAULT_GPUS = (
    FakeGpu("NVIDIA GeForce RTX 3070", 8, 0.14, 0.13),
    FakeGpu("NVIDIA RTX A4000", 16, 0.17, 0.09),
    FakeGpu("NVIDIA RTX A5000", 24, 0.27, 0.16),
    FakeGpu("NVIDIA L4", 24, 0.43, None),
    FakeGpu("NVIDIA GeForce RTX 4090", 24, 0.69, 0.34),
    FakeGpu("NVIDIA RTX A6000", 48, 0.49, 0.33),
    FakeGpu("NVIDIA L40S", 48, 0.86, 0.79),
    FakeGpu("NVIDIA A100 80GB PCIe", 80, 1.64, 1.19),
    FakeGpu("NVIDIA H100 80GB HBM3", 80, 2.99, None),
)


@dataclass
class Faults:
    no_capacity: set[str] = field(default_factory=set)  # GPU type ids with no free machine
    create_error_after_create: int = 0  # the next N creates make the pod, then answer an error
    ports_never_appear: bool = False  # runtime stays null forever
    health_never_passes: bool = False  # the stub container answers /healthz with 503
    get_pod_http_500: int = 0  # the next N `pod(...)` queries answer HTTP 500 (-1: every one)
    billed_price_factor: float = 1.0  # the pod bills this times the listed price (prices move between list and create)
    hold_create_response: bool = False  # create makes the pod, then never answers (a Ctrl-C lands mid-call)
    out_of_stock: set[str] = field(default_factory=set)  # REST v2: the catalog says NONE (and a create gets 400)
    start_error: bool = False  # the image cannot be pulled: the pod goes from PROVISIONING to ERROR
    ports_after_polls: int = 0  # REST v2: RUNNING, but the public port is mapped only after N more GET polls


@dataclass
class FakePod:
    id: str
    name: str
    image: str
    gpu: FakeGpu
    gpu_count: int
    cost_per_hr: float
    env: dict[str, str]
    ports: str
    cloud: str = "SECURE"
    disk: int = 50
    args: str = ""
    status: str = "PROVISIONING"  # REST v2 lifecycle: PROVISIONING, STARTING, RUNNING or ERROR (EXITED after stop)
    polls: int = 0  # REST v2 GETs of this pod since it started RUNNING
    created_at: str = field(default_factory=lambda: datetime.now(timezone.utc).strftime("%Y-%m-%dT%H:%M:%SZ"))
    runtime_ports: list[dict[str, Any]] | None = None
    started_at: float | None = None
    proxies: list[asyncio.AbstractServer] = field(default_factory=list)
    stub: web.AppRunner | None = None
    process: subprocess.Popen | None = None
    log_path: Path | None = None
    connections: set[asyncio.StreamWriter] = field(default_factory=set)
    stopped: threading.Event = field(default_factory=threading.Event)

    def as_graphql(self) -> dict[str, Any]:
        uptime = int(time.monotonic() - self.started_at) if self.started_at else 0
        return {
            "id": self.id,
            "name": self.name,
            "imageName": self.image,
            "desiredStatus": "EXITED" if self.status in ("ERROR", "EXITED") else "RUNNING",
            "costPerHr": self.cost_per_hr,
            "gpuCount": self.gpu_count,
            "containerDiskInGb": 50,
            "volumeInGb": 0,
            "volumeMountPath": "/runpod-volume",
            "dockerArgs": "",
            "dockerId": None,
            "env": [f"{k}={v}" for k, v in self.env.items()],
            "lastStatusChange": "Rented by User",
            "machineId": "m-fake",
            "memoryInGb": 62.0,
            "vcpuCount": 8.0,
            "podType": "RESERVED",
            "port": None,
            "ports": self.ports,
            "uptimeSeconds": uptime,
            "machine": {"podHostId": f"{self.id}-64410a2e", "gpuDisplayName": self.gpu.id},
            "runtime": None if self.runtime_ports is None else {"uptimeInSeconds": uptime, "ports": self.runtime_ports},
        }

    def as_v2(self, ports_visible: bool = True) -> dict[str, Any]:
        """The v2 Pod object, with every field the OpenAPI document marks required."""
        running = self.status == "RUNNING" and self.runtime_ports is not None
        uptime = int(time.monotonic() - self.started_at) if self.started_at else 0
        ports = [
            {"private": p["privatePort"], "public": p["publicPort"], "type": p["type"], "ip": p["ip"]}
            for p in self.runtime_ports or []
            if ports_visible or not p["isIpPublic"]
        ]
        actions = {
            "RUNNING": ["stop", "restart", "terminate"],
            "EXITED": ["start", "terminate"],
            "ERROR": ["start", "terminate"],
        }.get(self.status, ["stop", "terminate"])
        return {
            "id": self.id,
            "name": self.name,
            "image": self.image,
            "args": self.args,
            "disk": self.disk,
            "ports": [p for p in self.ports.split(",") if p],
            "env": self.env,
            "registry": None,
            "status": self.status,
            "actions": actions,
            "mounts": {},
            "gpu": {"id": self.gpu.id, "count": self.gpu_count},
            "cloud": self.cloud,
            "dataCenterId": "US-KS-2" if self.status != "PROVISIONING" else None,
            "cudaVersion": "12.8",
            "ssh": {"proxy": None, "direct": None},
            "template": None,
            "cost": self.cost_per_hr if self.status not in ("EXITED", "TERMINATED") else 0.0,
            "locked": False,
            "globalNetworking": {"enabled": False},
            "runtime": {"uptime": uptime, "gpus": [], "ports": ports} if running else None,
            "createdAt": self.created_at,
            "startedAt": self.created_at if running else None,
        }


def gpu_as_graphql(gpu: FakeGpu, has_capacity: bool) -> dict[str, Any]:
    def lowest_price(_info: Any, input: dict | None = None) -> dict[str, Any]:
        offered = [p for p in (gpu.secure_price, gpu.community_price) if p]
        best = min(offered) if offered and has_capacity else None
        return {"minimumBidPrice": best and round(best * 0.6, 2), "uninterruptablePrice": best}

    return {
        "id": gpu.id,
        "displayName": gpu.id.replace("NVIDIA ", "").replace("GeForce ", ""),
        "manufacturer": "Nvidia",
        "memoryInGb": gpu.memory_gb,
        "cudaCores": 0,
        "maxGpuCount": gpu.max_count,
        "secureCloud": gpu.secure_price is not None,
        "communityCloud": gpu.community_price is not None,
        "securePrice": gpu.secure_price,
        "communityPrice": gpu.community_price,
        "oneMonthPrice": None,
        "threeMonthPrice": None,
        "oneWeekPrice": None,
        "communitySpotPrice": None,
        "secureSpotPrice": None,
        "lowestPrice": lowest_price,
    }


def gpu_as_v2(gpu: FakeGpu, cloud: str, count: int, in_stock: bool, with_availability: bool) -> dict[str, Any]:
    """A v2 GpuType; off-cloud prices are placeholders (0.0) as on RunPod, the secure/community flags decide."""
    price = {"SECURE": gpu.secure_price, "COMMUNITY": gpu.community_price}[cloud]
    out: dict[str, Any] = {
        "id": gpu.id,
        "name": gpu.id.replace("NVIDIA ", "").replace("GeForce ", ""),
        "pool": None,
        "manufacturer": "NVIDIA",
        "memory": gpu.memory_gb,
        "secure": gpu.secure_price is not None,
        "community": gpu.community_price is not None,
        "price": {"secure": gpu.secure_price or 0.0, "community": gpu.community_price or 0.0},
        "maxCount": {
            "secure": gpu.max_count if gpu.secure_price is not None else 0,
            "community": gpu.max_count if gpu.community_price is not None else 0,
        },
    }
    if with_availability:
        available = in_stock and price is not None and count <= gpu.max_count
        out["availability"] = "HIGH" if available else "NONE"
        if available:
            out["dataCenters"] = [{"id": "US-KS-2", "name": "US Kansas 2", "availability": "HIGH"}]
            out["cudaVersions"] = [{"version": "12.8", "available": True}]
    return out
