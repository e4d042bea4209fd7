"""Start any command (a Dockerfile's CMD, a service under another virtualenv's Python) as a real process on loopback."""

from __future__ import annotations

import subprocess
import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from tests.procs import REPO, service_env, wait_healthy


@contextmanager
def command_process(
    argv: list[str], health_url: str, env: dict[str, str] | None = None, timeout_s: float = 300.0, cwd: Path = REPO
) -> Iterator[Path]:
    """Runs ``argv`` (from the repository root unless ``cwd``) and yields its log file once ``health_url`` answers 200."""
    log = Path(tempfile.mkstemp(prefix=Path(argv[0]).name + "-", suffix=".log")[1])
    with log.open("wb") as out:
        proc = subprocess.Popen(argv, env=service_env(env), stdout=out, stderr=subprocess.STDOUT, cwd=cwd)
    try:
        wait_healthy(health_url, proc, log, timeout_s)
        yield log
    finally:
        proc.terminate()  # the runner (s2s up) stops its children on SIGTERM
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
