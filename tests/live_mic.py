"""An open microphone for gateway tests: PCM16 at 16 kHz sent in real time, silence when nothing is queued."""

from __future__ import annotations

import asyncio
import base64
import json

RATE = 16000
CHUNK = RATE * 40 // 1000 * 2  # 40 ms of PCM16


class LiveMic:
    """Streams silence in real time, as an open microphone does, and whatever audio is queued in its place."""

    def __init__(self, ws) -> None:
        self.ws = ws
        self._pending = bytearray()

    def say(self, pcm: bytes) -> None:
        self._pending += pcm

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        start, sent = loop.time(), 0
        while True:
            await asyncio.sleep(max(0.0, start + sent * 0.04 - loop.time()))  # real-time pacing, like a sound card
            chunk, self._pending = bytes(self._pending[:CHUNK]), self._pending[CHUNK:]
            chunk += bytes(CHUNK - len(chunk))
            await self.ws.send(
                json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(chunk).decode()})
            )
            sent += 1
