"""Runs spoken turns through the stack and reports voice-to-voice and per-stage latency (p50/p95)."""

from __future__ import annotations

import argparse
import asyncio
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from client.file_client import TurnResult, talk
from tests.procs import free_port, service_process
from tests.speech import read_pcm16, speak

QUESTIONS = [
    "What is the capital of France?",
    "What is two plus two?",
    "What color is the sky?",
    "How many days are in a week?",
    "At what temperature does water boil?",
    "What is the capital of Japan?",
    "Which planet is the largest?",
    "How many legs does a spider have?",
    "What do bees make?",
    "What is the opposite of hot?",
    "Name a yellow fruit.",
    "How are you today?",
]
STAGES = ["end_of_turn_ms", "stt_final_ms", "llm_ttft_ms", "tts_first_audio_ms", "voice_to_voice_ms"]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    if len(ordered) == 1:
        return ordered[0]
    return statistics.quantiles(ordered, n=100, method="inclusive")[int(q) - 1]


def summarise(results: list[TurnResult]) -> dict[str, dict[str, float]]:
    series: dict[str, list[float]] = {"client_voice_to_voice_ms": [r.voice_to_voice_ms for r in results if r.voice_to_voice_ms is not None]}
    for stage in STAGES:
        series[f"server_{stage}"] = [r.server_timings[stage] for r in results if stage in r.server_timings]
    return {name: {"p50": round(percentile(v, 50), 1), "p95": round(percentile(v, 95), 1), "n": len(v)} for name, v in series.items() if v}


async def run_turns(url: str, turns: int, workdir: Path, console: Console) -> list[TurnResult]:
    results = []
    for i in range(turns):
        question = QUESTIONS[i % len(QUESTIONS)]
        pcm, rate = read_pcm16(speak(question, workdir / f"q{i % len(QUESTIONS)}.wav", pad_s=1.0))
        result = await talk(url, None, pcm, rate, realtime=True, timeout_s=90)
        results.append(result)
        v2v = f"{result.voice_to_voice_ms:.0f} ms" if result.voice_to_voice_ms is not None else "—"
        console.print(f"turn {i + 1:>2}: {v2v:>8}  you: {result.user_text!r}  assistant: {result.reply_text[:60]!r}")
    return results


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__)
    parser.add_argument("--turns", type=int, default=12, help="spoken turns to run (default 12)")
    parser.add_argument("--url", help="benchmark a running gateway instead of starting the stack")
    parser.add_argument("--output", type=Path, default=Path("bench/results/latest.json"), help="where to write the JSON result")
    args = parser.parse_args(argv)
    console = Console(highlight=False)
    with tempfile.TemporaryDirectory() as tmp:
        workdir = Path(tmp)
        if args.url:
            results = asyncio.run(run_turns(args.url, args.turns, workdir, console))
        else:
            port = free_port()
            console.print("starting the stack (s2s up)…")
            with service_process("services.runner", port, args=["up", "--port", str(port), "--stage-port-base", "0"]):
                results = asyncio.run(run_turns(f"ws://127.0.0.1:{port}/v1/realtime", args.turns, workdir, console))
    failed = [r for r in results if r.status != "completed"]
    summary = summarise([r for r in results if r.status == "completed"])
    table = Table(title=f"latency over {len(results) - len(failed)} completed turns (ms)")
    for column in ("measure", "p50", "p95", "n"):
        table.add_column(column, justify="right" if column != "measure" else "left")
    for name, stats in summary.items():
        table.add_row(name, f"{stats['p50']:.0f}", f"{stats['p95']:.0f}", str(stats["n"]))
    console.print(table)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    record = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": {"cpus": __import__("os").cpu_count(), "platform": platform.platform()}, "turns": len(results), "failed": len(failed), "summary": summary}
    args.output.write_text(json.dumps(record, indent=2))
    console.print(f"wrote {args.output}")
    if failed:
        sys.exit(f"{len(failed)} turns did not complete")


if __name__ == "__main__":
    main()
