"""`python -m bench.capacity`: what one session costs each stage here, and how the stack holds up with N at once.

Starts the real stack (``s2s up``, the CPU defaults) once; for each N runs N conversations whose turns end at the same
instant (bench/concurrency.py), ``--rounds`` times, and reads each stage process's CPU time (user + system, from
/proc via psutil) before and after. Reports per N: voice-to-voice p50/p95 at the client, the STT queue wait, the
reply's playback gaps at a real-time player, and per stage the CPU seconds spent per turn, per second of input audio
(VAD) and per second of reply audio (TTS). docs/scaling.md turns these into sessions per replica.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import tempfile
import time
from pathlib import Path

import psutil

from bench.concurrency import run_concurrent
from bench.paths import clips, stats
from tests.procs import free_port, service_process

STAGES = ("vad", "stt", "llm", "tts", "gateway")


def stage_processes(runner_port: int) -> dict[str, psutil.Process]:
    runner = next(
        p
        for p in psutil.process_iter(["cmdline"])
        if "services.runner" in (p.info["cmdline"] or []) and str(runner_port) in (p.info["cmdline"] or [])
    )
    found: dict[str, psutil.Process] = {}
    for child in runner.children(recursive=True):
        cmdline = " ".join(child.cmdline())
        for stage in STAGES:
            if f"services.{stage}" in cmdline:
                found[stage] = child
    return found


def cpu_seconds(procs: dict[str, psutil.Process]) -> dict[str, float]:
    out = {}
    for stage, proc in procs.items():
        times = proc.cpu_times()
        out[stage] = times.user + times.system + times.children_user + times.children_system
    return out


def measure(url: str, procs: dict[str, psutil.Process], turn_clips: list, n: int, rounds: int) -> dict:
    before, started = cpu_seconds(procs), time.monotonic()
    checks = asyncio.run(run_concurrent(url, [(c.pcm, c.rate) for c in turn_clips], n, rounds))
    wall = time.monotonic() - started
    after = cpu_seconds(procs)
    turns = len(checks)
    used = [turn_clips[(r * n + i) % len(turn_clips)] for r in range(rounds) for i in range(n)]
    input_s = sum(len(c.pcm) / 2 / c.rate for c in used)
    reply_s = sum(c.audio_ms for c in checks) / 1000
    cpu = {stage: after[stage] - before[stage] for stage in procs}
    return {
        "sessions": n,
        "turns": turns,
        "failed": sum(c.voice_to_voice_ms is None for c in checks),
        "wall_s": round(wall, 1),
        "client_voice_to_voice_ms": stats([c.voice_to_voice_ms for c in checks if c.voice_to_voice_ms is not None]),
        "stt_queued_ms": stats([c.timings["stt_queued_ms"] for c in checks if "stt_queued_ms" in c.timings]),
        "stt_decode_ms": stats([c.timings["stt_decode_ms"] for c in checks if "stt_decode_ms" in c.timings]),
        "llm_ttft_ms": stats([c.timings["llm_ttft_ms"] for c in checks if "llm_ttft_ms" in c.timings]),
        "tts_first_audio_ms": stats(
            [c.timings["tts_first_audio_ms"] for c in checks if "tts_first_audio_ms" in c.timings]
        ),
        "replies_with_gaps": sum(c.gap_ms > 0 for c in checks),
        "gap_ms": stats([c.gap_ms for c in checks]),
        "input_audio_s": round(input_s, 1),
        "reply_audio_s": round(reply_s, 1),
        "cpu_s": {stage: round(v, 2) for stage, v in cpu.items()},
        "cpu_ms_per_turn": {stage: round(1000 * v / max(1, turns)) for stage, v in cpu.items()},
        "cpu_ms_per_session_s": {stage: round(1000 * v / (n * wall), 1) for stage, v in cpu.items()},
        "vad_cpu_ms_per_input_s": round(1000 * cpu.get("vad", 0.0) / max(input_s, 1e-9), 1),
        "tts_cpu_ms_per_reply_s": round(1000 * cpu.get("tts", 0.0) / max(reply_s, 1e-9), 1),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench.capacity", description=__doc__)
    parser.add_argument("--sessions", default="1,2,4", help="N conversations at once, comma-separated (default 1,2,4)")
    parser.add_argument("--rounds", type=int, default=2, help="turns per conversation at each N (default 2)")
    parser.add_argument("--output", type=Path, default=Path("bench/results/capacity.json"))
    args = parser.parse_args(argv)
    ns = [int(n) for n in args.sessions.split(",") if n]
    record: dict = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "cpus": os.cpu_count(),
        "load_at_start": os.getloadavg(),
        "runs": [],
    }
    port = free_port()
    with tempfile.TemporaryDirectory() as tmp:
        turn_clips = clips(max(ns) * args.rounds, Path(tmp))
        with service_process("services.runner", port, args=["up", "--port", str(port), "--stage-port-base", "0"]):
            procs = stage_processes(port)
            url = f"ws://127.0.0.1:{port}/v1/realtime"
            asyncio.run(run_concurrent(url, [(c.pcm, c.rate) for c in turn_clips[:1]], 1, 1))  # warm-up, not counted
            for n in ns:
                run = measure(url, procs, turn_clips, n, args.rounds)
                record["runs"].append(run)
                v2v = run["client_voice_to_voice_ms"]
                print(
                    f"N={n}: voice-to-voice p50 {v2v.get('p50')} p95 {v2v.get('p95')} ms, failed {run['failed']}, "
                    f"gaps {run['replies_with_gaps']}/{run['turns']}, stt queued {run['stt_queued_ms']}, "
                    f"cpu ms/turn {run['cpu_ms_per_turn']}, vad cpu ms/input s {run['vad_cpu_ms_per_input_s']}, "
                    f"tts cpu ms/reply s {run['tts_cpu_ms_per_reply_s']}",
                    flush=True,
                )
    record["load_at_end"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2))
    print(f"load average {record['load_at_start']} -> {record['load_at_end']}; wrote {args.output}")


if __name__ == "__main__":
    main()
