"""The two paths the bench compares, each on a stack it starts itself, over the same spoken turns.

``new``: the defaults (short STT decode, semantic end of turn, speculative reply). ``old``: all three off, the path
before issue 13. Settings reach the services through the environment of ``s2s up`` (its children inherit it)."""

from __future__ import annotations

import asyncio
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from bench.concurrency import JITTER_BUFFER_MS, run_concurrent
from bench.wer import wer
from client.file_client import TurnResult, talk
from tests.procs import free_port, service_process
from tests.speech import read_pcm16, speak

PATHS: dict[str, dict[str, str]] = {
    # All three of issue 13's features on; the end-of-turn model and the speculative reply are not the defaults (see
    # docs/performance.md).
    "new": {"S2S_VAD_END_OF_TURN": "smart", "S2S_GATEWAY_SPECULATIVE_REPLY": "true"},
    "old": {
        "S2S_STT_SHORT_DECODE": "false",
        "S2S_VAD_END_OF_TURN": "silence",
        "S2S_GATEWAY_SPECULATIVE_REPLY": "false",
    },
}
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
VOICES = [("en-us", 150), ("en-gb", 175), ("en+f3", 135)]  # espeak voice, words per minute
# Gateway spans (response.done.timings, docs/protocol.md) reported per path.
SPANS = [
    "end_of_turn_ms", "stt_wait_ms", "stt_final_ms", "stt_decode_ms", "stt_queued_ms",
    "llm_first_clause_ms", "llm_ttft_ms", "tts_first_audio_ms", "voice_to_voice_ms",
]  # fmt: skip
SERVICE_PAIRS = {  # gateway-observed span vs the stage's own compute time: the difference is messaging cost
    "stt": ("stt_final_ms", "stt_decode_ms"),
    "llm": ("llm_ttft_ms", "llm_service_ttft_ms"),
    "tts": ("tts_first_audio_ms", "tts_service_first_audio_ms"),
}


@dataclass
class Clip:
    text: str
    voice: str
    wpm: int
    pcm: bytes
    rate: int


def stats(values: list[float]) -> dict[str, float]:
    if not values:
        return {}
    ordered = sorted(values)
    p95 = ordered[0] if len(ordered) == 1 else statistics.quantiles(ordered, n=20, method="inclusive")[-1]
    return {"p50": round(statistics.median(ordered), 1), "p95": round(p95, 1), "n": len(ordered)}


