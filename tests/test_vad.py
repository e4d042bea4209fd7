"""The VAD service, as a real process: speech start/stop on espeak speech, and typed errors on bad input."""

from __future__ import annotations

import json

import pytest
import websockets

from tests.procs import free_port, service_process
from tests.speech import read_pcm16, speak, voiced_span_ms


@pytest.fixture(scope="module")
def vad_url():
    port = free_port()
    # The fixed-silence mode: these tests check speech start/stop and errors; the smart mode has tests/test_end_of_turn.py.
    env = {"S2S_VAD_PORT": str(port), "S2S_VAD_MAX_MESSAGE_BYTES": "65536", "S2S_VAD_END_OF_TURN": "silence"}
    with service_process("services.vad", port, env):
        yield f"ws://127.0.0.1:{port}/v1/vad"


async def collect_events(ws, pcm: bytes, frame_bytes: int = 3200) -> list[dict]:
    for i in range(0, len(pcm), frame_bytes):
        await ws.send(pcm[i : i + frame_bytes])
    # A marker round trip: an invalid message is answered after every frame before it was processed.
    await ws.send("{}")
    events: list[dict] = []
    while True:
        event = json.loads(await ws.recv())
        if event["type"] == "error" and event["code"] == "missing_type":
            return events
        events.append(event)


async def test_speech_start_and_stop_bracket_the_voiced_audio(vad_url, tmp_path):
    pcm, rate = read_pcm16(speak("What is the capital of France?", tmp_path / "q.wav"))
    first_ms, last_ms = voiced_span_ms(pcm, rate)
    async with websockets.connect(vad_url) as ws:
        await ws.send(json.dumps({"type": "vad.start", "sample_rate": 16000, "min_silence_ms": 300}))
        events = await collect_events(ws, pcm)
    kinds = [e["type"] for e in events]
    assert kinds == ["vad.speech_started", "vad.speech_stopped"], events
    started, stopped = events
    assert first_ms - 400 <= started["start_ms"] <= first_ms + 100
    assert last_ms <= stopped["end_ms"] <= last_ms + 400
    assert last_ms + 300 <= stopped["detected_ms"] <= last_ms + 600


async def test_silence_gives_no_events(vad_url):
    async with websockets.connect(vad_url) as ws:
        await ws.send(json.dumps({"type": "vad.start"}))
        assert await collect_events(ws, bytes(32000 * 2)) == []


@pytest.mark.parametrize(
    ("frames", "code"),
    [
        ([b"\x00\x00" * 512], "not_configured"),
        (['{"type": "vad.start", "sample_rate": 44100}'], "invalid_sample_rate"),
        (['{"type": "vad.start"}', b"\x00" * 1001], "invalid_audio"),
        (["not json"], "invalid_json"),
        (['{"type": "vad.dance"}'], "unknown_type"),
        (['{"type": "vad.start", "threshold": 7}'], "invalid_message"),
        (['{"type": "vad.start"}', b"\x00" * 70000], "message_too_large"),
    ],
)
async def test_bad_input_gets_a_typed_error_and_the_stream_goes_on(vad_url, frames, code):
    async with websockets.connect(vad_url) as ws:
        for frame in frames:
            await ws.send(frame)
        error = json.loads(await ws.recv())
        assert error["type"] == "error" and error["code"] == code, error
        assert error["message"]
        # Still usable: a good stream afterwards works.
        await ws.send(json.dumps({"type": "vad.start"}))
        assert await collect_events(ws, bytes(3200)) == []
