"""Barge-in: speaking over a reply stops it and trims the history to what was heard; a cough does not."""

from __future__ import annotations

import asyncio
import base64
import json
import time
from dataclasses import dataclass, field

import numpy as np
import pytest
import websockets

from services.vad.backends.base import CHUNK_SAMPLES
from services.vad.backends.silero import SileroModel
from tests.live_mic import LiveMic
from tests.speech import read_pcm16, speak, voiced_span_ms
from tests.transcribe import words

RATE = 16000
STORY = "Tell me a long story about a brave knight who fights a dragon."


@dataclass
class Conversation:
    events: list[tuple[float, dict]] = field(default_factory=list)
    played_ms: float = 0.0

    def of(self, kind: str, **match) -> list[tuple[float, dict]]:
        return [(t, e) for t, e in self.events if e["type"] == kind and all(e.get(k) == v for k, v in match.items())]


async def speak_over_reply(url: str, interruption: bytes, stop_when, react=None) -> Conversation:
    """Asks for a long story by text, plays ``interruption`` into the mic at the first reply audio, records events.

    ``react(conversation, event)`` may return a client event to send in answer to an event.
    """
    conversation = Conversation()
    async with websockets.connect(url, max_size=None) as ws:
        mic = LiveMic(ws)
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {
                        # The default spoken prompt keeps replies to two sentences: a story must be long enough to
                        # still be playing when the interruption is heard.
                        "instructions": "You are a storyteller. Tell long stories of at least ten sentences.",
                        "max_output_tokens": 400,
                        "audio": {"input": {"format": {"type": "audio/pcm", "rate": RATE}}},
                    },
                }
            )
        )
        await ws.send(
            json.dumps(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": STORY}]},
                }
            )
        )
        await ws.send(json.dumps({"type": "response.create"}))
        mic_task = asyncio.create_task(mic.run())
        try:
            async with asyncio.timeout(120):
                async for raw in ws:
                    event = json.loads(raw)
                    conversation.events.append((time.perf_counter(), event))
                    if (
                        event["type"] == "response.output_audio.delta"
                        and len(conversation.of("response.output_audio.delta")) == 1
                    ):
                        mic.say(interruption)
                    if react is not None and (answer := react(conversation, event)) is not None:
                        await ws.send(json.dumps(answer))
                    if stop_when(conversation):
                        break
        finally:
            mic_task.cancel()
    return conversation


@pytest.fixture(scope="module")
def question_pcm(tmp_path_factory) -> bytes:
    pcm, rate = read_pcm16(
        speak("What is the capital of France?", tmp_path_factory.mktemp("barge") / "q.wav", pad_s=0.1)
    )
    assert rate == RATE
    return pcm


def completed_responses(conversation: Conversation) -> int:
    return sum(1 for _, e in conversation.of("response.done") if e["response"]["status"] == "completed")


def played_ms(conversation: Conversation, response_id: str, at: float) -> float:
    """What a player that starts at the first audio delta and plays in real time had played by ``at``."""
    audio = conversation.of("response.output_audio.delta", response_id=response_id)
    received_ms = sum(len(base64.b64decode(e["delta"])) for _, e in audio) / 2 / 24000 * 1000
    return min(received_ms, (at - audio[0][0]) * 1000) if audio else 0.0


def truncate_what_was_played(conversation: Conversation, event: dict) -> dict | None:
    """The client's part of barge-in: stop playback at speech_started, tell the server what was really played."""
    if event["type"] == "response.done" and event["response"]["status"] == "cancelled":
        barge_at = conversation.of("input_audio_buffer.speech_started")[0][0]
        item_id = event["response"]["output"][0]["id"]
        conversation.played_ms = played_ms(conversation, event["response"]["id"], barge_at)
        return {
            "type": "conversation.item.truncate",
            "item_id": item_id,
            "content_index": 0,
            "audio_end_ms": int(conversation.played_ms),
        }
    if event["type"] == "conversation.item.truncated":
        return {"type": "conversation.item.retrieve", "item_id": event["item_id"]}
    return None


async def test_speaking_over_a_reply_stops_it_and_history_keeps_what_was_heard(stack, question_pcm):
    def finished(c: Conversation) -> bool:
        return completed_responses(c) >= 1 and bool(c.of("conversation.item.retrieved"))

    conversation = await speak_over_reply(stack.url, question_pcm, finished, truncate_what_was_played)
    first_done = conversation.of("response.done")[0][1]["response"]
    first_id = first_done["id"]
    assert first_done["status"] == "cancelled", "the story finished before the interruption was heard; make it longer"
    assert first_done["status_details"]["reason"] == "turn_detected"

    barge_at = conversation.of("input_audio_buffer.speech_started")[0][0]
    first_audio = conversation.of("response.output_audio.delta", response_id=first_id)
    # Reply audio stops within 200 ms of the new speech being detected.
    assert max(t for t, _ in first_audio) <= barge_at + 0.2

    streamed = words(
        " ".join(e["delta"] for _, e in conversation.of("response.output_audio_transcript.delta", response_id=first_id))
    )
    kept_by_gateway = words(first_done["output"][0]["content"][0]["transcript"])
    assert kept_by_gateway == streamed[: len(kept_by_gateway)]  # its own estimate: a prefix of what was sent

    # After the client's truncate, the history holds what was played: a prefix, in proportion to the audio played.
    retrieved = conversation.of("conversation.item.retrieved")[0][1]["item"]
    heard = words(retrieved["content"][0]["transcript"])
    assert heard == streamed[: len(heard)]
    audio = conversation.of("response.output_audio.delta", response_id=first_id)
    sent_ms = sum(len(base64.b64decode(e["delta"])) for _, e in audio) / 2 / 24000 * 1000
    assert conversation.played_ms < sent_ms, "nothing was left unplayed; the test shows no truncation"
    assert len(heard) < len(streamed)
    assert len(heard) <= len(streamed) * conversation.played_ms / sent_ms + 12  # at most one clause beyond the share

    # The interrupting question became the next turn and was answered.
    user_text = conversation.of("conversation.item.input_audio_transcription.completed")[0][1]["transcript"]
    assert "capital" in words(user_text), user_text


async def test_a_cough_during_a_reply_does_not_cancel_it(stack, tmp_path):
    pcm, _ = read_pcm16(speak("ah", tmp_path / "ah.wav", pad_s=0))
    first_ms, _ = voiced_span_ms(pcm, RATE)
    cough = pcm[int(first_ms * RATE / 1000) * 2 :][: RATE * 150 // 1000 * 2]  # 150 ms of voice
    # The burst is voice to silero (the test would prove nothing otherwise), just shorter than S2S_VAD_MIN_SPEECH_MS.
    stream = SileroModel().new_stream()
    samples = np.concatenate(
        [np.frombuffer(cough, dtype="<i2").astype(np.float32) / 32768, np.zeros(4 * CHUNK_SAMPLES, np.float32)]
    )
    voiced = sum(
        stream.probability(samples[i : i + CHUNK_SAMPLES]) >= 0.5
        for i in range(0, len(samples) - CHUNK_SAMPLES + 1, CHUNK_SAMPLES)
    )
    assert voiced >= 3

    conversation = await speak_over_reply(stack.url, cough, lambda c: len(c.of("response.done")) >= 1)
    assert conversation.of("response.done")[0][1]["response"]["status"] == "completed"
    assert conversation.of("input_audio_buffer.speech_started") == []