def clips(turns: int, workdir: Path) -> list[Clip]:
    """Turn i asks question i mod 12 in a voice that shifts each round, so every question is heard in several voices."""
    out = []
    for i in range(turns):
        q, (voice, wpm) = i % len(QUESTIONS), VOICES[(i + i // len(QUESTIONS)) % len(VOICES)]
        path = workdir / f"q{q}-{voice.replace('+', '_')}-{wpm}.wav"
        if not path.exists():
            speak(QUESTIONS[q], path, pad_s=1.0, words_per_minute=wpm, voice=voice)
        out.append(Clip(QUESTIONS[q], voice, wpm, *read_pcm16(path)))
    return out


async def pipeline_turns(url: str, turn_clips: list[Clip], say: Callable[[str], None]) -> list[TurnResult]:
    results = []
    for i, clip in enumerate(turn_clips):
        result = await talk(url, None, clip.pcm, clip.rate, realtime=True, timeout_s=120)
        results.append(result)
        v2v = f"{result.voice_to_voice_ms:.0f} ms" if result.voice_to_voice_ms is not None else "—"
        say(f"turn {i + 1:>2} {clip.voice:>5}@{clip.wpm}: {v2v:>8}  you: {result.user_text!r}")
    return results


def offsets(t: dict[str, float]) -> dict[str, float] | None:
    """A turn's marks in ms after the last voiced sample, from its spans (None if the turn lacks one).

    With a speculative reply the LLM can start before the end of turn: the marks overlap, and say so."""
    need = ("end_of_turn_ms", "stt_wait_ms", "stt_final_ms", "llm_first_clause_ms", "tts_first_audio_ms")
    if not all(k in t for k in need) or "voice_to_voice_ms" not in t:
        return None
    v2v, tts_request = t["voice_to_voice_ms"], t["voice_to_voice_ms"] - t["tts_first_audio_ms"]
    stt_final = t["end_of_turn_ms"] + t["stt_wait_ms"]
    return {
        "speech_stopped": t["end_of_turn_ms"],
        "stt_commit": stt_final - t["stt_final_ms"],
        "stt_final": stt_final,  # with a decode finished before the end of turn: the end of turn
        "stt_decoded": stt_final - t["stt_final_ms"] + t.get("stt_queued_ms", 0.0) + t.get("stt_decode_ms", 0.0),
        "llm_request": tts_request - t["llm_first_clause_ms"],
        "tts_first_request": tts_request,
        "tts_ready": tts_request + t.get("tts_service_first_audio_ms", t["tts_first_audio_ms"]),  # TTS's own time
        "first_audio_sent": v2v,
    }


def summarise(results: list[TurnResult], turn_clips: list[Clip]) -> dict:
    done = [(r, c) for r, c in zip(results, turn_clips, strict=True) if r.status == "completed"]
    summary: dict = {
        "turns": len(results),
        "failed_turns": len(results) - len(done),
        "client_voice_to_voice_ms": stats([r.voice_to_voice_ms for r, _ in done if r.voice_to_voice_ms is not None]),
    }
    summary["by_voice"] = {
        f"{voice}@{wpm}": stats(
            [r.voice_to_voice_ms for r, c in done if (c.voice, c.wpm) == (voice, wpm) and r.voice_to_voice_ms]
        )
        for voice, wpm in VOICES
    }
    for key in SPANS:
        summary[key] = stats([r.server_timings[key] for r, _ in done if key in r.server_timings])
    marks = [m for r, _ in done if (m := offsets(r.server_timings)) is not None]
    summary["marks_p50_ms"] = {k: round(statistics.median(m[k] for m in marks), 1) for k in marks[0]} if marks else {}
    overhead = []
    for r, _ in done:
        t, m = r.server_timings, offsets(r.server_timings)
        # Only turns whose reply started after the end of turn and whose final came after it: a speculative reply is
        # held until the turn is confirmed, and a final decoded before the end of turn is marked when the turn ends,
        # so their spans hold that wait, not messaging. Queueing behind another decode is reported on its own.
        held = m is None or m["llm_request"] < m["speech_stopped"] or t.get("stt_wait_ms", 0.0) <= 0
        if not held and all(a in t and b in t for a, b in SERVICE_PAIRS.values()):
            overhead.append(sum(t[a] - t[b] for a, b in SERVICE_PAIRS.values()) - t.get("stt_queued_ms", 0.0))
    summary["messaging_overhead_ms"] = stats(overhead)
    summary["wer"] = wer([(c.text, r.user_text) for r, c in zip(results, turn_clips, strict=True)])
    summary["turn_log"] = [
        {"voice": f"{c.voice}@{c.wpm}", "said": c.text, "heard": r.user_text, "status": r.status,
         "client_voice_to_voice_ms": r.voice_to_voice_ms, "timings": r.server_timings}
        for r, c in zip(results, turn_clips, strict=True)
    ]  # fmt: skip
    return summary


def run_path(name: str, turn_clips: list[Clip], sessions: int, rounds: int, say: Callable[[str], None]) -> dict:
    """Starts ``s2s up`` with the path's settings, runs the turns one by one, then ``sessions`` at once."""
    env = PATHS[name]
    port = free_port()
    say(f"[{name}] starting the stack (s2s up) with {env or 'the defaults'}…")
    with service_process("services.runner", port, env, args=["up", "--port", str(port), "--stage-port-base", "0"]):
        url = f"ws://127.0.0.1:{port}/v1/realtime"
        results = asyncio.run(pipeline_turns(url, turn_clips, lambda line: say(f"[{name}] {line}")))
        record = {"settings": env, "pipeline": summarise(results, turn_clips)}
        if sessions:
            say(f"[{name}] {sessions} conversations whose turns end at the same instant, {rounds} rounds…")
            checks = asyncio.run(run_concurrent(url, [(c.pcm, c.rate) for c in turn_clips], sessions, rounds))
            record["concurrency"] = {
                "sessions": sessions,
                "jitter_buffer_ms": JITTER_BUFFER_MS,
                "replies": len(checks),
                "failed": sum(c.voice_to_voice_ms is None for c in checks),
                "replies_with_gaps": sum(c.gap_ms > 0 for c in checks),
                "gap_ms": stats([c.gap_ms for c in checks]),
                "client_voice_to_voice_ms": stats(
                    [c.voice_to_voice_ms for c in checks if c.voice_to_voice_ms is not None]
                ),
                **{key: stats([c.timings[key] for c in checks if key in c.timings]) for key in SPANS},
            }
    return record
