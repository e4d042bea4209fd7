"""What ``make eval`` prints and writes: one row per model choice, WER per voice (live beside the direct decode), the
targets of issue 14, the wrong answers; the same tables as markdown for docs/quality.md."""

from __future__ import annotations

import re
from pathlib import Path

from rich.console import Console
from rich.table import Table

BEGIN, END = "<!-- eval:begin (written by python -m bench.eval) -->", "<!-- eval:end -->"
Tables = list[tuple[str, list[str], list[list[str]]]]  # (title, header, rows)


def pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def ms(s: dict | None) -> str:
    return f"{s['p50']:.0f} / {s['p95']:.0f}" if s else "—"


def targets(summary: dict) -> list[tuple[str, bool | None]]:
    """Issue 14's quality targets, met or not (None: not measured)."""
    w = summary["wer"]
    live, file = w.get("live"), w.get("file")
    fmt = summary["format_violations"]["replies"]
    return [
        ("WER ≤ 5 %", None if live is None else live <= 0.05 and (file is None or file <= 0.05)),
        ("live ≤ file + 1 point", None if live is None or file is None else live <= file + 0.01),
        ("correct ≥ 90 %", None if summary["correct"] is None else summary["correct"] >= 0.9),
        ("brief ≥ 95 %", None if summary["brief"] is None else summary["brief"] >= 0.95),
        ("no markdown, lists, emoji", fmt == 0),
    ]


def tables(record: dict) -> Tables:
    rows = record["rows"]
    header = [
        "row", "questions", "WER file", "WER live", "correct", "brief", "md / list / emoji", "asked to repeat",
        "v2v p50 / p95 ms", "failed turns",
    ]  # fmt: skip
    main = []
    for name, row in rows.items():
        s = row["summary"]
        f = s["format_violations"]
        main.append(
            [
                name, str(s["questions"]), pct(s["wer"].get("file")), pct(s["wer"]["live"]), pct(s["correct"]),
                pct(s["brief"]), f"{f['markdown']} / {f['list']} / {f['emoji']}", str(s.get("asked_to_repeat", 0)),
                ms(s["voice_to_voice_ms"]),
                str(s["failed_turns"]),
            ]
        )  # fmt: skip
    voice_rows = []
    for name, row in rows.items():
        for voice, v in row["summary"]["by_voice"].items():
            w = v["wer"]
            voice_rows.append(
                [name, voice, str(v["utterances"]), pct(w.get("file")), pct(w.get("short")), pct(w.get("segment")),
                 pct(w["live"]), pct(v["correct"])]
            )  # fmt: skip
    voice_header = [
        "row", "voice", "utterances", "file: 30 s window", "file: short decode", "file: live VAD segments", "live",
        "correct",
    ]  # fmt: skip
    kinds = list(dict.fromkeys(k for row in rows.values() for k in row["summary"]["by_kind"]))
    kind_rows = [[name, *(pct(row["summary"]["by_kind"].get(k)) for k in kinds)] for name, row in rows.items()]
    target_names = [t for t, _ in targets(next(iter(rows.values()))["summary"])] if rows else []
    target_rows = [
        [name, *("—" if met is None else "yes" if met else "NO" for _, met in targets(row["summary"]))]
        for name, row in rows.items()
    ]
    return [
        ("quality and latency, one row per model choice", header, main),
        (
            "word error rate per test voice: the live path beside direct decodes of the same clip",
            voice_header,
            voice_rows,
        ),
        ("correct answers by kind of question", ["row", *kinds], kind_rows),
        ("issue 14's targets", ["row", *target_names], target_rows),
    ]


def wrong(record: dict, limit: int = 60) -> list[str]:
    out = []
    for name, row in record["rows"].items():
        for item in row["items"]:
            v = item["verdict"]
            if v["correct"]:
                continue
            last = item["utterances"][-1]
            why = (
                "; ".join([f"missing {m!r}" for m in v["missing"]] + [f"said {f!r}" for f in v["forbidden"]])
                or "no reply"
            )
            out.append(f"{name} · {item['id']} ({item['voice']}): heard {last['heard']!r} → {last['reply']!r} ({why})")
    return out[:limit]


