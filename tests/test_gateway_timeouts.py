"""A stage that accepts a connection and then never answers must not hang a conversation."""

from __future__ import annotations

import asyncio
import base64
import json

import pytest
import websockets

from tests.procs import free_port, service_process
from tests.speech import read_pcm16, speak

TIMEOUT_S = 2


@pytest.fixture(scope="module")
async def mute_stage():
    """A WebSocket server that takes every message and answers none."""

    async def swallow(ws) -> None:
        async for _ in ws:
            pass

    async with websockets.serve(swallow, "127.0.0.1", 0) as server:
        yield f"ws://127.0.0.1:{server.sockets[0].getsockname()[1]}"


@pytest.fixture(scope="module")
def gateway_with_mute_stages(mute_stage):
    vad_port, port = free_port(), free_port()
    with service_process("services.vad", vad_port, {"S2S_VAD_PORT": str(vad_port)}):
        env = {
            "S2S_GATEWAY_PORT": str(port),
            "S2S_GATEWAY_VAD_URL": f"ws://127.0.0.1:{vad_port}/v1/vad",
            "S2S_GATEWAY_STT_URL": f"{mute_stage}/v1/stt",
            "S2S_GATEWAY_LLM_URL": f"{mute_stage}/v1/llm",
            "S2S_GATEWAY_TTS_URL": f"{mute_stage}/v1/tts",
            "S2S_GATEWAY_STAGE_TIMEOUT_S": str(TIMEOUT_S),
        }
        with service_process("services.gateway", port, env, health_path="/metrics"):
            yield f"ws://127.0.0.1:{port}/v1/realtime"


async def next_of(ws, *types: str) -> dict:
    async with asyncio.timeout(TIMEOUT_S + 20):
        while True:
            event = json.loads(await ws.recv())
            if event["type"] in types:
                return event


async def test_a_mute_stt_gives_a_timeout_error_and_the_session_goes_on(gateway_with_mute_stages, tmp_path):
    pcm, rate = read_pcm16(speak("What is the capital of France?", tmp_path / "q.wav"))
    async with websockets.connect(gateway_with_mute_stages) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "session.update",
                    "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": rate}}}},
                }
            )
        )
        for i in range(0, len(pcm), 6400):
            await ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm[i : i + 6400]).decode()})
            )
        await next_of(ws, "input_audio_buffer.committed")
        error = (await next_of(ws, "error"))["error"]
        assert error["code"] == "stage_timeout" and "stt service" in error["message"]
        await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "Still here?"}}))
        assert (await next_of(ws, "session.updated"))["session"]["instructions"] == "Still here?"


async def test_a_mute_llm_fails_the_reply_instead_of_hanging(gateway_with_mute_stages):
    async with websockets.connect(gateway_with_mute_stages) as ws:
        await ws.send(
            json.dumps(
                {
                    "type": "conversation.item.create",
                    "item": {"type": "message", "role": "user", "content": [{"type": "input_text", "text": "Hello?"}]},
                }
            )
        )
        await ws.send(json.dumps({"type": "response.create"}))
        error = (await next_of(ws, "error"))["error"]
        assert error["code"] == "stage_timeout" and "llm service" in error["message"]
        done = await next_of(ws, "response.done")
        assert done["response"]["status"] == "failed"
