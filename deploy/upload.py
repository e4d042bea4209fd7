"""The project as the pod's installer receives it: a reproducible tarball of this checkout, sent over the pod's port.

The same checkout always gives the same bytes (sorted names, zeroed times and owners), so its SHA-256 names exactly
the version that runs: the dry run shows it, the state file records it, and the pod refuses any other tarball.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import tarfile
import time
from dataclasses import dataclass
from pathlib import Path

import httpx

from deploy.settings import DeploySettings
from deploy.ui import Ui
from deploy.waits import DeployFailed, pause

REPO = Path(__file__).resolve().parent.parent
PROJECT_PARTS = ("pyproject.toml", "requirements", "services")  # what `pip install .[...]` needs in the pod
SKIPPED = ("__pycache__", ".pyc", ".pyo")
UPLOAD_PATH = "/bootstrap/project"


@dataclass(frozen=True)
class Project:
    data: bytes
    sha256: str
    version: str
    files: int


def project_version(root: Path) -> str:
    import tomllib

    return str(tomllib.loads((root / "pyproject.toml").read_text())["project"]["version"])


def pack_project(root: Path = REPO) -> Project:
    """A deterministic .tar.gz of the parts the pod installs from."""
    if not (root / "pyproject.toml").is_file() or not (root / "services").is_dir():
        raise DeployFailed(f"{root} is not a checkout of this project: the no-own-image deploy uploads one")
    paths = []
    for part in PROJECT_PARTS:
        path = root / part
        paths += [path] if path.is_file() else sorted(p for p in path.rglob("*") if p.is_file())
    paths = [p for p in paths if not any(p.name.endswith(s) or s in p.parts for s in SKIPPED)]
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for path in sorted(paths):
            info = tarfile.TarInfo(path.relative_to(root).as_posix())
            data = path.read_bytes()
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            tar.addfile(info, io.BytesIO(data))
    packed = gzip.compress(raw.getvalue(), compresslevel=9, mtime=0)
    return Project(packed, hashlib.sha256(packed).hexdigest(), project_version(root), len(paths))


def upload_project(ip: str, port: int, token: str, project: Project, settings: DeploySettings, ui: Ui) -> None:
    """PUTs the tarball to the pod's installer, retrying while its port does not answer yet."""
    url = f"http://{ip}:{port}{UPLOAD_PATH}"
    deadline = time.monotonic() + settings.health_timeout_s
    last = "no answer yet"
    headers = {"Authorization": f"Bearer {token}", "Content-Type": "application/gzip"}
    with (
        ui.progress(f"Uploading the project ({len(project.data) // 1024} KB) to the pod's installer") as show,
        httpx.Client(timeout=max(settings.health_request_timeout_s, 30.0)) as http,
    ):
        while True:
            try:
                answer = http.put(url, content=project.data, headers=headers)
            except httpx.HTTPError as exc:
                last = type(exc).__name__
            else:
                if answer.status_code == 202:
                    return
                if answer.status_code == 409:  # a retried PUT whose first answer was lost: the install is running
                    return
                raise DeployFailed(f"the pod's installer refused the project: HTTP {answer.status_code} {answer.text}")
            show(f"Waiting for the pod's installer at {ip}:{port} (last: {last})")
            if time.monotonic() >= deadline:
                raise DeployFailed(f"the pod's installer at {url} did not answer in {settings.health_timeout_s:g} s")
            pause(deadline, settings.poll_interval_s)