def settings_lines(record: dict) -> list[str]:
    return [
        f"{name}: {', '.join(f'{k}={v}' for k, v in row['settings'].items()) or 'the defaults'}"
        for name, row in record["rows"].items()
    ]


def show(console: Console, record: dict) -> None:
    for line in settings_lines(record):
        console.print(f"row {line}", markup=False)
    for title, header, rows in tables(record):
        table = Table(title=title)
        for i, column in enumerate(header):
            table.add_column(column, justify="left" if i < 2 else "right")
        for r in rows:
            table.add_row(*r)
        console.print(table)
    if bad := wrong(record):
        console.print("wrong answers:")
        for line in bad:
            console.print(f"  {line}", markup=False)


def markdown(record: dict) -> str:
    m = record["machine"]
    lines = [
        f"Measured {record['when']} on {m['cpus']} CPUs ({m['platform']}), load average {m['load_at_start']} at the "
        f"start, {m['load_at_end']} at the end (the machine is shared: latency is noisy); {record['seconds']} s.",
        f"Command: `{record['command']}`. Voices: {', '.join(record['voices'])}; input to the gateway at "
        f"{record['input_rate']} Hz; {record['per_question']} voice(s) per question."
        + (f" Replies judged again on {record['rejudged']} (`--rejudge`)." if "rejudged" in record else ""),
        "",
        *(f"- row {line}" for line in settings_lines(record)),
        "",
    ]
    for title, header, rows in tables(record):
        lines += [f"**{title}**", "", "| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
        lines += ["| " + " | ".join(cell.replace("|", "\\|") for cell in r) + " |" for r in rows]
        lines.append("")
    for name, failed in record.get("failed_rows", {}).items():
        lines += [f"Row {name} failed: `{failed['error'][:300]}`", ""]
    if bad := wrong(record):
        lines += ["**wrong answers**", ""] + ["- " + line.replace("|", "\\|") for line in bad] + [""]
    return "\n".join(lines)


DOC_HEAD = """# Answer quality: `make eval`

Spoken questions (bench/eval/questions.yaml: facts, arithmetic, definitions, how-to, follow-ups that need the history,
instructions about the answer) in five voices (espeak-ng en-us, en-gb and en+f3 at different speeds, piper `joe` at two
speeds), through the whole running stack (`s2s up`). Columns:

- **WER file**: the row's STT model on each whole 16 kHz clip, the 30 s window (faster-whisper's own `transcribe`).
  Per voice also the short decode (the speech's own frames, what the live path uses) and the short decode of just the
  segments the live VAD committed, cut from the same file: if that matches the live WER, the difference from the file
  is where the VAD cut, not the audio path.
- **WER live**: the clip streamed at real-time pace (24 kHz, 40 ms chunks) into /v1/realtime with server VAD; the user
  transcript events. Case, punctuation and number spelling are normalised ("7" = "seven").
- **correct**: the reply (its `response.output_audio_transcript.done`) holds every required word or number (any of the
  alternatives; numbers as digits or words) and none of the forbidden ones. A keyword judge: it can pass a confused
  reply that names the right thing, and fail a right one worded otherwise; the wrong answers are listed under the
  tables. **brief**: at most two sentences (and 50 words) unless the question asks for less. **md / list / emoji**:
  replies with markdown, a list, or emoji in their transcript. **asked to repeat**: replies asking the user to say it
  again. **v2v**: the last voiced sample sent → the first reply audio received, at the client (all turns).

The section between the markers is rewritten by every run; what is outside them is kept.

"""


def write_doc(path: Path, record: dict) -> None:
    """Replaces the generated section of ``path`` (creating the file with a short head if needed)."""
    block = f"{BEGIN}\n{markdown(record)}\n{END}"
    text = path.read_text(encoding="utf-8") if path.exists() else DOC_HEAD + f"{BEGIN}\n{END}\n"
    if BEGIN not in text or END not in text:
        text = text.rstrip() + f"\n\n{BEGIN}\n{END}\n"
    text = re.sub(re.escape(BEGIN) + r".*?" + re.escape(END), lambda _: block, text, flags=re.DOTALL)
    path.write_text(text, encoding="utf-8")
