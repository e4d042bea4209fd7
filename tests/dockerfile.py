"""Reads a Dockerfile the way `docker build` does, enough to run an image's CMD as a plain process and check it.

Handles what our Dockerfiles use: line continuations, comments, global ARG defaults in FROM, named stages that build
on earlier ones (ENV, CMD, HEALTHCHECK, USER, RUNs and copied files are inherited), ENV key=value lists, exec-form CMD
and HEALTHCHECK, COPY from the build context and from other stages (--from), VOLUME.
"""

from __future__ import annotations

import json
import re
import shlex
from dataclasses import dataclass, field
from pathlib import Path


@dataclass
class Stage:
    name: str | None
    base: str  # the FROM image, ARG defaults substituted
    env: dict[str, str] = field(default_factory=dict)
    cmd: list[str] = field(default_factory=list)  # [] without a CMD
    healthcheck: list[str] = field(default_factory=list)  # the command after HEALTHCHECK's options; [] without one
    healthcheck_options: dict[str, str] = field(default_factory=dict)
    user: str = "root"
    copies: list[tuple[list[str], str]] = field(default_factory=list)  # (sources in the build context, destination)
    runs: list[str] = field(default_factory=list)
    volumes: list[str] = field(default_factory=list)
    parent: str | None = None  # the earlier stage this one is FROM, if any
    copies_from: list[str] = field(default_factory=list)  # the stages it COPY --from=s (this stage's own COPYs only)


def instructions(text: str) -> list[tuple[str, str]]:
    """(KEYWORD, arguments) pairs, continuation lines joined and comments dropped."""
    out: list[tuple[str, str]] = []
    pending = ""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith("#") or (not line and pending):
            continue  # comment lines (also inside a continuation) and blank continuation lines
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        line, pending = pending + line, ""
        if line:
            keyword, _, rest = line.partition(" ")
            out.append((keyword.upper(), rest.strip()))
    return out


def _substitute(value: str, variables: dict[str, str]) -> str:
    return re.sub(r"\$\{(\w+)\}|\$(\w+)", lambda m: variables.get(m.group(1) or m.group(2), ""), value)


def parse(path: Path) -> dict[str, Stage]:
    """Stages by name; the last stage is also under the key "" (what a build without --target produces)."""
    global_args: dict[str, str] = {}
    stages: dict[str, Stage] = {}
    stage: Stage | None = None
    for keyword, rest in instructions(path.read_text()):
        if keyword == "ARG" and stage is None:
            name, _, default = rest.partition("=")
            global_args[name] = default
        elif keyword == "FROM":
            parts = rest.split()
            base = _substitute(parts[0], global_args)
            stage_name = parts[2] if len(parts) == 3 and parts[1].upper() == "AS" else None
            parent = stages.get(base)
            stage = Stage(name=stage_name, base=parent.base if parent else base, parent=base if parent else None)
            if parent:  # FROM an earlier stage: it starts from that stage's state
                stage.env, stage.cmd, stage.healthcheck = dict(parent.env), parent.cmd, parent.healthcheck
                stage.healthcheck_options, stage.user = dict(parent.healthcheck_options), parent.user
                stage.copies, stage.runs, stage.volumes = list(parent.copies), list(parent.runs), list(parent.volumes)
            if stage_name:
                stages[stage_name] = stage
            stages[""] = stage
        elif stage is None:
            continue
        elif keyword == "ENV":
            for pair in shlex.split(rest):
                key, _, value = pair.partition("=")
                stage.env[key] = _substitute(value, stage.env)
        elif keyword == "CMD":
            stage.cmd = json.loads(rest)
        elif keyword == "HEALTHCHECK":
            options: dict[str, str] = {}
            while rest.startswith("--"):
                option, _, rest = rest.partition(" ")
                key, _, value = option[2:].partition("=")
                options[key] = value
                rest = rest.strip()
            assert rest.startswith("CMD "), f"{path}: HEALTHCHECK must be exec form: {rest}"
            stage.healthcheck, stage.healthcheck_options = json.loads(rest[4:]), options
        elif keyword == "USER":
            stage.user = rest
        elif keyword == "COPY" and rest.startswith("--from="):
            stage.copies_from.append(rest.split()[0].removeprefix("--from="))
        elif keyword == "COPY":
            parts = [p for p in shlex.split(rest) if not p.startswith("--")]
            stage.copies.append((parts[:-1], parts[-1]))
        elif keyword == "RUN":
            stage.runs.append(rest)
        elif keyword == "VOLUME":
            stage.volumes.extend(json.loads(rest) if rest.startswith("[") else rest.split())
    return stages


def materialise(stage: Stage, context: Path, root: Path, under: str = "/src/") -> Path:
    """Copies the files the stage COPYs below ``under`` (the package sources) into ``root``; returns root.

    The image installs them as its Python package, so running with PYTHONPATH=root sees exactly what the image has.
    """
    import shutil

    for sources, destination in stage.copies:
        if not destination.startswith(under):
            continue
        target = root / destination[len(under) :]
        for source in sources:
            origin = context / source
            if origin.is_dir():
                shutil.copytree(
                    origin, target, dirs_exist_ok=True, ignore=shutil.ignore_patterns("__pycache__", "Dockerfile")
                )
            else:
                place = target / origin.name if destination.endswith("/") else target
                place.parent.mkdir(parents=True, exist_ok=True)
                shutil.copy2(origin, place)
    return root
