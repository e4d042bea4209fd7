"""One eval row: a stack started with the row's environment, every planned conversation spoken through it, judged.

A row is a model choice (a preset, or any S2S_* settings): ``name:S2S_PRESET=fast`` or
``name:S2S_LLM_MODEL=...,S2S_STT_MODEL=...``. The direct decode runs first (the row's STT model in this process),
then the stack (``s2s up``, its children inherit the row's environment) for the live path, one conversation at a time."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from bench.eval.judge import judge
from bench.eval.live import converse
from bench.eval.questions import Question
from bench.eval.text import wer
from bench.eval.voices import Voice, clip
from tests.procs import free_port, service_process

DIRECT_RATE = 16000  # what the STT model takes: the direct decode's clips need no resampling


class RowError(ValueError):
    pass


@dataclass
class Row:
    name: str
    env: dict[str, str] = field(default_factory=dict)


def parse_row(text: str) -> Row:
    """``name`` or ``name:KEY=VALUE,KEY=VALUE`` (the keys: environment variables for the whole stack)."""
    name, _, settings = text.partition(":")
    if not name.strip():
        raise RowError(f"row {text!r}: a name first (name:KEY=VALUE,…)")
    env: dict[str, str] = {}
    for pair in filter(None, (p.strip() for p in settings.split(","))):
        key, eq, value = pair.partition("=")
        if not eq or not key.strip().isidentifier():
            raise RowError(f"row {text!r}: {pair!r} is not KEY=VALUE")
        env[key.strip()] = value.strip()
    return Row(name.strip(), env)


@dataclass
class Conversation:
    question: Question
    voice: Voice

    @property
    def said(self) -> list[str]:
        return [*self.question.context, self.question.ask]


def plan(questions: list[Question], voices: list[Voice], per_question: int) -> list[Conversation]:
    """Question i in voices i, i+1, … (``per_question`` of them): every voice gets every kind of question."""
    count = min(per_question, len(voices))
    return [Conversation(q, voices[(i + k) % len(voices)]) for i, q in enumerate(questions) for k in range(count)]


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    p95 = ordered[0] if len(ordered) == 1 else statistics.quantiles(ordered, n=20, method="inclusive")[-1]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1), "n": len(ordered)}


def run_row(
    row: Row,
    conversations: list[Conversation],
    say: Callable[[str], None],
    input_rate: int = 24000,
    direct: bool = True,
    timeout_s: float = 90.0,
    cache_dir: Path | None = None,
) -> dict:
    """The row's record: settings, every conversation's utterances and verdict, and the summary."""
    texts = [(c.voice, t) for c in conversations for t in c.said]
    say(f"[{row.name}] {len(texts)} clips in {len({v.name for v, _ in texts})} voices…")
    decoded: list[dict[str, str]] = []
    decoder = None
    if direct:
        from bench.eval.direct import DirectDecoder

        decoder = DirectDecoder(row.env)
        say(f"[{row.name}] direct decode ({decoder.model}: the 30 s window and the short decode)…")
        decoded = [decoder.decode(clip(v, t, DIRECT_RATE, cache_dir=cache_dir)) for v, t in texts]
    port = free_port()
    say(f"[{row.name}] starting the stack (s2s up) with {row.env or 'the defaults'}…")
    items = []
    with service_process("services.runner", port, row.env, args=["up", "--port", str(port), "--stage-port-base", "0"]):
        url = f"ws://127.0.0.1:{port}/v1/realtime"
        position = 0
        for n, conversation in enumerate(conversations, 1):
            clips = [clip(conversation.voice, t, input_rate, cache_dir=cache_dir) for t in conversation.said]
            turns = asyncio.run(converse(url, None, clips, input_rate, timeout_s))
            utterances = []
            for said, turn in zip(conversation.said, turns, strict=True):
                u = {"said": said, **turn.to_dict()}
                if decoded:
                    u["direct"] = decoded[position]
                position += 1
                utterances.append(u)
            verdict = judge(conversation.question, turns[-1].reply)
            items.append(
                {
                    "id": conversation.question.id,
                    "kind": conversation.question.kind,
                    "voice": conversation.voice.name,
                    "utterances": utterances,
                    "verdict": verdict.to_dict(),
                }
            )
            mark = "ok " if verdict.correct else "BAD"
            v2v = turns[-1].voice_to_voice_ms
            say(
                f"[{row.name}] {n:>3}/{len(conversations)} {mark} {conversation.voice.name:<15} "
                f"{'—' if v2v is None else f'{v2v:.0f} ms':>8}  heard {turns[-1].heard!r} → {turns[-1].reply[:90]!r}"
            )
    if decoder is not None:  # after the stack, on an idle CPU: the VAD's segments of each clip, decoded directly
        say(f"[{row.name}] direct decode of the segments the live VAD committed…")
        spoken = [(c.voice, u) for c, item in zip(conversations, items, strict=True) for u in item["utterances"]]
        for voice, u in spoken:
            u["segment"] = decoder.decode(clip(voice, u["said"], DIRECT_RATE, cache_dir=cache_dir), u["segments_ms"])
    return {"settings": row.env, "summary": summarise(items), "items": items}


def _rate(flags: list[bool]) -> float | None:
    return round(sum(flags) / len(flags), 4) if flags else None


def _wers(utterances: list[dict]) -> dict[str, float | None]:
    out = {"live": wer([(u["said"], u["heard"]) for u in utterances])}
    if utterances and "direct" in utterances[0]:
        out["file"] = wer([(u["said"], u["direct"]["window"]) for u in utterances])
        out["short"] = wer([(u["said"], u["direct"]["short"]) for u in utterances])
    if utterances and "segment" in utterances[0]:
        out["segment"] = wer([(u["said"], u["segment"]["short"]) for u in utterances])
    return out


def summarise(items: list[dict]) -> dict:
    utterances = [u for item in items for u in item["utterances"]]
    verdicts = [item["verdict"] for item in items]
    replied = [v for v in verdicts if v["words"]]
    formats = {kind: sum(kind in v["format"] for v in replied) for kind in ("markdown", "list", "emoji")}
    summary: dict = {
        "questions": len(items),
        "utterances": len(utterances),
        "wer": _wers(utterances),
        "correct": _rate([v["correct"] for v in verdicts]),
        "brief": _rate([v["brief"] for v in replied]),
        "replies": len(replied),
        "asked_to_repeat": sum(bool(v.get("repeat")) for v in verdicts),
        "format_violations": {**formats, "replies": sum(bool(v["format"]) for v in replied)},
        "failed_turns": sum(1 for u in utterances if u["timed_out"] or (u["heard"] and u["status"] != "completed")),
        "split_turns": sum(1 for u in utterances if u["utterances"] > 1),
        "voice_to_voice_ms": stats([u["voice_to_voice_ms"] for u in utterances if u["voice_to_voice_ms"] is not None]),
        "stt_decode_ms": stats([u["timings"]["stt_decode_ms"] for u in utterances if "stt_decode_ms" in u["timings"]]),
    }
    summary["by_voice"] = {
        voice: {
            "utterances": sum(len(i["utterances"]) for i in items if i["voice"] == voice),
            "wer": _wers([u for i in items if i["voice"] == voice for u in i["utterances"]]),
            "correct": _rate([i["verdict"]["correct"] for i in items if i["voice"] == voice]),
        }
        for voice in dict.fromkeys(i["voice"] for i in items)
    }
    summary["by_kind"] = {
        kind: _rate([i["verdict"]["correct"] for i in items if i["kind"] == kind])
        for kind in dict.fromkeys(i["kind"] for i in items)
    }
    return summary
