"""A fake RunPod API on 127.0.0.1: REST v2 (``/v2/...``, tests/fake_runpod_v2.py) and the GraphQL the ``runpod`` SDK
sends (``/graphql``), over the same pods.

Point the deploy at it with ``RUNPOD_API_BASE_URL``. GraphQL is parsed and validated with graphql-core; v2 bodies are
validated against the OpenAPI document's shapes. Pods live in memory with their lifecycle: PROVISIONING while the
"image pulls" (no runtime), STARTING, then RUNNING with every exposed TCP port mapped to the public IP 127.0.0.1 and a
random public port. That port is a real TCP forwarder to the pod's "container" (tests/fake_runpod_container.py): the
pod's own command, a real stack process (``launch_stack``) or a stub that answers /healthz. Fault switches live in
``FakeRunPod.faults``.
"""

from __future__ import annotations

import asyncio
import inspect
import secrets
import threading
import time
from functools import partial
from typing import Any

from aiohttp import web
from graphql import (
    FieldNode,
    GraphQLError,
    OperationDefinitionNode,
    build_schema,
    execute,
    parse,
    validate,
)

from tests.fake_runpod_container import forward, start_container, teardown
from tests.fake_runpod_pods import (
    DEFAULT_GPUS,
    NO_CAPACITY,
    PRIVATE_IP,
    SOMETHING_WRONG,
    FakeGpu,
    FakePod,
    Faults,
    gpu_as_graphql,
)
from tests.fake_runpod_schema import SCHEMA_SDL
from tests.fake_runpod_v2 import add_v2_routes
from tests.procs import free_port


