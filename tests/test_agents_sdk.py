"""OpenAI's own Agents SDK (``openai-agents``) drives the real stack: it validates every server event against OpenAI's
Realtime schemas, runs a function tool the model calls, and handles an interruption.

The LLM must be able to call tools: SmolLM2-135M cannot, so the stack runs ``S2S_TEST_TOOL_MODEL`` when it is set
(a GGUF path, e.g. Qwen2.5-0.5B-Instruct), else the service's default model.
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Iterator
from typing import Any

import pytest
from agents import function_tool
from agents.realtime import RealtimeAgent, RealtimeRunner

from services.common.audio import resample_pcm16
from tests.procs import free_port, service_process
from tests.speech import read_pcm16, speak

CALLS: list[str] = []


@function_tool
def get_weather(city: str) -> str:
    """Get the current weather in a city."""
    CALLS.append(city)
    return f"It is sunny and 21 degrees Celsius in {city}."


@pytest.fixture(scope="module")
def tool_stack() -> Iterator[str]:
    port = free_port()
    env = {"S2S_LLM_MODEL": os.environ["S2S_TEST_TOOL_MODEL"]} if os.environ.get("S2S_TEST_TOOL_MODEL") else {}
    with service_process("services.runner", port, env, args=["up", "--port", str(port), "--stage-port-base", "0"]):
        yield f"ws://127.0.0.1:{port}/v1/realtime"


class Recorder:
    """Every event of the SDK session; the raw server events by type; the SDK's errors."""

    def __init__(self) -> None:
        self.server: list[str] = []
        self.errors: list[Any] = []
        self.events: list[Any] = []
        self.new = asyncio.Event()

    async def pump(self, session: Any) -> None:
        async for event in session:
            self.events.append(event)
            if event.type == "error":
                self.errors.append(event.error)
            elif event.type == "raw_model_event":
                data = event.data
                if data.type == "raw_server_event":
                    self.server.append(data.data.get("type", "?"))
                elif data.type in ("error", "exception"):
                    self.errors.append(data)
            self.new.set()

    async def until(self, test: Any, timeout_s: float = 90.0) -> None:
        async def wait() -> None:
            while not test():
                self.new.clear()
                await self.new.wait()

        await asyncio.wait_for(wait(), timeout_s)

    def count(self, kind: str) -> int:
        return self.server.count(kind)


def _speech(text: str, tmp_path: Any, name: str) -> bytes:
    pcm16k, rate = read_pcm16(speak(text, tmp_path / f"{name}.wav", pad_s=1.2))
    return resample_pcm16(pcm16k, rate, 24000)


async def _send_audio(session: Any, pcm: bytes) -> None:
    for i in range(0, len(pcm), 9600):  # 200 ms per append
        await session.send_audio(pcm[i : i + 9600])


async def test_agents_sdk_text_speech_tool_and_interruption(tool_stack, tmp_path):
    agent = RealtimeAgent(
        name="Assistant",
        instructions="You are a voice assistant. Answer in one short sentence. Use get_weather for weather questions.",
        tools=[get_weather],
    )
    runner = RealtimeRunner(agent)
    session = await runner.run(model_config={"url": tool_stack, "api_key": "not-needed-on-loopback"})
    rec = Recorder()
    async with session:
        pump = asyncio.create_task(rec.pump(session))
        try:
            await rec.until(lambda: rec.count("session.updated") >= 1)
            # 1. A text turn: typed, answered aloud.
            await session.send_message("What is the capital of France?")
            # A small model may call the tool here too (Qwen2.5-0.5B calls whatever is offered): then the answer
            # comes in the response after the call's.
            await rec.until(lambda: rec.count("response.output_audio.delta") >= 1, 120)
            await rec.until(lambda: rec.count("response.done") >= rec.count("response.created"))
            CALLS.clear()
            # 2. A spoken turn that needs the tool: the SDK runs it, sends its output and asks for the reply.
            done_before = rec.count("response.done")
            tools_before = sum(e.type == "tool_end" for e in rec.events)
            await _send_audio(session, _speech("What is the weather in Paris?", tmp_path, "weather"))
            await rec.until(lambda: sum(e.type == "tool_end" for e in rec.events) > tools_before, 120)
            assert CALLS and "paris" in CALLS[0].lower()
            await rec.until(lambda: rec.count("response.done") >= done_before + 2, 120)  # the call, then the answer
            spoken = [
                e.data.data["transcript"]
                for e in rec.events
                if e.type == "raw_model_event"
                and e.data.type == "raw_server_event"
                and e.data.data.get("type") == "response.output_audio_transcript.done"
            ]
            assert "sunny" in spoken[-1].lower() or "21" in spoken[-1], spoken
            # 3. An interruption: the user talks over a long reply.
            await session.send_message("Tell me a long story about a dragon and a knight.")
            audio_seen = rec.count("response.output_audio.delta")
            await rec.until(lambda: rec.count("response.output_audio.delta") > audio_seen)
            await _send_audio(session, _speech("Stop please, that is enough.", tmp_path, "stop"))
            await rec.until(lambda: any(e.type == "audio_interrupted" for e in rec.events), 60)
            await rec.until(lambda: rec.count("input_audio_buffer.speech_started") >= 2, 60)
        finally:
            pump.cancel()
            print("server events:", rec.server)
            print("sdk event kinds:", sorted({e.type for e in rec.events}))
            print("errors:", rec.errors)
    assert not rec.errors, rec.errors
