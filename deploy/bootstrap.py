"""The installer that runs first in a pod started from a public base image (no image of the user's own).

Standard library only: it runs before anything is installed. The deploy ships this file's text in the pod's
environment (``S2S_BOOTSTRAP``, zlib + base64) and starts it with ``python3 -c``. It then:

1. listens on the gateway's port: ``GET /healthz`` answers 503 with ``{"status": "bootstrap", "phase": ...}``, and
   ``PUT /bootstrap/project`` (the gateway token as Bearer) takes the project tarball the deploy uploads. Only the
   tarball whose SHA-256 the deploy put in ``S2S_BOOTSTRAP_SHA256`` at create time is accepted: the pod runs exactly
   the code that was planned;
2. unpacks it, runs the install steps of ``S2S_BOOTSTRAP_PLAN`` one by one (``sh -c``; ``$S2S_SRC`` is the project,
   ``$S2S_HOME`` the work directory), with the output in the container log and the last lines in ``/healthz``;
3. closes its port and ``exec``s the plan's start command (``s2s up``): the stack takes over the same port.

A pod that nobody finishes (no upload arrives: the deploy was killed, or RunPod restarted the container and wiped its
disk) or whose install failed terminates itself after ``wait_s`` through RunPod's API, with the key and pod id the
gateway's idle shutdown uses: a pod cannot be forgotten in this phase either.
"""

from __future__ import annotations

import hashlib
import hmac
import http.server
import json
import os
import subprocess
import sys
import tarfile
import threading
import time
import urllib.request
from collections import deque
from pathlib import Path
from typing import Any

MAX_UPLOAD_BYTES = 64 * 1024 * 1024
UPLOAD_PATH = "/bootstrap/project"


