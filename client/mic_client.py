"""The full-duplex microphone client: the conversation logic between a sound card and the gateway.

The microphone streams continuously (``input_audio_buffer.append`` every 40 ms); the reply is played through a jitter
buffer. When the gateway says the user started speaking, playback stops at once and the client tells the gateway
how much of the reply was really played (``conversation.item.truncate``). If the connection drops, the client
reconnects with backoff and restores the conversation so far into the new session (``conversation.item.create``
for each earlier message), so the assistant still knows what was said; only the turn in flight is lost, and the
view says so.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import random
import time
from collections import deque
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import websockets

from client.audio_io import AudioIO, wire_rate
from client.echo import (
    AEC_RATE,
    EchoMode,
    HalfDuplexGate,
    ReferenceTap,
    WebRtcEchoCanceller,
)
from client.jitter import JitterBuffer
from client.realtime import (
    ConnectError,
    append_audio,
    audio_of,
    connect,
    session_update,
    text_item,
)
from client.view import TerminalView
from services.common.audio import StreamResampler

SEND_MS = 40  # microphone audio per append event
RESTORE_MESSAGES = 24  # earlier messages re-sent to a new session after a reconnect
BACKOFF_S = (0.25, 0.5, 1.0, 2.0)  # waits between reconnect attempts; the last one repeats
VOICE_FLOOR = 0.01  # mic level (of full scale) below which a block never counts as the user's voice


@dataclass
class MicOptions:
    echo: EchoMode = EchoMode.AEC
    prebuffer_ms: float = 60.0
    backoff_s: tuple[float, ...] = BACKOFF_S


@dataclass
class Conversation:
    """What the client remembers of the conversation, to restore it into a new session after a reconnect."""

    messages: list[tuple[str, str]] = field(default_factory=list)  # (role, text)
    assistant_index: dict[str, int] = field(default_factory=dict)  # item id -> index in messages

    def add(self, role: str, text: str, item_id: str | None = None) -> None:
        if item_id is not None:
            self.assistant_index[item_id] = len(self.messages)
        self.messages.append((role, text))

    def replace(self, item_id: str, text: str) -> None:
        """The gateway's version of an assistant message after a truncate: what the user really heard."""
        if (index := self.assistant_index.get(item_id)) is not None:
            self.messages[index] = (self.messages[index][0], text)


class VoiceClock:
    """When the user's voice last sounded: the start of the turn's latency (mic levels by capture time)."""

    def __init__(self) -> None:
        self.levels: deque[tuple[float, float]] = deque(maxlen=1500)  # (perf_counter, peak level 0..1), ~60 s
        self.speech_started_at: float | None = None

    def add(self, captured_at: float, block: np.ndarray) -> None:
        if len(block):
            self.levels.append((captured_at, float(np.abs(block.astype(np.float32)).max()) / 32768.0))

    def voice_end(self, lookback_s: float = 1.0) -> float | None:
        """Last block of the utterance louder than a tenth of its peak (robust to a steady noise floor)."""
        since = (self.speech_started_at or 0.0) - lookback_s
        span = [(t, level) for t, level in self.levels if t >= since]
        if not span:
            return None
        threshold = max(VOICE_FLOOR, 0.1 * max(level for _, level in span))
        loud = [t for t, level in span if level >= threshold]
        return loud[-1] if loud else None


