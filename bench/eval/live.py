"""The live path: a conversation spoken into the gateway's /v1/realtime as a microphone would, server VAD deciding turns.

One WebSocket per conversation; the "microphone" never stops: it sends each clip at real-time pace, then silence (still
at real-time pace) until that turn's reply is done, then the next clip. Per turn it keeps what a user would see and
hear: the user transcript(s), the reply's transcript, its status, and voice-to-voice time (the last voiced sample sent →
the first reply audio received, as ``make bench`` measures it)."""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass, field
from typing import Any

from client.file_client import last_voiced_ms
from client.realtime import append_audio, connect, session_update

CHUNK_MS = 40  # what the file client sends
OUTPUT_RATE = 24000
NO_SPEECH_S = 6.0  # after the clip: no commit by then means the VAD never heard a turn


@dataclass
class LiveTurn:
    transcripts: list[str] = field(default_factory=list)  # one per committed utterance (a clip cut in two has two)
    replies: list[str] = field(default_factory=list)  # output_audio_transcript.done of each reply
    statuses: list[str] = field(default_factory=list)  # response.done statuses
    errors: list[dict[str, Any]] = field(default_factory=list)
    timings: dict[str, float] = field(default_factory=dict)  # the last completed reply's response.done timings
    speech_started: int = 0
    commits: int = 0
    replies_started: int = 0
    done_after_transcript: bool = False  # a response.done came after the latest transcript
    last_voice_at: float | None = None
    first_audio_at: float | None = None
    timed_out: bool = False
    clip_start_ms: float = 0.0  # stream time (ms of audio sent in this session) where the clip began
    segments: list[list[float]] = field(default_factory=list)  # [audio_start_ms, audio_end_ms] per VAD utterance

    @property
    def heard(self) -> str:
        return " ".join(t for t in self.transcripts if t)

    @property
    def reply(self) -> str:
        return " ".join(r for r in self.replies if r).strip()

    @property
    def status(self) -> str | None:
        return self.statuses[-1] if self.statuses else None

    @property
    def voice_to_voice_ms(self) -> float | None:
        if self.last_voice_at is None or self.first_audio_at is None or self.first_audio_at < self.last_voice_at:
            return None
        return round((self.first_audio_at - self.last_voice_at) * 1000.0, 1)

    def settled(self) -> bool:
        """Everything the VAD heard is transcribed, and the reply to the last transcript is done (or none is due)."""
        if self.commits == 0 or self.speech_started > self.commits or len(self.transcripts) < self.commits:
            return False
        if self.replies_started > len(self.statuses):
            return False
        return self.done_after_transcript or not self.transcripts[-1]

    def to_dict(self) -> dict[str, Any]:
        return {
            "heard": self.heard,
            "utterances": self.commits,
            "reply": self.reply,
            "status": self.status,
            "statuses": self.statuses,
            "voice_to_voice_ms": self.voice_to_voice_ms,
            "timed_out": self.timed_out,
            "errors": self.errors,
            "timings": self.timings,
            "segments_ms": [[round(a - self.clip_start_ms), round(b - self.clip_start_ms)] for a, b in self.segments],
        }


def _note(turn: LiveTurn, event: dict[str, Any], now: float) -> None:
    kind = event["type"]
    if kind == "input_audio_buffer.speech_started":
        turn.speech_started += 1
        turn.segments.append([event["audio_start_ms"], event["audio_start_ms"]])
    elif kind == "input_audio_buffer.speech_stopped" and turn.segments:
        turn.segments[-1][1] = event["audio_end_ms"]
    elif kind == "input_audio_buffer.committed":
        turn.commits += 1
    elif kind == "conversation.item.input_audio_transcription.completed":
        turn.transcripts.append(event.get("transcript") or "")
        turn.done_after_transcript = False
    elif kind == "response.created":
        turn.replies_started += 1
    elif kind == "response.output_audio.delta":
        if turn.first_audio_at is None:
            turn.first_audio_at = now
    elif kind == "response.output_audio_transcript.done":
        turn.replies.append(event.get("transcript") or "")
    elif kind == "response.done":
        turn.statuses.append(event["response"]["status"])
        if event["response"]["status"] == "completed":
            turn.timings = event.get("timings", {})
        turn.done_after_transcript = True
    elif kind == "error":
        turn.errors.append(event.get("error", {}))


async def converse(
    url: str, token: str | None, clips: list[bytes], rate: int, timeout_s: float = 90.0
) -> list[LiveTurn]:
    """Speaks ``clips`` (PCM16 mono at ``rate``) one after another in one session; one LiveTurn per clip."""
    ws = await connect(url, token)
    turns: list[LiveTurn] = []
    current: list[LiveTurn] = []  # the turn events belong to: the one being spoken or waited for

    async def receive() -> None:
        async for raw in ws:
            if current:
                _note(current[-1], json.loads(raw), time.perf_counter())

    receiver = asyncio.create_task(receive())
    loop = asyncio.get_running_loop()
    chunk_bytes = rate * CHUNK_MS // 1000 * 2
    silence = bytes(chunk_bytes)
    t0, sent_ms = loop.time(), 0.0

    async def send(data: bytes) -> None:  # real-time pace: chunk k leaves when k chunks' worth of time has passed
        nonlocal sent_ms
        await asyncio.sleep(max(0.0, t0 + sent_ms / 1000.0 - loop.time()))
        await ws.send(append_audio(data))
        sent_ms += len(data) / 2 / rate * 1000.0

    try:
        await ws.send(session_update(rate, OUTPUT_RATE))
        for pcm in clips:
            turn = LiveTurn(clip_start_ms=sent_ms)
            current.append(turn)
            turns.append(turn)
            voice_end_ms, start_ms = last_voiced_ms(pcm, rate), sent_ms
            for offset in range(0, len(pcm), chunk_bytes):
                await send(pcm[offset : offset + chunk_bytes])
                if turn.last_voice_at is None and sent_ms - start_ms >= voice_end_ms:
                    turn.last_voice_at = time.perf_counter()
            clip_end = loop.time()
            while not turn.settled():
                waited = loop.time() - clip_end
                if waited > timeout_s or (turn.commits == 0 and turn.speech_started == 0 and waited > NO_SPEECH_S):
                    turn.timed_out = True
                    break
                await send(silence)  # the microphone stays open while the reply comes
    finally:
        await ws.close()
        receiver.cancel()
        await asyncio.gather(receiver, return_exceptions=True)
    return turns
