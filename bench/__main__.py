"""`make bench`: issue 13's targets, the new path (the defaults) and the old one side by side in one run.

Each path runs on a stack the bench starts itself (``s2s up``), over the same spoken turns (espeak questions in three
voices at different speeds): voice-to-voice p50/p95 at the client (last voiced sample → first reply audio), the stage
breakdown from the gateway's timings, the STT final decode (stt.final's decode_ms) and its word error rate, and four
sessions whose turns end at the same instant. The old path turns off the short STT decode, the semantic end of turn and
the speculative reply (S2S_STT_SHORT_DECODE=false, S2S_VAD_END_OF_TURN=silence, S2S_GATEWAY_SPECULATIVE_REPLY=false).
End of turn is measured on the VAD alone, in process (tests/test_end_of_turn.py's measurement): silence after the last
voiced sample on complete questions, and how many questions with a 300-700 ms mid-sentence pause are cut there.
Writes bench/results/latest.json and latest.png (a timeline of the stages: they overlap, the chart shows it).
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
from pathlib import Path

from rich.console import Console

from bench.paths import PATHS, VOICES, clips, run_path, stats
from bench.report import chart, side_by_side, targets, targets_table


def end_of_turn(questions: int, rounds: int) -> dict:
    """Both VAD modes on the same complete and paused questions (real silero + Smart Turn, in process)."""
    from tests.test_end_of_turn import measure

    return measure(questions, rounds, [0.5])


def run_baseline(turn_clips, console: Console) -> dict:
    """The gateway's TurnMachine over the same backends in one process (the defaults), for the messaging cost."""
    from bench.inprocess import InProcessPipeline

    pipeline = InProcessPipeline()
    turns = []
    for clip in turn_clips:
        turn = pipeline.turn(clip.pcm)
        turns.append(turn)
        console.print(f"in-process: {turn.voice_to_voice_ms:6.0f} ms  {clip.text!r} → {turn.first_clause[:50]!r}")
    keys = ["end_of_turn_ms", "stt_wait_ms", "llm_first_clause_ms", "tts_first_audio_ms", "voice_to_voice_ms"]
    return {key: stats([getattr(t, key) for t in turns]) for key in keys}


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="bench", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--turns", type=int, default=30, help="spoken turns per path (default 30, in 3 voices)")
    parser.add_argument("--paths", default="new,old", help="which paths to run, comma-separated (default new,old)")
    parser.add_argument(
        "--sessions", type=int, default=4, help="conversations whose turns end together (default 4; 0 skips it)"
    )
    parser.add_argument("--rounds", type=int, default=2, help="rounds of the concurrent conversations (default 2)")
    parser.add_argument(
        "--eot-questions", type=int, default=24, help="questions for the end-of-turn measure (default 24; 0 skips it)"
    )
    parser.add_argument("--eot-rounds", type=int, default=2, help="voice rounds over those questions (default 2)")
    parser.add_argument(
        "--baseline-turns", type=int, default=0, help="turns of the in-process baseline, new path (default 0: none)"
    )
    parser.add_argument("--no-baseline", action="store_true", help="skip the in-process baseline (the default)")
    parser.add_argument(
        "--output", type=Path, default=Path("bench/results/latest.json"), help="JSON result (a PNG chart beside it)"
    )
    args = parser.parse_args(argv)
    console = Console(highlight=False, soft_wrap=True)
    names = [n for n in args.paths.split(",") if n]
    if unknown := set(names) - set(PATHS):
        parser.error(f"unknown paths {sorted(unknown)}; known: {sorted(PATHS)}")
    started = time.monotonic()
    record: dict = {
        "when": time.strftime("%Y-%m-%dT%H:%M:%S"),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_at_start": os.getloadavg()},
        "voices": [f"{v}@{w}" for v, w in VOICES],
        "paths": {},
    }
    if args.eot_questions:
        console.print(f"end of turn: {args.eot_questions} questions × {args.eot_rounds} voice rounds, both modes…")
        record["end_of_turn"] = end_of_turn(args.eot_questions, args.eot_rounds)
    with tempfile.TemporaryDirectory() as tmp:
        turn_clips = clips(args.turns, Path(tmp))
        for name in names:
            record["paths"][name] = run_path(name, turn_clips, args.sessions, args.rounds, console.print)
        if args.baseline_turns and not args.no_baseline:
            console.print("the same backends in one process (new path)…")
            record["in_process"] = run_baseline(turn_clips[: args.baseline_turns], console)
    record["machine"]["load_at_end"] = os.getloadavg()
    record["seconds"] = round(time.monotonic() - started)
    record["targets"] = targets(record)
    side_by_side(console, record)
    if eot := record.get("end_of_turn"):
        for mode, m in eot.items():
            if isinstance(m, dict):
                console.print(
                    f"end of turn, {mode}: complete questions silence p50 {m['silence_p50_ms']:.0f} / p95 "
                    f"{m['silence_p95_ms']:.0f} ms ({m['within_250_ms']} of {eot['complete']} ≤ 250 ms); "
                    f"mid-sentence pause cut {m['cut']} of {eot['mid']}"
                )
    if "in_process" in record:
        console.print(f"in process (new path): voice-to-voice {record['in_process']['voice_to_voice_ms']}")
    targets_table(console, record["targets"])
    console.print(f"load average {record['machine']['load_at_start']} → {record['machine']['load_at_end']}; "
                  f"{record['seconds']} s")  # fmt: skip
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2))
    chart(record, args.output.with_suffix(".png"))
    console.print(f"wrote {args.output} and {args.output.with_suffix('.png')}")
    failed = sum(p["pipeline"]["failed_turns"] for p in record["paths"].values())
    if failed:
        sys.exit(f"{failed} turns did not complete")


if __name__ == "__main__":
    main()
