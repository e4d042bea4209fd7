"""The TTS service, as a real process with each real backend: what a listener hears, in order, cancellable at once."""

from __future__ import annotations

import asyncio
import json
import subprocess
import time
from dataclasses import dataclass, field

import pytest
import websockets

from tests.procs import free_port, service_process
from tests.transcribe import transcribe, words

RATE = 22050
FRAME_BYTES = RATE * 40 // 1000 * 2  # the default 40 ms frames
MAX_MESSAGE_BYTES = 8192  # the espeak service's limit, small enough to exceed in a test
SENTENCE = "The quick brown fox jumps over the lazy dog near the river bank."
LONG_PIECE = " ".join([SENTENCE] * 20)  # piper needs seconds for this: time enough to cancel it midway


def start_tts(backend: str, extra: dict[str, str] | None = None):
    port = free_port()
    env = {"S2S_TTS_PORT": str(port), "S2S_TTS_BACKEND": backend, **(extra or {})}
    return service_process("services.tts", port, env), f"ws://127.0.0.1:{port}/v1/tts"


@pytest.fixture(scope="module")
def piper_url():
    process, url = start_tts("piper")
    with process:
        yield url


@pytest.fixture(scope="module")
def espeak_url():
    process, url = start_tts("espeak", {"S2S_TTS_MAX_MESSAGE_BYTES": str(MAX_MESSAGE_BYTES)})
    with process:
        yield url


@pytest.fixture(params=["piper", "espeak"])
def tts_url(request):
    return request.getfixturevalue(f"{request.param}_url")


@dataclass
class Received:
    at: float  # perf_counter when it arrived
    message: dict = field(default_factory=dict)  # a JSON message (empty for audio), or
    audio: bytes = b""  # a binary frame

    @property
    def kind(self) -> str:
        return self.message["type"] if self.message else "audio"


def speak(request_id: str, text: str) -> str:
    return json.dumps({"type": "tts.speak", "request_id": request_id, "text": text})


def cancel(request_id: str | None) -> str:
    return json.dumps({"type": "tts.cancel", "request_id": request_id})


async def receive(ws) -> Received:
    data = await asyncio.wait_for(ws.recv(), timeout=60)
    if isinstance(data, bytes):
        return Received(time.perf_counter(), audio=data)
    return Received(time.perf_counter(), message=json.loads(data))


async def receive_until(ws, done_request_id: str) -> list[Received]:
    """Everything up to and including the tts.done of ``done_request_id``."""
    got = []
    while True:
        item = await receive(ws)
        got.append(item)
        if item.kind == "tts.done" and item.message["request_id"] == done_request_id:
            return got


def messages(items: list[Received]) -> list[tuple[str, str | None, bool | None]]:
    return [(i.kind, i.message.get("request_id"), i.message.get("cancelled")) for i in items if i.message]


def audio_of(items: list[Received]) -> bytes:
    return b"".join(i.audio for i in items)


async def test_a_clause_is_spoken_intelligibly_in_small_frames(tts_url):
    async with websockets.connect(tts_url) as ws:
        await ws.send(speak("r1", "The capital of France is Paris."))
        items = await receive_until(ws, "r1")
    started, *frames, done = items
    assert started.message == {"type": "tts.started", "request_id": "r1", "sample_rate": RATE}
    assert frames and all(f.kind == "audio" for f in frames)
    assert all(len(f.audio) == FRAME_BYTES for f in frames[:-1]) and 0 < len(frames[-1].audio) <= FRAME_BYTES
    pcm = audio_of(frames)
    assert done.message["cancelled"] is False
    assert done.message["audio_ms"] == pytest.approx(len(pcm) / 2 / RATE * 1000, abs=0.1)
    assert 1000 < done.message["audio_ms"] < 5000  # a short sentence, not silence and not a loop
    assert 0 < done.message["first_audio_ms"] < 3000
    heard = words(transcribe(pcm, RATE))
    assert "paris" in heard and ("france" in heard or "capital" in heard), heard


async def test_pieces_queued_back_to_back_are_spoken_in_order(tts_url):
    pieces = {"a": "One apple.", "b": "Two bananas and a pear.", "c": "Three cherries."}
    async with websockets.connect(tts_url) as ws:
        for request_id, text in pieces.items():
            await ws.send(speak(request_id, text))
        items = await receive_until(ws, "c")
    assert messages(items) == [
        (kind, rid, cancelled) for rid in pieces for kind, cancelled in (("tts.started", None), ("tts.done", False))
    ]
    # Each piece's audio lies between its started and its done, and none is empty.
    owner, per_piece = None, {rid: 0 for rid in pieces}
    for item in items:
        if item.kind == "tts.started":
            owner = item.message["request_id"]
        elif item.kind == "tts.done":
            owner = None
        else:
            assert owner is not None, "audio outside a started/done bracket"
            per_piece[owner] += len(item.audio)
    assert all(per_piece.values()), per_piece


