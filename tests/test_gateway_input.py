"""Bad input at the gateway: each gets an error event naming the problem; the session and others go on."""

from __future__ import annotations

import base64
import json
import subprocess
import sys

import pytest
import websockets
from websockets.typing import Subprotocol

from tests.procs import REPO, free_port, service_env, service_process


async def next_of(ws, *types: str) -> dict:
    while True:
        event = json.loads(await ws.recv())
        if event["type"] in types:
            return event


def append(pcm: bytes) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm).decode()})


BAD_INPUTS = [
    ("not json at all", "invalid_json"),
    (json.dumps({"type": "response.dance"}), "unknown_event"),
    (
        json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(b"\x01\x02\x03").decode()}),
        "invalid_audio",
    ),
    (json.dumps({"type": "input_audio_buffer.append", "audio": "%%% not base64"}), "invalid_audio"),
    (
        json.dumps(
            {
                "type": "session.update",
                "session": {"audio": {"input": {"format": {"type": "audio/pcm", "rate": 12345}}}},
            }
        ),
        "invalid_sample_rate",
    ),
    (
        json.dumps({"type": "session.update", "session": {"audio": {"output": {"format": {"type": "audio/pcmu"}}}}}),
        "unsupported_format",
    ),
    (json.dumps({"type": "conversation.item.truncate", "item_id": "nope", "audio_end_ms": -5}), "invalid_message"),
    (json.dumps({"type": "input_audio_buffer.append", "audio": "A" * 1_200_000}), "message_too_large"),
    (b"\x00\x01" * 100, "unexpected_binary"),
    (json.dumps({"type": "response.cancel"}), "response_cancel_not_active"),
    (json.dumps({"type": "input_audio_buffer.commit"}), "input_audio_buffer_commit_empty"),
]


@pytest.mark.parametrize(("frame", "code"), BAD_INPUTS, ids=[code + str(i) for i, (_, code) in enumerate(BAD_INPUTS)])
async def test_bad_input_gets_a_named_error_and_the_session_goes_on(stack, frame, code):
    async with websockets.connect(stack.url) as bystander, websockets.connect(stack.url, max_size=None) as ws:
        await next_of(ws, "session.created")
        await next_of(bystander, "session.created")
        await ws.send(frame)
        event = await next_of(ws, "error")
        assert event["error"]["code"] == code, event
        assert len(event["error"]["message"]) > 10
        # The same session still answers, with its settings intact …
        await ws.send(json.dumps({"type": "session.update", "session": {"instructions": "Be brief."}}))
        updated = await next_of(ws, "session.updated", "error")
        assert updated["type"] == "session.updated" and updated["session"]["instructions"] == "Be brief."
        await ws.send(append(bytes(4800)))
        # … and the other session noticed nothing.
        await bystander.send(json.dumps({"type": "session.update", "session": {"instructions": "Hi."}}))
        assert (await next_of(bystander, "session.updated", "error"))["type"] == "session.updated"


async def test_unreachable_stage_gives_an_error_event_not_a_hang():
    port, dead = free_port(), free_port()  # nothing listens on `dead`
    env = {f"S2S_GATEWAY_{s}_URL": f"ws://127.0.0.1:{dead}/v1/{s.lower()}" for s in ("VAD", "STT", "LLM", "TTS")}
    env.update({"S2S_GATEWAY_PORT": str(port), "S2S_GATEWAY_CONNECT_TIMEOUT_S": "2"})
    with service_process("services.gateway", port, env, health_path="/metrics"):
        async with websockets.connect(f"ws://127.0.0.1:{port}/v1/realtime", open_timeout=5) as ws:
            errors = [await next_of(ws, "error") for _ in range(4)]
            named = " ".join(e["error"]["message"] for e in errors)
            assert {e["error"]["code"] for e in errors} == {"upstream_unavailable"}
            for stage in ("vad", "stt", "llm", "tts"):
                assert f"{stage} service at ws://127.0.0.1:{dead}" in named
            await next_of(ws, "session.created")
            await ws.send(json.dumps({"type": "response.create"}))
            assert "llm service" in (await next_of(ws, "error"))["error"]["message"]


async def test_token_is_required_when_set():
    port = free_port()
    with service_process(
        "services.gateway", port, {"S2S_GATEWAY_PORT": str(port), "S2S_GATEWAY_TOKEN": "s3cret"}, health_path="/metrics"
    ):
        url = f"ws://127.0.0.1:{port}/v1/realtime"
        for headers in ({}, {"Authorization": "Bearer wrong"}):
            with pytest.raises(websockets.InvalidStatus) as refused:
                await websockets.connect(url, additional_headers=headers)
            assert refused.value.response.status_code == 401
        async with websockets.connect(url, additional_headers={"Authorization": "Bearer s3cret"}) as ws:
            await next_of(ws, "session.created")
        async with websockets.connect(
            url, subprotocols=[Subprotocol("realtime"), Subprotocol("openai-insecure-api-key.s3cret")]
        ) as ws:
            await next_of(ws, "session.created")


def test_gateway_refuses_a_public_address_without_a_token():
    env = service_env({"S2S_GATEWAY_HOST": "0.0.0.0", "S2S_GATEWAY_PORT": str(free_port()), "S2S_GATEWAY_TOKEN": ""})
    done = subprocess.run(
        [sys.executable, "-m", "services.gateway"], env=env, cwd=REPO, capture_output=True, text=True, timeout=60
    )
    assert done.returncode != 0
    assert "S2S_GATEWAY_TOKEN" in done.stderr