class FakeRunPod:
    def __init__(
        self,
        gpus: tuple[FakeGpu, ...] = DEFAULT_GPUS,
        api_key: str = "fake-runpod-key",
        boot_delay_s: float = 0.3,
        launch_stack: bool = False,
    ) -> None:
        self.gpus = {gpu.id: gpu for gpu in gpus}
        self.api_key = api_key
        self.boot_delay_s = boot_delay_s  # the emulated image pull
        self.launch_stack = launch_stack
        self.faults = Faults()
        self.requests: list[str] = []  # GraphQL root fields and v2 "METHOD /route", in order ("401": key rejected)
        self.created: list[dict[str, Any]] = []  # every create's input (GraphQL) or body (v2), as sent
        self.v2_log: list[tuple[str, str, str]] = []  # v2 pod calls: (method, pod id, status the answer showed)
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
        app = web.Application(client_max_size=8 * 1024 * 1024)
        app.router.add_post("/graphql", self._graphql)
        add_v2_routes(app, self)
        self._site_runner = web.AppRunner(app, access_log=None)
        await self._site_runner.setup()
        port = free_port()
        await web.TCPSite(self._site_runner, "127.0.0.1", port).start()
        self.url = f"http://127.0.0.1:{port}"

    def spawn(self, coro: Any) -> asyncio.Task:
        task = asyncio.get_running_loop().create_task(coro)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
        return task

    async def _shutdown(self) -> None:
        for task in list(self._tasks):
            task.cancel()
        await asyncio.gather(*self._tasks, *self._teardowns, return_exceptions=True)
        for pod in self._ever:
            await teardown(pod)
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
        roots = [sel.name.value for sel in operation.selection_set.selections if isinstance(sel, FieldNode)]
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
        return [
            gpu_as_graphql(g, g.id not in self.faults.no_capacity) for g in self.gpus.values() if wanted in (None, g.id)
        ]

    def pod(self, _info: Any, input: dict) -> dict[str, Any] | None:
        with self._changed:
            pod = self._pods.get(input["podId"])
            return pod.as_graphql() if pod else None

    def myself(self, _info: Any) -> dict[str, Any]:
        return {"id": "user_fake", "pods": [pod.as_graphql() for pod in self.pods()]}

    def podFindAndDeployOnDemand(self, _info: Any, input: dict) -> dict[str, Any] | asyncio.Task:
        self.created.append(input)
        gpu = self.gpus.get(input.get("gpuTypeId") or "")
        if gpu is None:
            raise GraphQLError("Invalid GPU type")
        count = input.get("gpuCount") or 1
        prices = {
            "SECURE": [gpu.secure_price],
            "COMMUNITY": [gpu.community_price],
            "ALL": [gpu.community_price, gpu.secure_price],
        }[input.get("cloudType") or "ALL"]
        price = next((p for p in prices if p), None)
        if gpu.id in self.faults.no_capacity or price is None or count > gpu.max_count:
            raise GraphQLError(NO_CAPACITY)
        env = {item["key"]: item["value"] for item in input.get("env") or []}
        pod = self.make_pod(
            input.get("name") or "",
            input.get("imageName") or "",
            gpu,
            count,
            price,
            env,
            input.get("ports") or "",
            cloud=input.get("cloudType") or "ALL",
            disk=input.get("containerDiskInGb") or 50,
            args=input.get("dockerArgs") or "",
        )
        if self.faults.hold_create_response:
            return self.spawn(asyncio.Event().wait())  # graphql-core awaits it: the answer never comes
        if self.faults.create_error_after_create:
            self.faults.create_error_after_create -= 1
            raise GraphQLError(SOMETHING_WRONG, extensions={"code": "INTERNAL_SERVER_ERROR"})
        return pod.as_graphql()

    def make_pod(
        self,
        name: str,
        image: str,
        gpu: FakeGpu,
        count: int,
        price: float,
        env: dict[str, str],
        ports: str,
        cloud: str,
        disk: int,
        args: str,
    ) -> FakePod:
        """A new pod (both APIs): listed at once, its container boots in the background."""
        billed = round(price * count * self.faults.billed_price_factor, 4)
        pod = FakePod(secrets.token_hex(7), name, image, gpu, count, billed, env, ports, cloud, disk, args)
        self._ever.append(pod)
        with self._changed:
            self._pods[pod.id] = pod
            self._changed.notify_all()
        self.spawn(self._boot(pod))
        return pod

    def terminate(self, pod_id: str) -> bool:
        """Removes the pod from the account (both APIs); its container stops in the background."""
        with self._changed:
            pod = self._pods.pop(pod_id, None)
            self._changed.notify_all()
        if pod is None:
            return False
        task = asyncio.get_running_loop().create_task(teardown(pod))
        self._teardowns.add(task)  # awaited, never cancelled, at shutdown: a stack process must stop
        task.add_done_callback(self._teardowns.discard)
        return True

    def podTerminate(self, _info: Any, input: dict) -> None:
        if not self.terminate(input["podId"]):
            raise GraphQLError("Pod not found")

    # --- the pod's lifecycle: PROVISIONING (the image pulls), STARTING, RUNNING with its ports mapped ---------
    def _set_status(self, pod: FakePod, status: str) -> bool:
        with self._changed:
            if pod.id not in self._pods:
                return False
            pod.status = status
            self._changed.notify_all()
            return True

    async def _boot(self, pod: FakePod) -> None:
        await asyncio.sleep(self.boot_delay_s)  # emulated image pull: no runtime until it is done
        if self.faults.start_error:
            self._set_status(pod, "ERROR")  # the image could not be pulled: the pod stays, billing, until removed
            return
        if self.faults.ports_never_appear or not self._set_status(pod, "STARTING"):
            return
        gateway_port = int(pod.env.get("S2S_GATEWAY_PORT", "8000"))
        target = await start_container(self, pod)
        runtime_ports = []
        for spec in filter(None, pod.ports.split(",")):
            private, _, kind = spec.partition("/")
            if kind != "tcp":
                continue
            port_target = target if int(private) == gateway_port else None
            proxy = await asyncio.start_server(partial(forward, pod, port_target), "127.0.0.1", 0)
            pod.proxies.append(proxy)
            public = proxy.sockets[0].getsockname()[1]
            runtime_ports += [
                {
                    "ip": PRIVATE_IP,
                    "isIpPublic": False,
                    "privatePort": int(private),
                    "publicPort": int(private),
                    "type": "tcp",
                },
                {
                    "ip": "127.0.0.1",
                    "isIpPublic": True,
                    "privatePort": int(private),
                    "publicPort": public,
                    "type": "tcp",
                },
            ]
        with self._changed:
            gone = pod.id not in self._pods  # terminated while booting
            if not gone:
                pod.started_at, pod.runtime_ports, pod.status = time.monotonic(), runtime_ports, "RUNNING"
                self._changed.notify_all()
        if gone:
            await teardown(pod)
