"""A small OpenAI Realtime client for the fast tests: a microphone that never stops, and events waited on by condition.

The microphone streams 20 ms frames of 16 kHz PCM16 at ``speed`` times real time, silence unless the test ``say``s
something, as a real one does: the gateway sees a continuous stream, and stream time is the frames sent so far.
"""

from __future__ import annotations

import asyncio
import base64
import contextlib
import json
import time
from collections import deque
from collections.abc import Callable
from typing import Any

from websockets.asyncio.client import ClientConnection, connect

from tests.fast.tone_words import SAMPLE_RATE

FRAME_BYTES = SAMPLE_RATE // 50 * 2  # 20 ms
DEADLINE_S = 5.0

Match = Callable[[dict[str, Any]], bool]


def of_type(type_: str, **fields: Any) -> Match:
    return lambda e: e["type"] == type_ and all(e.get(k) == v for k, v in fields.items())


class Realtime:
    def __init__(self, ws: ClientConnection, speed: float) -> None:
        self.ws = ws
        self.speed = speed
        self.events: list[dict[str, Any]] = []
        self._changed = asyncio.Event()
        self._frames: deque[bytes] = deque()
        self._said: deque[tuple[int, asyncio.Future[None]]] = deque()  # (frame number that ends it, done)
        self.frames_sent = 0
        self._reader = asyncio.create_task(self._read())
        self._mic: asyncio.Task[None] | None = None

    @property
    def stream_ms(self) -> int:
        """Stream time of the next frame the microphone sends."""
        return self.frames_sent * 20

    async def send(self, event: dict[str, Any] | str | bytes) -> None:
        await self.ws.send(event if isinstance(event, str | bytes) else json.dumps(event))

    def start_mic(self) -> None:
        self._mic = asyncio.create_task(self._stream())

    async def say(self, pcm: bytes) -> int:
        """Queues ``pcm`` (16 kHz PCM16) after what is queued; returns once it is sent, with its stream ms start."""
        frames = [pcm[i : i + FRAME_BYTES].ljust(FRAME_BYTES, b"\0") for i in range(0, len(pcm), FRAME_BYTES)]
        start = (self.frames_sent + len(self._frames)) * 20
        self._frames.extend(frames)
        done: asyncio.Future[None] = asyncio.get_running_loop().create_future()
        self._said.append((self.frames_sent + len(self._frames), done))
        await asyncio.wait_for(done, len(frames) * 0.02 / self.speed + DEADLINE_S)
        return start

    def mark(self) -> int:
        """An index into ``events``: wait for what comes after now."""
        return len(self.events)

    async def wait_for(
        self, match: Match | str, after: int = 0, timeout: float = DEADLINE_S, what: str | None = None
    ) -> tuple[int, dict[str, Any]]:
        """The first event at index >= ``after`` that matches; fails with what did come if none does in time."""
        check = of_type(match) if isinstance(match, str) else match
        what = what or (match if isinstance(match, str) else "matching event")
        seen, deadline = after, time.monotonic() + timeout
        while True:
            for index in range(seen, len(self.events)):
                if check(self.events[index]):
                    return index, self.events[index]
            seen = len(self.events)
            self._changed.clear()
            try:
                await asyncio.wait_for(self._changed.wait(), max(0.0, deadline - time.monotonic()))
            except asyncio.TimeoutError:
                raise AssertionError(f"no {what} within {timeout} s; got: {self.summary(after)}") from None

    def find(self, match: Match | str, after: int = 0) -> list[tuple[int, dict[str, Any]]]:
        check = of_type(match) if isinstance(match, str) else match
        return [(i, e) for i, e in enumerate(self.events) if i >= after and check(e)]

    def summary(self, after: int = 0) -> str:
        """The events since ``after``, audio deltas folded, errors and transcripts spelt out."""
        out: list[str] = []
        for e in self.events[after:]:
            kind = e["type"]
            if kind == "error":
                kind += f"({e['error']['code']}: {e['error']['message']})"
            elif kind.endswith("transcription.completed"):
                kind += f"({e['transcript']!r})"
            elif kind == "response.done":
                kind += f"({e['response']['status']}: {reply_of(e)!r})"
            if out and out[-1].startswith(kind) and kind.endswith(".delta"):
                continue
            out.append(kind)
        return ", ".join(out) or "nothing"

    async def close(self) -> None:
        for task in (self._mic, self._reader):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError):
                    await task
        await self.ws.close()

    async def _read(self) -> None:
        with contextlib.suppress(Exception):
            async for frame in self.ws:
                self.events.append(json.loads(frame))
                self._changed.set()
        self.events.append({"type": "client.closed"})  # the gateway hung up: waits see it and fail with it
        self._changed.set()

    async def _stream(self) -> None:
        loop = asyncio.get_running_loop()
        began = loop.time()
        silence = bytes(FRAME_BYTES)
        while True:
            frame = self._frames.popleft() if self._frames else silence
            audio = base64.b64encode(frame).decode()
            await self.ws.send(json.dumps({"type": "input_audio_buffer.append", "audio": audio}))
            self.frames_sent += 1
            while self._said and self._said[0][0] <= self.frames_sent:
                _, done = self._said.popleft()
                if not done.done():
                    done.set_result(None)
            # The microphone's pace, not synchronisation: the next frame is due 20 ms / speed after this one.
            await asyncio.sleep(max(0.0, began + self.frames_sent * 0.02 / self.speed - loop.time()))


async def open_realtime(url: str, token: str, speed: float = 2.0, mic: bool = True) -> Realtime:
    """Connects, sets 16 kHz audio both ways (no resampling: the stages get exactly these bytes), starts the mic."""
    ws = await connect(url, additional_headers={"Authorization": f"Bearer {token}"}, max_size=None)
    client = Realtime(ws, speed)
    await client.wait_for("session.created")
    fmt = {"type": "audio/pcm", "rate": SAMPLE_RATE}
    await client.send(
        {"type": "session.update", "session": {"audio": {"input": {"format": fmt}, "output": {"format": fmt}}}}
    )
    await client.wait_for("session.updated")
    if mic:
        client.start_mic()
    return client


def reply_of(done: dict[str, Any]) -> str:
    """The assistant's words in a ``response.done`` event ('' when it has none)."""
    output = done["response"]["output"]
    return output[0]["content"][0]["transcript"] if output else ""


async def until(condition: Callable[[], bool], what: str, timeout: float = DEADLINE_S) -> None:
    """Waits for state in another thread (a fake stage's) to reach ``condition``; fails naming ``what`` if it doesn't."""
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for: {what}")
        await asyncio.sleep(0.005)  # a polling interval for state another thread owns, not a synchronisation sleep