async def test_cancel_stops_the_playing_piece_at_once_and_drops_its_queued_ones(tts_url):
    async with websockets.connect(tts_url) as ws:
        for _ in range(3):
            await ws.send(speak("long", LONG_PIECE))
        await ws.send(speak("after", "Something else."))
        assert (await receive(ws)).message["type"] == "tts.started"
        assert (await receive(ws)).kind == "audio"  # the first piece is playing
        cancelled_at = time.perf_counter()
        await ws.send(cancel("long"))
        items = await receive_until(ws, "after")
    assert messages(items) == [
        ("tts.done", "long", True),
        ("tts.done", "long", True),
        ("tts.done", "long", True),
        ("tts.started", "after", None),
        ("tts.done", "after", False),
    ]
    first_done = next(i for i in items if i.kind == "tts.done")
    assert first_done.at - cancelled_at < 1.0  # finishing the piece would take seconds (piper)
    assert 0 < first_done.message["audio_ms"] < 20_000  # the piece holds over a minute of speech
    # No frame of the cancelled request after its done: the next audio belongs to "after".
    after_started = next(n for n, i in enumerate(items) if i.kind == "tts.started")
    first_done_index = items.index(first_done)
    assert all(i.message for i in items[first_done_index:after_started])
    assert audio_of(items[after_started:])


async def test_cancel_all_stops_everything_and_an_unknown_id_is_ignored(tts_url):
    async with websockets.connect(tts_url) as ws:
        await ws.send(speak("x", LONG_PIECE))
        await ws.send(speak("y", "Queued behind it."))
        assert (await receive(ws)).message["type"] == "tts.started"
        assert (await receive(ws)).kind == "audio"
        await ws.send(cancel("nobody"))
        await ws.send(cancel(None))
        items = await receive_until(ws, "y")
        assert messages(items) == [("tts.done", "x", True), ("tts.done", "y", True)]
        # The connection still speaks afterwards.
        await ws.send(speak("z", "Hello again."))
        items = await receive_until(ws, "z")
    assert messages(items) == [("tts.started", "z", None), ("tts.done", "z", False)]
    assert audio_of(items)


async def test_one_sessions_long_synthesis_does_not_hold_up_another(piper_url):
    async with websockets.connect(piper_url) as busy, websockets.connect(piper_url) as quick:
        await busy.send(speak("busy", LONG_PIECE))
        assert (await receive(busy)).message["type"] == "tts.started"
        await quick.send(speak("quick", "Just this."))
        quick_items = await receive_until(quick, "quick")
        assert quick_items[-1].message["cancelled"] is False and audio_of(quick_items)
        # The long piece was still being synthesised all along: cancelling it now cuts it short.
        await busy.send(cancel(None))
        busy_items = await receive_until(busy, "busy")
    assert busy_items[-1].message["cancelled"] is True


def espeak_full_synthesis_seconds(text: str) -> float:
    """How long espeak-ng takes to produce the whole piece: the least a non-streaming service would wait."""
    started = time.perf_counter()
    subprocess.run(
        ["espeak-ng", "--stdout", "--stdin", "-v", "en-us"], input=text.encode(), capture_output=True, check=True
    )
    return time.perf_counter() - started


async def test_espeak_audio_streams_before_the_piece_is_synthesised(espeak_url):
    sentence = ", and ".join(["the quick brown fox jumps over the lazy dog near the river bank"] * 50) + "."
    full_s = espeak_full_synthesis_seconds(sentence)
    async with websockets.connect(espeak_url, max_size=None) as ws:
        sent_at = time.perf_counter()
        await ws.send(speak("s", sentence))
        items = await receive_until(ws, "s")
    first_audio = next(i for i in items if i.kind == "audio")
    first_s, done_s = first_audio.at - sent_at, items[-1].at - sent_at
    assert items[-1].message["audio_ms"] > 60_000
    assert first_s < full_s / 3, (first_s, full_s)
    assert first_s < done_s / 4, (first_s, done_s)


async def test_markdown_and_emoji_are_not_read_out(espeak_url):
    async with websockets.connect(espeak_url) as ws:
        await ws.send(speak("md", "**Paris** is the *capital* of France! 🎉 ## 😀"))
        items = await receive_until(ws, "md")
    heard = words(transcribe(audio_of(items), RATE))
    assert "paris" in heard, heard
    assert not {"asterisk", "asterisks", "star", "hash", "pound", "face", "party"} & set(heard), heard


async def test_a_piece_with_nothing_speakable_is_done_with_no_audio(tts_url):
    async with websockets.connect(tts_url) as ws:
        await ws.send(speak("e", "🎉🇫🇷😀 **"))
        items = await receive_until(ws, "e")
    assert [i.kind for i in items] == ["tts.started", "tts.done"]
    assert items[-1].message["audio_ms"] == 0 and items[-1].message["cancelled"] is False


@pytest.mark.parametrize(
    ("frame", "code"),
    [
        ("not json", "invalid_json"),
        ('{"type": "tts.sing", "request_id": "a", "text": "la"}', "unknown_type"),
        ('{"type": "tts.speak", "request_id": "a", "text": ""}', "invalid_message"),
        ('{"type": "tts.speak", "text": "no id"}', "invalid_message"),
        (speak("big", "word " * 2000), "message_too_large"),
        (b"\x00\x01" * 100, "unexpected_binary"),
    ],
)
async def test_bad_input_gets_a_typed_error_and_the_connection_goes_on(espeak_url, frame, code):
    async with websockets.connect(espeak_url) as ws:
        await ws.send(frame)
        error = (await receive(ws)).message
        assert error["type"] == "error" and error["code"] == code, error
        assert error["message"]
        await ws.send(speak("ok", "Still here."))
        items = await receive_until(ws, "ok")
    assert messages(items) == [("tts.started", "ok", None), ("tts.done", "ok", False)]
    assert audio_of(items)
