"""The stock `openai` SDK's realtime client talks to the gateway as it would to OpenAI."""

from __future__ import annotations

import base64

from openai import AsyncOpenAI

from services.common.audio import resample_pcm16
from tests.speech import read_pcm16, speak


async def test_openai_sdk_realtime_client_gets_audio_deltas(stack, tmp_path):
    pcm16k, rate = read_pcm16(speak("What is the capital of France?", tmp_path / "q.wav"))
    pcm = resample_pcm16(pcm16k, rate, 24000)
    client = AsyncOpenAI(api_key="not-needed-on-loopback", base_url=f"{stack.http}/v1")
    kinds: list[str] = []
    audio = bytearray()
    async with client.realtime.connect(model="gpt-realtime") as conn:
        await conn.session.update(
            session={
                "type": "realtime",
                "instructions": "Answer in one short sentence.",
                "audio": {"input": {"format": {"type": "audio/pcm", "rate": 24000}}},
            }
        )
        for i in range(0, len(pcm), 9600):  # 200 ms per append, as fast as the SDK sends
            await conn.input_audio_buffer.append(audio=base64.b64encode(pcm[i : i + 9600]).decode())
        async for event in conn:
            kinds.append(event.type)
            if event.type == "response.output_audio.delta":
                audio += base64.b64decode(event.delta)
            if event.type == "response.done":
                assert event.response.status == "completed"
                break
    assert kinds[0] == "session.created"
    assert "conversation.item.input_audio_transcription.completed" in kinds
    assert kinds.count("response.output_audio.delta") >= 5
    assert len(audio) / 2 / 24000 > 0.5  # at least half a second of reply speech
