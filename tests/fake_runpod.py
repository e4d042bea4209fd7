"""A fake RunPod API on 127.0.0.1 that answers the ``runpod`` SDK's real GraphQL requests.

Point the SDK at it with ``RUNPOD_API_BASE_URL``. It parses and validates the inline GraphQL with graphql-core, keeps
pods in memory and reproduces their lifecycle: ``runtime`` is null while the "image pulls", then every exposed TCP port
gets the public IP 127.0.0.1 and a random public port. That port is a real TCP forwarder to the pod's "container": a
real stack process (``launch_stack``) or a stub that answers /healthz. Fault switches live in ``FakeRunPod.faults``.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

from aiohttp import web
from graphql import (
    GraphQLError,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)

from tests.fake_runpod_schema import SCHEMA_SDL
from tests.procs import REPO, free_port, service_env

NO_CAPACITY = "There are no longer any instances available with the requested specifications. Please refresh and try again."
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
            "id": self.id, "name": self.name, "imageName": self.image, "desiredStatus": "RUNNING",
            "costPerHr": self.cost_per_hr, "gpuCount": self.gpu_count, "containerDiskInGb": 50, "volumeInGb": 0,
            "volumeMountPath": "/runpod-volume", "dockerArgs": "", "dockerId": None,
            "env": [f"{k}={v}" for k, v in self.env.items()], "lastStatusChange": "Rented by User", "machineId": "m-fake",
            "memoryInGb": 62.0, "vcpuCount": 8.0, "podType": "RESERVED", "port": None, "ports": self.ports,
            "uptimeSeconds": uptime, "machine": {"podHostId": f"{self.id}-64410a2e", "gpuDisplayName": self.gpu.id},
            "runtime": None if self.runtime_ports is None else {"uptimeInSeconds": uptime, "ports": self.runtime_ports},
        }


def gpu_as_graphql(gpu: FakeGpu, has_capacity: bool) -> dict[str, Any]:
    def lowest_price(_info: Any, input: dict | None = None) -> dict[str, Any]:
        offered = [p for p in (gpu.secure_price, gpu.community_price) if p]
        best = min(offered) if offered and has_capacity else None
        return {"minimumBidPrice": best and round(best * 0.6, 2), "uninterruptablePrice": best}

    return {
        "id": gpu.id, "displayName": gpu.id.replace("NVIDIA ", "").replace("GeForce ", ""), "manufacturer": "Nvidia",
        "memoryInGb": gpu.memory_gb, "cudaCores": 0, "maxGpuCount": gpu.max_count,
        "secureCloud": gpu.secure_price is not None, "communityCloud": gpu.community_price is not None,
        "securePrice": gpu.secure_price, "communityPrice": gpu.community_price, "oneMonthPrice": None,
        "threeMonthPrice": None, "oneWeekPrice": None, "communitySpotPrice": None, "secureSpotPrice": None,
        "lowestPrice": lowest_price,
    }


class FakeRunPod:
    def __init__(self, gpus: tuple[FakeGpu, ...] = DEFAULT_GPUS, api_key: str = "fake-runpod-key",
                 boot_delay_s: float = 0.3, launch_stack: bool = False) -> None:
        self.gpus = {gpu.id: gpu for gpu in gpus}
        self.api_key = api_key
        self.boot_delay_s = boot_delay_s  # the emulated image pull
        self.launch_stack = launch_stack
        self.faults = Faults()
        self.requests: list[str] = []  # root field of every GraphQL request, in order ("401" for rejected keys)
        self.created: list[dict[str, Any]] = []  # every create's input, as the SDK sent it
        self._pods: dict[str, FakePod] = {}
        self._changed = threading.Condition()
        self._schema = build_schema(SCHEMA_SDL)
        self._loop = asyncio.new_event_loop()
        self._thread = threading.Thread(target=self._loop.run_forever, name="fake-runpod", daemon=True)
        self._site_runner: web.AppRunner | None = None
        self._tasks: set[asyncio.Task] = set()  # pod boots and held responses, cancelled at shutdown
        self._teardowns: set[asyncio.Task] = set()
        self._ever: list[FakePod] = []  # every pod created, torn down again at shutdown whatever happened
        self.url = ""

    # --- control, from the test's thread -------------------------------------------------------------------------
    def __enter__(self) -> FakeRunPod:
        self._thread.start()
        asyncio.run_coroutine_threadsafe(self._start(), self._loop).result(10)
        return self

    def __exit__(self, *exc: object) -> None:
        asyncio.run_coroutine_threadsafe(self._shutdown(), self._loop).result(60)
        self._loop.call_soon_threadsafe(self._loop.stop)
        self._thread.join(10)

    def pods(self) -> list[FakePod]:
        with self._changed:
            return list(self._pods.values())

    def container_logs(self, tail_chars: int = 3000) -> str:
        """The output of every stack process the fake launched (for assertion messages)."""
        return "".join(f"--- pod {p.id}\n{p.log_path.read_text()[-tail_chars:]}" for p in self._ever if p.log_path)

    def wait_for_pods(self, count: int, timeout_s: float) -> list[FakePod]:
        """Blocks until exactly ``count`` pods exist (condition variable, no polling)."""
        with self._changed:
            if not self._changed.wait_for(lambda: len(self._pods) == count, timeout_s):
                raise TimeoutError(f"fake RunPod has {len(self._pods)} pods, not {count}, after {timeout_s} s")
            return list(self._pods.values())

    def wait_for_runtime(self, timeout_s: float) -> FakePod:
        with self._changed:
            if not self._changed.wait_for(lambda: any(p.runtime_ports for p in self._pods.values()), timeout_s):
                raise TimeoutError("no pod got a runtime")
            return next(p for p in self._pods.values() if p.runtime_ports)

    # --- HTTP -------------------------------------------------------------------------------------------------------
    async def _start(self) -> None:
        app = web.Application()
        app.router.add_post("/graphql", self._graphql)
        self._site_runner = web.AppRunner(app, access_log=None)
        await self._site_runner.setup()
        port = free_port()
        await web.TCPSite(self._site_runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    def _spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._teardowns, return_exceptions=True)
        for pod in self._ever:
            await self._teardown(pod)
        if self._site_runner:
            await self._site_runner.cleanup()

    async def _graphql(self, request: web.Request) -> web.StreamResponse:
        if request.headers.get("Authorization") != f"Bearer {self.api_key}":
            self.requests.append("401")
            return web.json_response({"errors": [{"message": "Unauthorized"}]}, status=401)
        try:
            document = parse((await request.json())["query"])
        except GraphQLError as exc:
            return web.json_response({"data": None, "errors": [exc.formatted]}, status=400)
        operation = next(d for d in document.definitions if isinstance(d, OperationDefinitionNode))
        roots = [sel.name.value for sel in operation.selection_set.selections]
        self.requests.extend(roots)
        if "pod" in roots and self.faults.get_pod_http_500:
            self.faults.get_pod_http_500 -= 1 if self.faults.get_pod_http_500 > 0 else 0
            return web.Response(status=500, text="Internal Server Error")
        errors = validate(self._schema, document)
        if errors:
            return web.json_response({"data": None, "errors": [e.formatted for e in errors]}, status=400)
        result = execute(self._schema, document, root_value=self)
        if inspect.isawaitable(result):
            result = await result
        return web.json_response(result.formatted)

    # --- resolvers (graphql-core calls root fields as methods of root_value) ------------------------------------------
    def gpuTypes(self, _info: Any, input: dict | None = None) -> list[dict[str, Any]]:
        wanted = (input or {}).get("id")
        return [gpu_as_graphql(g, g.id not in self.faults.no_capacity) for g in self.gpus.values() if wanted in (None, g.id)]

    def pod(self, _info: Any, input: dict) -> dict[str, Any] | None:
        with self._changed:
            pod = self._pods.get(input["podId"])
            return pod.as_graphql() if pod else None

    def myself(self, _info: Any) -> dict[str, Any]:
        return {"id": "user_fake", "pods": [pod.as_graphql() for pod in self.pods()]}

    def podFindAndDeployOnDemand(self, _info: Any, input: dict) -> dict[str, Any]:
        self.created.append(input)
        gpu = self.gpus.get(input.get("gpuTypeId") or "")
        if gpu is None:
            raise GraphQLError("Invalid GPU type")
        count = input.get("gpuCount") or 1
        prices = {"SECURE": [gpu.secure_price], "COMMUNITY": [gpu.community_price],
                  "ALL": [gpu.community_price, gpu.secure_price]}[input.get("cloudType") or "ALL"]
        price = next((p for p in prices if p), None)
        if gpu.id in self.faults.no_capacity or price is None or count > gpu.max_count:
            raise GraphQLError(NO_CAPACITY)
        env = {item["key"]: item["value"] for item in input.get("env") or []}
        pod = FakePod(secrets.token_hex(7), input.get("name") or "", input.get("imageName") or "", gpu, count,
                      round(price * count * self.faults.billed_price_factor, 4), env, input.get("ports") or "")
        self._ever.append(pod)
        with self._changed:
            self._pods[pod.id] = pod
            self._changed.notify_all()
        self._spawn(self._boot(pod))
        if self.faults.hold_create_response:
            return self._spawn(asyncio.Event().wait())  # graphql-core awaits it: the answer never comes
        if self.faults.create_error_after_create:
            self.faults.create_error_after_create -= 1
            raise GraphQLError(SOMETHING_WRONG, extensions={"code": "INTERNAL_SERVER_ERROR"})
        return pod.as_graphql()

    def podTerminate(self, _info: Any, input: dict) -> None:
        with self._changed:
            pod = self._pods.pop(input["podId"], None)
            self._changed.notify_all()
        if pod is None:
            raise GraphQLError("Pod not found")
        task = asyncio.get_running_loop().create_task(self._teardown(pod))
        self._teardowns.add(task)  # awaited, never cancelled, at shutdown: a stack process must stop
        task.add_done_callback(self._teardowns.discard)

    # --- the pod's "container" and RunPod's port mapping ------------------------------------------------------------
    async def _boot(self, pod: FakePod) -> None:
        await asyncio.sleep(self.boot_delay_s)  # emulated image pull: runtime is null until it is done
        if self.faults.ports_never_appear or pod.id not in self._pods:
            return
        gateway_port = int(pod.env.get("S2S_GATEWAY_PORT", "8000"))
        target = await self._start_container(pod)
        runtime_ports = []
        for spec in filter(None, pod.ports.split(",")):
            private, _, kind = spec.partition("/")
            if kind != "tcp":
                continue
            port_target = target if int(private) == gateway_port else None
            proxy = await asyncio.start_server(partial(self._forward, pod, port_target), "127.0.0.1", 0)
            pod.proxies.append(proxy)
            public = proxy.sockets[0].getsockname()[1]
            runtime_ports += [
                {"ip": PRIVATE_IP, "isIpPublic": False, "privatePort": int(private), "publicPort": int(private), "type": "tcp"},
                {"ip": "127.0.0.1", "isIpPublic": True, "privatePort": int(private), "publicPort": public, "type": "tcp"},
            ]
        with self._changed:
            if pod.id not in self._pods:  # terminated while booting
                gone = True
            else:
                gone = False
                pod.started_at, pod.runtime_ports = time.monotonic(), runtime_ports
                self._changed.notify_all()
        if gone:
            await self._teardown(pod)

    async def _start_container(self, pod: FakePod) -> int:
        port = free_port()
        if self.launch_stack and "S2S_GATEWAY_TOKEN" in pod.env:
            pod.log_path = Path(tempfile.mkstemp(prefix=f"fake-pod-{pod.id}-", suffix=".log")[1])
            env = service_env({**pod.env, "S2S_GATEWAY_HOST": "127.0.0.1", "S2S_GATEWAY_PORT": str(port)})
            command = [sys.executable, "-m", "services.runner", "up", "--host", "127.0.0.1", "--port", str(port), "--stage-port-base", "0"]
            with pod.log_path.open("wb") as log:
                pod.process = subprocess.Popen(command, env=env, cwd=REPO, stdout=log, stderr=subprocess.STDOUT)
            return port

        async def healthz(_request: web.Request) -> web.Response:
            if self.faults.health_never_passes:
                return web.json_response({"status": "loading"}, status=503)
            return web.json_response({"status": "ready"})

        app = web.Application()
        app.router.add_get("/healthz", healthz)
        pod.stub = web.AppRunner(app, access_log=None)
        await pod.stub.setup()
        await web.TCPSite(pod.stub, "127.0.0.1", port).start()
        return port

    async def _forward(self, pod: FakePod, target: int | None, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        """RunPod's public port mapping: bytes both ways between the public port and the container's port."""
        try:
            if target is None:
                raise ConnectionRefusedError
            up_reader, up_writer = await asyncio.open_connection("127.0.0.1", target)
        except OSError:  # nothing listens yet (the stack is still starting): the connection is cut, as on RunPod
            writer.close()
            return
        pod.connections.update((writer, up_writer))

        async def pipe(src: asyncio.StreamReader, dst: asyncio.StreamWriter) -> None:
            try:
                while data := await src.read(65536):
                    dst.write(data)
                    await dst.drain()
            except (ConnectionError, OSError):
                pass
            finally:
                dst.close()

        await asyncio.gather(pipe(reader, up_writer), pipe(up_reader, writer))
        pod.connections.difference_update((writer, up_writer))

    async def _teardown(self, pod: FakePod) -> None:
        for proxy in pod.proxies:
            proxy.close()
        for conn in list(pod.connections):
            conn.close()
        if pod.stub:
            stub, pod.stub = pod.stub, None
            await stub.cleanup()
        if pod.process and pod.process.poll() is None:
            pod.process.terminate()
            try:
                await asyncio.to_thread(pod.process.wait, 20)
            except subprocess.TimeoutExpired:
                pod.process.kill()
                await asyncio.to_thread(pod.process.wait)
        pod.stopped.set()
