"""`make bench`: spoken turns through the real stack, the same backends in one process, and concurrent sessions.

Prints p50/p95 of voice-to-voice latency (last voiced sample → first reply audio at the client) and of each stage,
the WebSocket pipeline's cost over the in-process baseline, and whether 4 concurrent conversations keep real time.
Writes bench/results/latest.json and latest.png.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console
from rich.table import Table

from bench.concurrency import JITTER_BUFFER_MS, run_concurrent
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
# Stage spans that add up to voice-to-voice, in order (gateway timings; see docs/protocol.md).
STAGES = ["end_of_turn_ms", "stt_wait_ms", "llm_first_clause_ms", "tts_first_audio_ms"]
SERVICE_PAIRS = {  # gateway-observed span vs the stage's own compute time: the difference is messaging cost
    "stt": ("stt_final_ms", "stt_decode_ms"),
    "llm": ("llm_ttft_ms", "llm_service_ttft_ms"),
    "tts": ("tts_first_audio_ms", "tts_service_first_audio_ms"),
}


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    p95 = ordered[0] if len(ordered) == 1 else statistics.quantiles(ordered, n=20, method="inclusive")[-1]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1), "n": len(ordered)}


def clips(turns: int, workdir: Path) -> list[tuple[str, bytes, int]]:
    out = []
    for i in range(turns):
        question = QUESTIONS[i % len(QUESTIONS)]
        pcm, rate = read_pcm16(speak(question, workdir / f"q{i % len(QUESTIONS)}.wav", pad_s=1.0))
        out.append((question, pcm, rate))
    return out


async def pipeline_turns(url: str, turn_clips, console: Console) -> list[TurnResult]:
    results = []
    for i, (_, pcm, rate) in enumerate(turn_clips):
        result = await talk(url, None, pcm, rate, realtime=True, timeout_s=120)
        results.append(result)
        v2v = f"{result.voice_to_voice_ms:.0f} ms" if result.voice_to_voice_ms is not None else "—"
        console.print(f"turn {i + 1:>2}: {v2v:>8}  you: {result.user_text!r}  assistant: {result.reply_text[:60]!r}")
    return results


def summarise_pipeline(results: list[TurnResult]) -> dict:
    done = [r for r in results if r.status == "completed"]
    summary = {"client_voice_to_voice_ms": stats([r.voice_to_voice_ms for r in done if r.voice_to_voice_ms is not None])}
    for key in STAGES + ["voice_to_voice_ms", "stt_final_ms", "stt_decode_ms", "llm_ttft_ms"]:
        summary[key] = stats([r.server_timings[key] for r in done if key in r.server_timings])
    overhead = []
    for r in done:
        t = r.server_timings
        if all(a in t and b in t for a, b in SERVICE_PAIRS.values()):
            # Queueing behind another decode is scheduling, not messaging: reported on its own.
            overhead.append(sum(t[a] - t[b] for a, b in SERVICE_PAIRS.values()) - t.get("stt_queued_ms", 0.0))
    summary["messaging_overhead_ms"] = stats(overhead)
    summary["stt_queued_ms"] = stats([r.server_timings["stt_queued_ms"] for r in done if "stt_queued_ms" in r.server_timings])
    return summary


def run_baseline(turn_clips, console: Console) -> dict:
    from bench.inprocess import InProcessPipeline

    pipeline = InProcessPipeline()
    turns = []
    for question, pcm, rate in turn_clips:
        assert rate == 16000
        turn = pipeline.turn(pcm)
        turns.append(turn)
        console.print(f"in-process: {turn.voice_to_voice_ms:6.0f} ms  {question!r} → {turn.first_clause[:50]!r}")
    summary = {key: stats([getattr(t, key) for t in turns]) for key in STAGES}
    summary["voice_to_voice_ms"] = stats([t.voice_to_voice_ms for t in turns])
    return summary


def chart(pipeline: dict, baseline: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    labels = ["WebSocket services", "one process"]
    fig, ax = plt.subplots(figsize=(8, 3.2))
    left = [0.0, 0.0]
    for stage in STAGES:
        values = [pipeline.get(stage, {}).get("p50", 0.0), baseline.get(stage, {}).get("p50", 0.0)]
        ax.barh(labels, values, left=left, label=stage.removesuffix("_ms").replace("_", " "))
        left = [a + b for a, b in zip(left, values)]
    for y, total in enumerate(left):
        ax.text(total + 10, y, f"{total:.0f} ms", va="center")
    ax.set_xlabel("median ms after the last voiced sample (stage medians stacked)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.02), ncol=4, fontsize=8, frameon=False)
    ax.set_xlim(0, max(left) * 1.2 + 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)


def print_table(console: Console, title: str, rows: dict) -> None:
    table = Table(title=title)
    for column in ("measure", "p50 ms", "p95 ms", "n"):
        table.add_column(column, justify="left" if column == "measure" else "right")
    for name, s in rows.items():
        if s:
            table.add_row(name, f"{s['p50']:.0f}", f"{s['p95']:.0f}", str(s["n"]))
    console.print(table)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--turns", type=int, default=20, help="spoken turns through the pipeline and the baseline (default 20)")
    parser.add_argument("--sessions", type=int, default=4, help="concurrent conversations in the concurrency run (default 4; 0 skips it)")
    parser.add_argument("--rounds", type=int, default=2, help="turns per concurrent conversation (default 2)")
    parser.add_argument("--no-baseline", action="store_true", help="skip the in-process baseline")
    parser.add_argument("--output", type=Path, default=Path("bench/results/latest.json"), help="JSON result (a PNG chart is written beside it)")
    args = parser.parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    record: dict = {"when": time.strftime("%Y-%m-%dT%H:%M:%S"), "machine": {"cpus": os.cpu_count(), "platform": platform.platform()}}
    with tempfile.TemporaryDirectory() as tmp:
        turn_clips = clips(args.turns, Path(tmp))
        port = free_port()
        console.print("starting the stack (s2s up)…")
        with service_process("services.runner", port, args=["up", "--port", str(port), "--stage-port-base", "0"]):
            url = f"ws://127.0.0.1:{port}/v1/realtime"
            results = asyncio.run(pipeline_turns(url, turn_clips, console))
            if args.sessions:
                console.print(f"{args.sessions} conversations at once, {args.rounds} turns each…")
                checks = asyncio.run(run_concurrent(url, [(p, r) for _, p, r in turn_clips], args.sessions, args.rounds))
                record["concurrency"] = {
                    "sessions": args.sessions,
                    "jitter_buffer_ms": JITTER_BUFFER_MS,
                    "replies": len(checks),
                    "replies_with_gaps": sum(c.gap_ms > 0 for c in checks),
                    "gap_ms": stats([c.gap_ms for c in checks]),
                    "client_voice_to_voice_ms": stats([c.voice_to_voice_ms for c in checks if c.voice_to_voice_ms is not None]),
                }
        record["pipeline"] = summarise_pipeline(results)
        record["failed_turns"] = sum(r.status != "completed" for r in results)
        if not args.no_baseline:
            console.print("the same backends in one process…")
            record["in_process"] = run_baseline(turn_clips, console)
            p, b = record["pipeline"]["voice_to_voice_ms"], record["in_process"]["voice_to_voice_ms"]
            record["pipeline_minus_in_process_p50_ms"] = round(p["p50"] - b["p50"], 1)
    print_table(console, f"WebSocket pipeline, {args.turns} turns", record["pipeline"])
    if "in_process" in record:
        print_table(console, "same backends, one process", record["in_process"])
        console.print(f"pipeline − in-process (server voice-to-voice p50): {record['pipeline_minus_in_process_p50_ms']:+.0f} ms; "
                      f"messaging cost from stage self-reports p50: {record['pipeline']['messaging_overhead_ms'].get('p50', float('nan')):.1f} ms per turn")
    if "concurrency" in record:
        c = record["concurrency"]
        console.print(f"{c['sessions']} concurrent conversations: {c['replies_with_gaps']} of {c['replies']} replies had playback gaps "
                      f"(gap p95 {c['gap_ms'].get('p95', 0):.0f} ms, {JITTER_BUFFER_MS} ms jitter buffer); voice-to-voice p50 {c['client_voice_to_voice_ms'].get('p50', float('nan')):.0f} ms")
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2))
    if "in_process" in record:
        chart(record["pipeline"], record["in_process"], args.output.with_suffix(".png"))
    console.print(f"wrote {args.output}")
    if record["failed_turns"]:
        sys.exit(f"{record['failed_turns']} turns did not complete")


if __name__ == "__main__":
    main()
