"""The live transcript (input_audio_transcription.delta) follows the user through a short pause inside a turn.

A pause longer than the speculative point (150 ms) but shorter than the end of turn makes the gateway ask
STT for a transcript early; when the user goes on, the words after the pause must still show up live, not only in the
final transcript.
"""

from __future__ import annotations

import asyncio
import json
import time

import websockets

from tests.live_mic import RATE, LiveMic
from tests.speech import read_pcm16, speak, voiced_span_ms
from tests.transcribe import words

PAUSE_MS = 250  # past the gateway's speculative point (150 ms), short of the VAD's end of turn
# A first half the VAD's end-of-turn model calls unfinished (p <= 0.03; the whole question >= 0.92, see
# tests/test_end_of_turn.py), so that the pause is a pause, also in the default "smart" mode.
FIRST_PART = "What time does"
SECOND_PART = {"museum", "open", "tomorrow"}


def with_pause(first: bytes, second: bytes) -> bytes:
    """``first`` and ``second`` joined by exactly PAUSE_MS of silence between their voiced spans."""
    _, first_end = voiced_span_ms(first, RATE)
    second_start, _ = voiced_span_ms(second, RATE)
    first = first[: int(first_end * RATE / 1000) * 2]
    second = second[int(second_start * RATE / 1000) * 2 :]
    return first + bytes(PAUSE_MS * RATE // 1000 * 2) + second


async def test_words_after_a_short_pause_appear_live(stack, tmp_path):
    first, _ = read_pcm16(speak(FIRST_PART, tmp_path / "a.wav", pad_s=0))
    second, _ = read_pcm16(speak("the museum open tomorrow morning", tmp_path / "b.wav", pad_s=0))
    turn_detection = {"type": "server_vad", "create_response": False}
    events: list[tuple[float, dict]] = []
    async with websockets.connect(stack.url, max_size=None) as ws:
        session = {
            "audio": {"input": {"format": {"type": "audio/pcm", "rate": RATE}, "turn_detection": turn_detection}}
        }
        await ws.send(json.dumps({"type": "session.update", "session": session}))
        mic = LiveMic(ws)
        mic.say(bytes(RATE // 2 * 2) + with_pause(first, second))
        mic_task = asyncio.create_task(mic.run())
        try:
            async with asyncio.timeout(90):
                async for raw in ws:
                    event = json.loads(raw)
                    events.append((time.perf_counter(), event))
                    if event["type"] == "conversation.item.input_audio_transcription.completed":
                        break
        finally:
            mic_task.cancel()
    kinds = [e["type"] for _, e in events]
    assert kinds.count("input_audio_buffer.speech_started") == 1, kinds  # the pause did not end the turn
    live = "".join(e["delta"] for _, e in events if e["type"] == "conversation.item.input_audio_transcription.delta")
    final = events[-1][1]["transcript"]
    assert SECOND_PART & set(words(final)), final
    assert SECOND_PART & set(words(live)), f"live transcript stopped at the pause: {live!r} (final: {final!r})"