class MicClient:
    def __init__(
        self, url: str, token: str | None, audio: AudioIO, view: TerminalView, options: MicOptions | None = None
    ) -> None:
        self.url, self.token = url, token
        self.audio = audio
        self.view = view
        self.options = options or MicOptions()
        self.echo = self.options.echo
        self.player = JitterBuffer(audio.output_rate, self.options.prebuffer_ms)
        self.input_wire_rate = AEC_RATE if self.echo is EchoMode.AEC else wire_rate(audio.input_rate)
        self.output_wire_rate = wire_rate(audio.output_rate)
        self.conversation = Conversation()
        self.voice = VoiceClock()
        self.stop = asyncio.Event()
        self.connected = asyncio.Event()
        self.mic_live = asyncio.Event()  # the first microphone block arrived
        self.reconnects = 0
        self._ws: Any = None
        self._mic: asyncio.Queue[tuple[float, np.ndarray, np.ndarray | None]] = asyncio.Queue(maxsize=500)
        self._tap = ReferenceTap(audio.output_rate) if self.echo is EchoMode.AEC else None
        self._aec = WebRtcEchoCanceller() if self.echo is EchoMode.AEC else None
        self._gate = HalfDuplexGate() if self.echo is EchoMode.HALF_DUPLEX else None
        capture_rate = AEC_RATE if self.echo is EchoMode.AEC else audio.input_rate
        self._to_aec = StreamResampler(audio.input_rate, AEC_RATE) if self.echo is EchoMode.AEC else None
        self._to_wire = StreamResampler(capture_rate, self.input_wire_rate)
        self._from_wire = StreamResampler(self.output_wire_rate, audio.output_rate)
        self._interrupted: set[str] = set()  # items whose late audio must not play
        self._in_flight = False  # a user turn or a reply is under way (lost if the connection drops)
        self._speaking_item: str | None = None
        self._voice_end: float | None = None  # capture time of the last turn's last word

    # ------------------------------------------------------------------ sound card threads

    def _start_audio(self, loop: asyncio.AbstractEventLoop) -> None:
        def fill_speaker(frames: int) -> np.ndarray:
            samples = self.player.read(frames)
            if self._tap is not None:
                self._tap.write(samples)
            return samples

        def on_mic(block: np.ndarray) -> None:
            captured_at = time.perf_counter()
            reference = None
            if self._to_aec is not None and self._tap is not None:
                block = np.frombuffer(self._to_aec.process(block.astype("<i2").tobytes()), dtype="<i2")
                reference = self._tap.take(len(block))
            with contextlib.suppress(RuntimeError):  # the loop is closing
                loop.call_soon_threadsafe(self._queue_mic, captured_at, block, reference)

        self.audio.start(on_mic, fill_speaker)

    def _queue_mic(self, captured_at: float, block: np.ndarray, reference: np.ndarray | None) -> None:
        with contextlib.suppress(asyncio.QueueFull):  # a stalled consumer drops audio rather than memory
            self._mic.put_nowait((captured_at, block, reference))

    # ------------------------------------------------------------------ microphone → gateway

    async def _pump_mic(self) -> None:
        pending = bytearray()
        chunk_bytes = self.input_wire_rate * SEND_MS // 1000 * 2
        while True:
            captured_at, block, reference = await self._mic.get()
            self.mic_live.set()
            if self._aec is not None and reference is not None:
                block = self._aec.process(block, reference)
            elif self._gate is not None:
                block = self._gate.gate(block, self.player.busy)
            self.voice.add(captured_at, block)
            pending += self._to_wire.process(np.asarray(block, dtype="<i2").tobytes())
            while len(pending) >= chunk_bytes:
                data, pending = bytes(pending[:chunk_bytes]), pending[chunk_bytes:]
                await self._send(append_audio(data))  # dropped while disconnected: a live mic does not queue

    async def _send(self, text: str) -> None:
        ws = self._ws
        if ws is None:
            return
        with contextlib.suppress(websockets.ConnectionClosed):
            await ws.send(text)

    # ------------------------------------------------------------------ the connection, kept alive

    async def run(self) -> None:
        """Runs until ``stop`` is set. Raises ConnectError if the first connection fails or a token is refused."""
        loop = asyncio.get_running_loop()
        ws = await self._connect()  # the first failure is the user's to fix: no retry
        self._start_audio(loop)
        pump = asyncio.create_task(self._pump_mic())
        try:
            attempt = 0
            while not self.stop.is_set():
                if ws is None:
                    delay = self.options.backoff_s[min(attempt, len(self.options.backoff_s) - 1)] * random.uniform(
                        0.8, 1.0
                    )
                    attempt += 1
                    self.view.state(f"reconnecting to {self.url} (attempt {attempt})…")
                    if await self._wait_stop(delay):
                        break
                    try:
                        ws = await self._connect()
                    except ConnectError as err:
                        if err.final:
                            raise
                        continue
                    self.reconnects += 1
                attempt = 0
                await self._session(ws)
                ws = None
        finally:
            pump.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await pump
            self.audio.close()

    async def _connect(self) -> Any:
        self.view.state(f"connecting to {self.url}…")
        return await connect(self.url, self.token, open_timeout=5.0)

    async def _wait_stop(self, seconds: float) -> bool:
        with contextlib.suppress(asyncio.TimeoutError):
            await asyncio.wait_for(self.stop.wait(), seconds)
        return self.stop.is_set()

    async def _session(self, ws: Any) -> None:
        self._ws = ws
        await ws.send(session_update(self.input_wire_rate, self.output_wire_rate))
        restored = self.conversation.messages[-RESTORE_MESSAGES:]
        for role, text in restored:
            await ws.send(text_item(role, text))
        if self.reconnects:
            self.view.notice(f"reconnected; restored {len(restored)} earlier messages into the new session")
        self.connected.set()
        try:  # "listening" only once the microphone really delivers audio (PortAudio takes a moment to start)
            await asyncio.wait_for(self.mic_live.wait(), 5.0)
        except asyncio.TimeoutError:
            self.view.notice("no audio from the microphone yet: is it muted or in use by another program?")
        self.view.state("listening")
        reader = asyncio.create_task(self._read(ws))
        stopper = asyncio.create_task(self.stop.wait())
        try:
            await asyncio.wait({reader, stopper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            self._ws = None
            self.connected.clear()
            stopper.cancel()
            reader.cancel()
            with contextlib.suppress(asyncio.CancelledError, websockets.ConnectionClosed):
                await reader
            await ws.close()
        if not self.stop.is_set():
            lost = (
                " (the turn in progress was lost: please say it again)" if self._in_flight or self.player.busy else ""
            )
            self.view.notice(f"connection lost{lost}")
            self.player.clear()
            self._in_flight = False

    async def _read(self, ws: Any) -> None:
        with contextlib.suppress(websockets.ConnectionClosed):
            async for raw in ws:
                await self._on_event(json.loads(raw))

    # ------------------------------------------------------------------ gateway → speaker and view

    async def _on_event(self, event: dict[str, Any]) -> None:
        kind = event.get("type")
        if kind == "input_audio_buffer.speech_started":
            self.voice.speech_started_at = time.perf_counter()
            self._in_flight = True
            self.view.state("you are speaking")
            await self._barge_in()
        elif kind == "conversation.item.input_audio_transcription.delta":
            self.view.user_partial(event.get("delta", ""))
        elif kind == "input_audio_buffer.speech_stopped":
            self._voice_end = self.voice.voice_end()
            self.view.state("thinking")
        elif kind == "conversation.item.input_audio_transcription.completed":
            text = event.get("transcript", "")
            self.view.user_final(text)
            if text:
                self.conversation.add("user", text)
            else:
                self._in_flight = False
                self.view.state("listening")
        elif kind == "response.output_audio_transcript.delta":
            if event.get("item_id") not in self._interrupted:
                self.view.assistant_delta(event.get("delta", ""))
        elif kind == "response.output_audio.delta":
            item_id = event.get("item_id", "")
            if item_id not in self._interrupted:
                if item_id != self._speaking_item:
                    self._speaking_item = item_id
                    self.view.state("assistant speaking")
                pcm = self._from_wire.process(audio_of(event))
                self.player.push(item_id, np.frombuffer(pcm, dtype="<i2"))
        elif kind == "response.output_audio.done":
            self.player.end(event.get("item_id", ""))
        elif kind == "response.done":
            await self._response_done(event)
        elif kind == "conversation.item.truncated":
            await self._send(json.dumps({"type": "conversation.item.retrieve", "item_id": event["item_id"]}))
        elif kind == "conversation.item.retrieved":
            item = event.get("item", {})
            content = (item.get("content") or [{}])[0]
            if item.get("role") == "assistant":
                self.conversation.replace(item.get("id", ""), content.get("transcript", ""))
        elif kind == "error":
            error = event.get("error", {})
            self.view.notice(f"error: {error.get('code')}: {error.get('message')}")

    async def _response_done(self, event: dict[str, Any]) -> None:
        response = event.get("response", {})
        status = response.get("status", "")
        output = (response.get("output") or [{}])[0]
        item_id = output.get("id")
        transcript = ((output.get("content") or [{}])[0]).get("transcript", "")
        if item_id:
            self.player.end(item_id)
        if transcript:
            self.conversation.add("assistant", transcript, item_id)
        self.view.assistant_done(transcript, status)
        self._in_flight = False
        if status == "completed" and item_id:
            server_ms = (event.get("timings") or {}).get("voice_to_voice_ms")
            asyncio.get_running_loop().create_task(self._after_reply(item_id, self._voice_end, server_ms))
        else:
            self.view.state("listening")

    async def _after_reply(self, item_id: str, voice_end: float | None, server_ms: float | None) -> None:
        """Shows the turn's latency once the reply is audible, and 'listening' once it has played out.

        Latency: the user's last word (mic capture time) → the reply's first sample in the speaker (handed to the
        sound card, plus the card's output latency). Both waits poll playback state, for the view only."""
        deadline = time.monotonic() + 10
        while (started := self.player.started_at(item_id)) is None and time.monotonic() < deadline:
            if item_id in self._interrupted:
                return
            await asyncio.sleep(0.01)
        heard_ms = (
            None
            if started is None or voice_end is None
            else (started + self.audio.output_latency_s - voice_end) * 1000.0
        )
        self.view.turn_latency(heard_ms, server_ms)
        deadline = time.monotonic() + 300
        while self.player.busy and self._speaking_item == item_id and time.monotonic() < deadline:
            await asyncio.sleep(0.05)
        if self._speaking_item == item_id and not self._in_flight:
            self.view.state("listening")

    async def _barge_in(self) -> None:
        """The user spoke: silence the speaker now, and tell the gateway how much of the reply was heard."""
        item_id, played_ms = self.player.clear()
        if item_id is None:
            return
        self._interrupted.add(item_id)
        self._from_wire = StreamResampler(self.output_wire_rate, self.audio.output_rate)
        await self._send(
            json.dumps(
                {
                    "type": "conversation.item.truncate",
                    "item_id": item_id,
                    "content_index": 0,
                    "audio_end_ms": int(played_ms),
                }
            )
        )
        self.view.notice(f"(interrupted: {played_ms / 1000:.1f} s of the reply was played)")