class Bootstrap:
    def __init__(self, env: dict[str, str]) -> None:
        self.env = env
        self.token = env["S2S_GATEWAY_TOKEN"]
        self.expected_sha = env["S2S_BOOTSTRAP_SHA256"]
        self.plan: dict[str, Any] = json.loads(env["S2S_BOOTSTRAP_PLAN"])
        self.home = Path(env.get("S2S_BOOTSTRAP_DIR") or "/opt/s2s")
        self.phase, self.detail = "waiting", "waiting for the project upload"
        self.log: deque[str] = deque(maxlen=20)
        self.lock = threading.Lock()
        self.done = threading.Event()  # set when the install finished (ready to exec) or must give up
        self.deadline = time.monotonic() + float(self.plan.get("wait_s", 1800))

    # --- state shown on /healthz ---
    def set_phase(self, phase: str, detail: str) -> None:
        with self.lock:
            self.phase, self.detail = phase, detail
        self.say(f"[bootstrap] {phase}: {detail}")

    def say(self, line: str) -> None:
        line = line.rstrip()
        with self.lock:
            self.log.append(line[-300:])
        print(line, flush=True)  # the container log RunPod shows

    def report(self) -> dict[str, Any]:
        with self.lock:
            return {"status": "bootstrap", "phase": self.phase, "detail": self.detail, "log": list(self.log)}

    # --- the upload ---
    def accept(self, body: bytes) -> tuple[int, str]:
        with self.lock:
            if self.phase != "waiting":
                return 409, f"already {self.phase}"
        digest = hashlib.sha256(body).hexdigest()
        if not hmac.compare_digest(digest, self.expected_sha):
            return 400, f"sha256 {digest} is not the planned {self.expected_sha}"
        self.set_phase("installing", f"unpacking the project (sha256 {digest[:12]}, {len(body) // 1024} KB)")
        threading.Thread(target=self.install, args=(body,), name="install", daemon=True).start()
        return 202, digest

    def install(self, body: bytes) -> None:
        src = self.home / "src"
        try:
            src.mkdir(parents=True, exist_ok=True)
            archive = self.home / "project.tar.gz"
            archive.write_bytes(body)
            with tarfile.open(archive) as tar:
                unpack(tar, src)
            steps = list(self.plan.get("steps", []))
            env = {**self.env, "S2S_SRC": str(src), "S2S_HOME": str(self.home)}
            for number, step in enumerate(steps, 1):
                self.set_phase("installing", f"step {number} of {len(steps)}: {step[:160]}")
                started = time.monotonic()
                with subprocess.Popen(
                    ["sh", "-c", step],
                    env=env,
                    cwd=self.home,
                    stdout=subprocess.PIPE,
                    stderr=subprocess.STDOUT,
                    text=True,
                    errors="replace",
                ) as proc:
                    assert proc.stdout is not None
                    for line in proc.stdout:
                        self.say(line)
                if proc.returncode != 0:
                    raise RuntimeError(f"step {number} of {len(steps)} failed (exit {proc.returncode}): {step[:160]}")
                self.say(f"[bootstrap] step {number} done in {time.monotonic() - started:.0f} s")
        except Exception as exc:  # any failure is reported on /healthz, then the pod ends itself
            self.set_phase("failed", str(exc))
            self.deadline = time.monotonic() + float(self.plan.get("wait_s", 1800))
            return
        self.set_phase("starting", "installed; starting the stack")
        self.done.set()

    # --- the end of a pod nobody finishes ---
    def terminate_own_pod(self) -> None:
        pod_id = self.env.get("RUNPOD_POD_ID", "")
        key = self.env.get("S2S_GATEWAY_RUNPOD_API_KEY") or self.env.get("RUNPOD_API_KEY", "")
        base = (self.env.get("S2S_GATEWAY_RUNPOD_API_URL") or "https://api.runpod.io").rstrip("/")
        if not pod_id or not key:
            self.say("[bootstrap] cannot terminate this pod: RUNPOD_POD_ID or an API key is missing; exiting")
            return
        request = urllib.request.Request(
            f"{base}/v2/pods/{pod_id}", method="DELETE", headers={"Authorization": f"Bearer {key}"}
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as answer:
                self.say(f"[bootstrap] terminated pod {pod_id} (HTTP {answer.status})")
        except Exception as exc:  # nothing else to try; the log says why
            self.say(f"[bootstrap] could not terminate pod {pod_id}: {exc}")


def unpack(tar: tarfile.TarFile, dest: Path) -> None:
    """Extracts regular files and directories only, never outside ``dest``."""
    root = dest.resolve()
    for member in tar.getmembers():
        target = (dest / member.name).resolve()
        if not (member.isfile() or member.isdir()) or root not in (target, *target.parents):
            raise ValueError(f"refusing archive member {member.name!r}")
    if hasattr(tarfile, "data_filter"):
        tar.extractall(dest, filter="data")
    else:  # Python < 3.11.4: the members were checked above
        tar.extractall(dest)


def handler_for(boot: Bootstrap) -> type[http.server.BaseHTTPRequestHandler]:
    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, format: str, *args: Any) -> None:
            return  # health polls would drown the install log

        def answer(self, status: int, payload: dict[str, Any]) -> None:
            data = json.dumps(payload).encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self) -> None:  # http.server's naming
            if self.path.split("?", 1)[0] == "/healthz":
                self.answer(503, boot.report())
            else:
                self.answer(404, {"error": "the stack is still being installed"})

        def do_PUT(self) -> None:
            if self.path != UPLOAD_PATH:
                self.answer(404, {"error": "not found"})
                return
            sent = self.headers.get("Authorization", "")
            if not hmac.compare_digest(sent.encode(), f"Bearer {boot.token}".encode()):
                self.answer(401, {"error": "invalid or missing bearer token"})
                return
            length = int(self.headers.get("Content-Length") or 0)
            if not 0 < length <= MAX_UPLOAD_BYTES:
                self.answer(413, {"error": f"the project must be 1 byte to {MAX_UPLOAD_BYTES} bytes"})
                return
            status, text = boot.accept(self.rfile.read(length))
            self.answer(status, {"sha256": text} if status == 202 else {"error": text})

    return Handler


def main() -> None:
    boot = Bootstrap(dict(os.environ))
    host, port = boot.env.get("S2S_GATEWAY_HOST", "0.0.0.0"), int(boot.env.get("S2S_GATEWAY_PORT", "8000"))
    http.server.ThreadingHTTPServer.allow_reuse_address = True
    server = http.server.ThreadingHTTPServer((host, port), handler_for(boot))
    threading.Thread(target=server.serve_forever, name="http", daemon=True).start()
    boot.say(f"[bootstrap] listening on {host}:{port}; waiting for the project (sha256 {boot.expected_sha[:12]})")
    while not boot.done.wait(1.0):
        if time.monotonic() >= boot.deadline and boot.report()["phase"] in ("waiting", "failed"):
            boot.say(f"[bootstrap] nothing finished this pod within {boot.plan.get('wait_s')} s ({boot.detail})")
            server.shutdown()
            boot.terminate_own_pod()
            sys.exit(1)
    server.shutdown()
    server.server_close()  # the port goes to the stack
    env = {**boot.env, "S2S_SRC": str(boot.home / "src"), "S2S_HOME": str(boot.home)}
    env.pop("S2S_BOOTSTRAP", None)  # the stack has no use for the installer's text
    os.execvpe("sh", ["sh", "-c", str(boot.plan["start"])], env)


if __name__ == "__main__":
    main()
