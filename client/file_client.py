"""Speak a WAV file to the gateway as a microphone would, and collect the spoken reply."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from client.realtime import append_audio, audio_of, connect, session_update, text_item
from services.common.audio import SUPPORTED_RATES, resample_pcm16

CHUNK_MS = 40
TRAILING_SILENCE_S = 3.0  # keep the "microphone" open after the file until the turn is committed


@dataclass
class TurnResult:
    user_text: str = ""
    reply_text: str = ""
    reply_audio: bytearray = field(default_factory=bytearray)
    output_rate: int = 24000
    status: str | None = None
    errors: list[dict[str, Any]] = field(default_factory=list)
    timeline: list[tuple[float, str]] = field(default_factory=list)  # (seconds since start, event type)
    server_timings: dict[str, float] = field(default_factory=dict)
    last_voice_sent_at: float | None = None
    first_audio_at: float | None = None
    audio_arrivals: list[tuple[float, float]] = field(default_factory=list)  # (perf_counter, ms of audio)

    @property
    def voice_to_voice_ms(self) -> float | None:
        if self.last_voice_sent_at is None or self.first_audio_at is None:
            return None
        return (self.first_audio_at - self.last_voice_sent_at) * 1000.0

    def first(self, event_type: str) -> float | None:
        return next((t for t, kind in self.timeline if kind == event_type), None)

    def last(self, event_type: str) -> float | None:
        return next((t for t, kind in reversed(self.timeline) if kind == event_type), None)


def last_voiced_ms(pcm: bytes, rate: int, floor: float = 0.02) -> float:
    samples = np.abs(np.frombuffer(pcm, dtype="<i2").astype(np.float32)) / 32768.0
    loud = np.flatnonzero(samples > floor)
    return float(loud[-1]) / rate * 1000.0 if len(loud) else 0.0


async def talk(
    url: str,
    token: str | None,
    pcm: bytes,
    rate: int,
    realtime: bool = True,
    output_rate: int = 24000,
    timeout_s: float = 60.0,
    instructions: str | None = None,
    history: Sequence[tuple[str, str]] = (),
) -> TurnResult:
    """One spoken turn: stream ``pcm`` (PCM16 mono at ``rate``), return the reply and its timing.

    ``history`` (role, text) pairs are added to the conversation first, as earlier turns would be.
    """
    if rate not in SUPPORTED_RATES:
        pcm, rate = resample_pcm16(pcm, rate, 24000), 24000
    result = TurnResult(output_rate=output_rate)
    started = time.perf_counter()
    committed = asyncio.Event()
    finished = asyncio.Event()
    ws = await connect(url, token)

    async def receive() -> None:
        async for raw in ws:
            event = json.loads(raw)
            kind = event["type"]
            now = time.perf_counter()
            result.timeline.append((now - started, kind))
            if kind == "response.output_audio.delta":
                if result.first_audio_at is None:
                    result.first_audio_at = now
                chunk = audio_of(event)
                result.reply_audio += chunk
                result.audio_arrivals.append((now, len(chunk) / 2 / output_rate * 1000.0))
            elif kind == "response.output_audio_transcript.delta":
                result.reply_text += event["delta"]
            elif kind == "input_audio_buffer.committed":
                committed.set()
            elif kind == "conversation.item.input_audio_transcription.completed":
                result.user_text = event["transcript"]
                if not result.user_text:
                    finished.set()
            elif kind == "response.done":
                result.status = event["response"]["status"]
                result.server_timings = event.get("timings", {})
                result.reply_text = result.reply_text.strip()
                finished.set()
            elif kind == "error":
                result.errors.append(event["error"])

    async def send_audio() -> None:
        await ws.send(session_update(rate, output_rate, **({"instructions": instructions} if instructions else {})))
        for role, text in history:
            await ws.send(text_item(role, text))
        chunk = rate * CHUNK_MS // 1000 * 2
        voice_end = last_voiced_ms(pcm, rate)
        loop = asyncio.get_running_loop()
        t0 = loop.time()
        position_ms = 0.0
        silence = bytes(chunk)
        offsets = list(range(0, len(pcm), chunk))
        for i in range(len(offsets) + int(TRAILING_SILENCE_S * 1000 / CHUNK_MS)):
            if i >= len(offsets) and committed.is_set():
                return
            if realtime:  # a microphone delivers audio no faster than it is spoken
                await asyncio.sleep(max(0.0, t0 + position_ms / 1000.0 - loop.time()))
            data = pcm[offsets[i] : offsets[i] + chunk] if i < len(offsets) else silence
            await ws.send(append_audio(data))
            position_ms += len(data) / 2 / rate * 1000.0
            if result.last_voice_sent_at is None and position_ms >= voice_end:
                result.last_voice_sent_at = time.perf_counter()

    receiver = asyncio.create_task(receive())
    try:
        await send_audio()
        await asyncio.wait_for(finished.wait(), timeout_s)
    finally:
        await ws.close()
        receiver.cancel()
    return result
