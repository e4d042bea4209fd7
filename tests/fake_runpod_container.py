"""A fake pod's "container" and RunPod's TCP port mapping to it.

What runs depends on the pod, as on RunPod: a pod with ``args`` runs that command (the no-own-image installer,
``python3 -c ...``, with this test run's Python as ``python3``); a pod of the all-in-one image runs the real stack when
the fake was asked to (``launch_stack``); anything else is a stub that answers /healthz. The container listens on a
free local port; each exposed TCP port gets a real forwarder on 127.0.0.1 (the "public" address).
"""

from __future__ import annotations

import asyncio
import contextlib
import os
import shlex
import signal
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import TYPE_CHECKING

from aiohttp import web

from tests.procs import REPO, free_port, service_env

if TYPE_CHECKING:
    from tests.fake_runpod import FakeRunPod
    from tests.fake_runpod_pods import FakePod


def container_env(pod: FakePod, port: int, workdir: Path) -> dict[str, str]:
    """The pod's environment as RunPod gives it (plus RUNPOD_POD_ID, which RunPod sets in every pod); the gateway
    port moved to a free local one. No PYTHONPATH into this checkout: the container has only what it installs."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env.update(pod.env)
    env.update(
        {
            "RUNPOD_POD_ID": pod.id,
            "S2S_GATEWAY_HOST": "127.0.0.1",
            "S2S_GATEWAY_PORT": str(port),
            "S2S_BOOTSTRAP_DIR": str(workdir),
            "HF_HUB_OFFLINE": "1",
            "PYTHONUNBUFFERED": "1",
        }
    )
    return env


async def start_container(fake: FakeRunPod, pod: FakePod) -> int:
    """Starts the pod's container; returns the local port its gateway port maps to."""
    port = free_port()
    if pod.args:
        workdir = Path(tempfile.mkdtemp(prefix=f"fake-pod-{pod.id}-"))
        pod.log_path = workdir / "container.log"
        argv = shlex.split(pod.args)
        if argv[0] == "python3":
            argv[0] = sys.executable
        with pod.log_path.open("wb") as log:
            pod.process = subprocess.Popen(
                argv,
                env=container_env(pod, port, workdir),
                cwd=workdir,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # the container's process group: torn down as a whole
            )
        return port
    if fake.launch_stack and "S2S_GATEWAY_TOKEN" in pod.env:
        pod.log_path = Path(tempfile.mkstemp(prefix=f"fake-pod-{pod.id}-", suffix=".log")[1])
        env = service_env({**pod.env, "S2S_GATEWAY_HOST": "127.0.0.1", "S2S_GATEWAY_PORT": str(port)})
        command = [sys.executable, "-m", "services.runner", "up", "--host", "127.0.0.1", "--port", str(port)]
        with pod.log_path.open("wb") as log:
            pod.process = subprocess.Popen(
                [*command, "--stage-port-base", "0"],
                env=env,
                cwd=REPO,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        return port

    async def healthz(_request: web.Request) -> web.Response:
        if fake.faults.health_never_passes:
            return web.json_response({"status": "loading"}, status=503)
        return web.json_response({"status": "ready"})

    app = web.Application()
    app.router.add_get("/healthz", healthz)
    pod.stub = web.AppRunner(app, access_log=None)
    await pod.stub.setup()
    await web.TCPSite(pod.stub, "127.0.0.1", port).start()
    return port


async def forward(pod: FakePod, target: int | None, reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
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


async def teardown(pod: FakePod) -> None:
    """Stops the container: closes the port mappings and connections, ends the process group."""
    for proxy in pod.proxies:
        proxy.close()
    for conn in list(pod.connections):
        conn.close()
    if pod.stub:
        stub, pod.stub = pod.stub, None
        await stub.cleanup()
    if pod.process and pod.process.poll() is None:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pod.process.pid, signal.SIGTERM)
        try:
            await asyncio.to_thread(pod.process.wait, 20)
        except subprocess.TimeoutExpired:
            os.killpg(pod.process.pid, signal.SIGKILL)
            await asyncio.to_thread(pod.process.wait)
    pod.stopped.set()
