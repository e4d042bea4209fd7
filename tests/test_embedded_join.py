"""The embedded Whisper base is joined from its wheel parts into a cache folder that replicas may share (a compose
volume), where every replica's service is PID 1: processes that join it at the same moment, all with the same PID,
must each end with the whole model and leave no temporary file behind."""

from __future__ import annotations

import hashlib
import multiprocessing
import os
from pathlib import Path

from services.stt import embedded
from services.stt.embedded import PART_PACKAGES, SMALL_FILES, _package_data, embedded_whisper_base

JOINERS = 3


class Pid1:
    """The os module as services/stt/embedded.py sees it in a container: its process is PID 1."""

    def __getattr__(self, name: str) -> object:
        return getattr(os, name)

    @staticmethod
    def getpid() -> int:
        return 1


def join_as_pid_1(cache: str, start: multiprocessing.synchronize.Barrier, results: multiprocessing.Queue) -> None:
    embedded.os = Pid1()  # type: ignore[assignment]
    start.wait(timeout=60)
    try:
        results.put(("ok", str(embedded_whisper_base(Path(cache)))))
    except Exception as exc:  # reported to the test, which shows it
        results.put(("error", f"{type(exc).__name__}: {exc}"))


def sha256(*paths: Path) -> str:
    digest = hashlib.sha256()
    for path in paths:
        with path.open("rb") as f:
            while block := f.read(8 << 20):
                digest.update(block)
    return digest.hexdigest()


def test_replicas_joining_the_model_at_once_with_the_same_pid_all_get_the_whole_model(tmp_path):
    context = multiprocessing.get_context("spawn")
    start, results = context.Barrier(JOINERS), context.Queue()
    joiners = [context.Process(target=join_as_pid_1, args=(str(tmp_path), start, results)) for _ in range(JOINERS)]
    for joiner in joiners:
        joiner.start()
    outcomes = [results.get(timeout=120) for _ in joiners]
    for joiner in joiners:
        joiner.join(timeout=30)
    assert outcomes == [("ok", str(tmp_path))] * JOINERS, outcomes
    part1, part2 = (_package_data(name) for name in PART_PACKAGES)
    assert sha256(tmp_path / "model.bin") == sha256(part1 / "model.bin.part1", part2 / "model.bin.part2")
    for name in SMALL_FILES:
        assert (tmp_path / name).read_bytes() == (part1 / name).read_bytes(), name
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(["model.bin", *SMALL_FILES]), "temporary files left"
