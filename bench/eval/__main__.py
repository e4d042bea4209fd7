"""`make eval`: spoken questions through the whole running stack, judged; one row per model choice.

Each row starts its own stack (``s2s up``) with the row's environment, e.g. ``--row fast:S2S_PRESET=fast`` or
``--row smol:S2S_LLM_MODEL=embedded:smollm2-135m``; without --row, one row with the defaults. For every row: the direct
decode of each clip (the file path), then each conversation spoken at real-time pace through /v1/realtime (the live
path): transcript WER, the reply judged (bench/eval/questions.yaml), brevity, markdown/list/emoji, voice-to-voice.
Writes the JSON record (--output) and, with --doc, the tables into that markdown file (docs/quality.md)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import shlex
import sys
import time
from pathlib import Path

from rich.console import Console

from bench.eval.judge import judge
from bench.eval.questions import QuestionError, Selection, load
from bench.eval.report import show, write_doc
from bench.eval.run import Row, RowError, parse_row, plan, run_row, summarise
from bench.eval.voices import VOICE_NAMES, VOICES, default_cache_dir, voice_named

os.environ.setdefault("HF_HUB_OFFLINE", "1")


def _names(text: str) -> list[str]:
    return [n.strip() for n in text.split(",") if n.strip()]


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m bench.eval", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    p.add_argument(
        "--row",
        action="append",
        default=[],
        metavar="NAME[:KEY=VAL,…]",
        help="a model choice: a name and the environment of its stack (repeat for several rows; default: 'default')",
    )
    p.add_argument("--subset", action="store_true", help="only the five questions of tests/test_eval_subset.py")
    p.add_argument("--ids", type=_names, default=[], help="only these question ids (comma-separated)")
    p.add_argument("--kinds", type=_names, default=[], help="only these kinds (fact, arithmetic, …; comma-separated)")
    p.add_argument("--limit", type=int, default=None, help="at most this many questions")
    p.add_argument(
        "--voices", type=_names, default=VOICE_NAMES, help=f"voices to use (default all: {', '.join(VOICE_NAMES)})"
    )
    p.add_argument(
        "--per-question", type=int, default=1, help="voices each question is spoken in (default 1, rotating)"
    )
    p.add_argument(
        "--input-rate", type=int, default=24000, help="sample rate sent to the gateway (default 24000, GA's only rate)"
    )
    p.add_argument("--no-direct", action="store_true", help="skip the direct decode (the file path)")
    p.add_argument("--timeout", type=float, default=90.0, help="seconds to wait for one turn's reply (default 90)")
    p.add_argument("--cache", type=Path, default=None, help=f"WAV cache (default {default_cache_dir()})")
    p.add_argument("--output", type=Path, default=Path("bench/results/eval.json"), help="the JSON record")
    p.add_argument("--doc", type=Path, default=None, help="also write the tables into this markdown file")
    p.add_argument("--list", action="store_true", help="list the questions and voices, and exit")
    p.add_argument(
        "--rejudge",
        type=Path,
        default=None,
        metavar="JSON",
        help="run nothing: judge the replies of an earlier record again (after a change to the questions' words)",
    )
    return p


def main(argv: list[str] | None = None) -> None:
    args = parser().parse_args(argv)
    console = Console(highlight=False, soft_wrap=True, width=None if sys.stdout.isatty() else 160)
    try:
        rows = [parse_row(r) for r in args.row] or [Row("default")]
        voices = [voice_named(v) for v in args.voices]
        questions = Selection(args.subset, args.ids, args.kinds, args.limit).apply(load())
    except (RowError, QuestionError, KeyError) as exc:
        sys.exit(f"python -m bench.eval: {exc}")
    if len({r.name for r in rows}) != len(rows):
        sys.exit("python -m bench.eval: row names must differ")
    if args.list:
        for q in questions:
            console.print(f"{q.id:<20} {q.kind:<12} {' / '.join([*q.context, q.ask])}", markup=False)
        for v in VOICES:
            console.print(f"voice {v.name:<16} {v.describe()}")
        return
    if args.rejudge:
        finish(console, rejudge(json.loads(args.rejudge.read_text())), args)
        return
    conversations = plan(questions, voices, args.per_question)
    started = time.monotonic()
    record: dict = {
        "when": time.strftime("%Y-%m-%d %H:%M"),
        "command": "python -m bench.eval " + shlex.join(argv if argv is not None else sys.argv[1:]),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "load_at_start": _load()},
        "voices": [f"{v.name} ({v.describe()})" for v in voices],
        "input_rate": args.input_rate,
        "per_question": min(args.per_question, len(voices)),
        "rows": {},
    }
    say = lambda line: console.print(line, markup=False)  # noqa: E731
    for row in rows:
        try:
            record["rows"][row.name] = run_row(
                row, conversations, say, args.input_rate, not args.no_direct, args.timeout, args.cache
            )
        except Exception as exc:  # a row whose stack does not start: the other rows still run
            say(f"[{row.name}] failed: {type(exc).__name__}: {str(exc)[-2000:]}")
            record.setdefault("failed_rows", {})[row.name] = {
                "settings": row.env,
                "error": f"{type(exc).__name__}: {exc}",
            }
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(record, indent=2))  # what is done so far, should a later row crash
    record["machine"]["load_at_end"] = _load()
    record["seconds"] = round(time.monotonic() - started)
    finish(console, record, args)


def rejudge(record: dict) -> dict:
    """The record with every reply judged by the current question file (the transcripts and timings as they were)."""
    questions = {q.id: q for q in load()}
    for row in record["rows"].values():
        for item in row["items"]:
            if item["id"] not in questions:
                sys.exit(f"python -m bench.eval: question {item['id']!r} of the record is gone from the question file")
            item["verdict"] = judge(questions[item["id"]], item["utterances"][-1]["reply"]).to_dict()
        row["summary"] = summarise(row["items"])
    record["rejudged"] = time.strftime("%Y-%m-%d %H:%M")
    return record


def finish(console: Console, record: dict, args: argparse.Namespace) -> None:
    show(console, record)
    for name, failed in record.get("failed_rows", {}).items():
        console.print(f"row {name} FAILED: {failed['error'][:300]}", markup=False)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(record, indent=2))
    console.print(f"wrote {args.output}")
    if args.doc and record["rows"]:
        write_doc(args.doc, record)
        console.print(f"wrote {args.doc}")
    if record.get("failed_rows"):
        sys.exit(f"{len(record['failed_rows'])} row(s) failed")


def _load() -> list[float]:
    return [round(x, 2) for x in os.getloadavg()]


if __name__ == "__main__":
    main()
