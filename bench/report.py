"""What the bench prints and draws: the paths side by side, the targets of issue 13, and a timeline chart."""

from __future__ import annotations

from pathlib import Path

from rich.console import Console
from rich.table import Table

ROWS = [  # (label, path summary key): the stage rows of the side-by-side table
    ("voice-to-voice at the client", "client_voice_to_voice_ms"),
    ("voice-to-voice, gateway", "voice_to_voice_ms"),
    ("end of turn (last voice → speech_stopped)", "end_of_turn_ms"),
    ("wait for the transcript after the end of turn", "stt_wait_ms"),
    ("STT commit → final used (gateway)", "stt_final_ms"),
    ("STT final decode (stt.final decode_ms)", "stt_decode_ms"),
    ("STT queued behind another decode", "stt_queued_ms"),
    ("LLM request → first clause to TTS", "llm_first_clause_ms"),
    ("LLM first token", "llm_ttft_ms"),
    ("TTS first audio", "tts_first_audio_ms"),
    ("messaging cost per turn", "messaging_overhead_ms"),
]


def _ms(s: dict | None) -> str:
    return f"{s['p50']:.0f} / {s['p95']:.0f}" if s else "—"


def side_by_side(console: Console, record: dict) -> None:
    paths = record["paths"]
    table = Table(title=f"p50 / p95 ms, {paths[next(iter(paths))]['pipeline']['turns']} turns per path")
    table.add_column("measure")
    for name in paths:
        table.add_column(name, justify="right")
    for label, key in ROWS:
        table.add_row(label, *(_ms(p["pipeline"].get(key)) for p in paths.values()))
    table.add_row("STT word error rate", *(_pct(p["pipeline"].get("wer")) for p in paths.values()))
    table.add_row(
        "4 sessions ending together: voice-to-voice",
        *(_ms(p.get("concurrency", {}).get("client_voice_to_voice_ms")) for p in paths.values()),
    )
    for voice in next(iter(paths.values()))["pipeline"]["by_voice"]:
        table.add_row(
            f"  voice-to-voice, {voice}", *(_ms(p["pipeline"]["by_voice"].get(voice)) for p in paths.values())
        )
    console.print(table)
    console.print("(with a speculative reply the stages overlap: their sum can exceed voice-to-voice)")


def _pct(x: float | None) -> str:
    return "—" if x is None else f"{100 * x:.1f} %"


def targets(record: dict) -> list[dict]:
    """Each target of issue 13: what it asks, what each path measured, whether the new path meets it."""
    paths, eot = record["paths"], record.get("end_of_turn", {})

    def v2v(name: str, q: str) -> float | None:
        return paths.get(name, {}).get("pipeline", {}).get("client_voice_to_voice_ms", {}).get(q)

    def decode(name: str) -> float | None:
        return paths.get(name, {}).get("pipeline", {}).get("stt_decode_ms", {}).get("p50")

    def wer_of(name: str) -> float | None:
        return paths.get(name, {}).get("pipeline", {}).get("wer")

    def four(name: str) -> float | None:
        return paths.get(name, {}).get("concurrency", {}).get("client_voice_to_voice_ms", {}).get("p50")

    def silence(mode: str) -> float | None:
        return eot.get(mode, {}).get("silence_p50_ms")

    def cut(mode: str) -> float | None:
        return eot[mode]["cut"] / eot["mid"] if mode in eot and eot.get("mid") else None

    smart = next((k for k in eot if k.startswith("smart")), "smart")
    rows = [
        ("voice-to-voice p50 ≤ 500 ms", v2v("new", "p50"), v2v("old", "p50"), 500, "ms"),
        ("voice-to-voice p95 ≤ 800 ms", v2v("new", "p95"), v2v("old", "p95"), 800, "ms"),
        ("STT final decode p50 ≤ 150 ms", decode("new"), decode("old"), 150, "ms"),
        ("STT WER no worse than the 30 s window", wer_of("new"), wer_of("old"), wer_of("old"), "wer"),
        ("complete question: silence p50 ≤ 250 ms", silence(smart), silence("silence"), 250, "ms"),
        ("mid-sentence pause cut ≤ 1 in 20", cut(smart), cut("silence"), 0.05, "rate"),
        ("4 sessions ending together: v2v p50 ≤ 900 ms", four("new"), four("old"), 900, "ms"),
    ]
    out = []
    for target, new, old, limit, unit in rows:
        met = None if new is None or limit is None else new <= limit
        out.append({"target": target, "new": new, "old": old, "limit": limit, "unit": unit, "met": met})
    return out


def _fmt(x: float | None, unit: str) -> str:
    if x is None:
        return "—"
    return f"{x:.0f} ms" if unit == "ms" else _pct(x)


def targets_table(console: Console, rows: list[dict]) -> None:
    table = Table(title="issue 13: target / measured / met?")
    for column in ("target", "measured (new)", "old path", "met?"):
        table.add_column(column, justify="left" if column == "target" else "right")
    for r in rows:
        met = "—" if r["met"] is None else ("yes" if r["met"] else "NO")
        table.add_row(r["target"], _fmt(r["new"], r["unit"]), _fmt(r["old"], r["unit"]), met)
    console.print(table)


BARS = [  # (label, start mark, end mark), marks in ms after the last voiced sample (bench.paths.offsets)
    ("end of turn (VAD)", None, "speech_stopped"),
    ("STT queue + decode", "stt_commit", "stt_decoded"),  # as the STT reports it, from the commit
    ("LLM → first clause", "llm_request", "tts_first_request"),
    ("TTS first audio", "tts_first_request", "tts_ready"),
    ("→ client (reply held)", "tts_ready", "first_audio_sent"),  # a speculative reply waits for the end of turn
]


def chart(record: dict, path: Path) -> None:
    """A timeline per path, not a stack: each stage from its median start to its median end after the last voiced
    sample, so the overlap of a speculative reply with the end of turn shows as overlap."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    paths = {
        name: p["pipeline"]["marks_p50_ms"] for name, p in record["paths"].items() if p["pipeline"]["marks_p50_ms"]
    }
    if not paths:
        return
    fig, axes = plt.subplots(len(paths), 1, figsize=(8, 1.1 + 1.3 * len(paths)), sharex=True, squeeze=False)
    colours = plt.rcParams["axes.prop_cycle"].by_key()["color"]
    end = max(m["first_audio_sent"] for m in paths.values())
    for ax, (name, marks) in zip(axes[:, 0], paths.items(), strict=True):
        labels = [label for label, _, _ in BARS]
        for i, (_label, start, stop) in enumerate(BARS):
            a, b = (marks[start] if start else 0.0), marks[stop]
            ax.barh(i, b - a, left=a, color=colours[i % len(colours)])
            ax.text(b + 8, i, f"{b - a:.0f}", va="center", fontsize=7)
        client = record["paths"][name]["pipeline"]["client_voice_to_voice_ms"].get("p50")
        ax.axvline(marks["first_audio_sent"], color="black", lw=1)
        note = f"gateway {marks['first_audio_sent']:.0f} ms" + (f", client p50 {client:.0f} ms" if client else "")
        ax.set_title(f"{name} path: first reply audio at {note}", fontsize=9, loc="left")
        ax.set_yticks(range(len(labels)), labels, fontsize=8)
        ax.invert_yaxis()
    axes[-1, 0].set_xlabel("ms after the last voiced sample (median start → median end of each stage; stages overlap)")
    axes[-1, 0].set_xlim(0, end * 1.15 + 1)
    fig.tight_layout()
    fig.savefig(path, dpi=120)
