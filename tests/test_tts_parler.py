"""The parler-tts backend, served by the real TTS service from its own virtualenv, streams audio while it generates.

No package ships Parler weights, so the test builds a tiny randomly initialised ParlerTTSForConditionalGeneration
(the real architecture, untrained: it proves the code path, not the voice) and points S2S_TTS_PARLER_MODEL at it.
The service starts as the CUDA TTS image starts it, on the CPU. The parler virtualenv is built by
``make parler-venv`` (requirements/parler.txt); CI must have it.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
import websockets

from tests.dockerfile import materialise, parse
from tests.procs import REPO, command_process, free_port, service_env

PARLER_PYTHON = Path(os.environ.get("S2S_PARLER_PYTHON", REPO / ".venv-parler" / "bin" / "python"))
SAMPLE_RATE = 44100  # the DAC codec's
FRAME_BYTES = SAMPLE_RATE * 40 // 1000 * 2  # the service's default 40 ms frames
MAX_SECONDS = 0.6  # of audio per piece: the untrained decoder never says it is done, and CPU decoding is slow

if not PARLER_PYTHON.exists():
    if os.environ.get("CI"):
        raise RuntimeError(f"CI needs the parler virtualenv at {PARLER_PYTHON}: run `make parler-venv`")
    pytest.skip(f"no parler virtualenv at {PARLER_PYTHON} (make parler-venv)", allow_module_level=True)


@pytest.fixture(scope="module")
def tiny_model(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("parler-tiny")
    argv = [str(PARLER_PYTHON), "-m", "tests.parler_tiny", str(out)]
    subprocess.run(argv, cwd=REPO, env=service_env(), check=True, capture_output=True, timeout=300)
    return out


@pytest.fixture(scope="module")
def parler_url(tiny_model, tmp_path_factory):
    """The CUDA TTS image's own start command, environment (S2S_PROFILE=gpu picks parler) and copied sources, on the CPU."""
    stage = parse(REPO / "services" / "tts" / "Dockerfile.cuda")["cuda"]
    root = materialise(stage, REPO, tmp_path_factory.mktemp("tts-cuda-image"))
    port = free_port()
    env = {key: value for key, value in stage.env.items() if key != "PATH" and not value.startswith("/cache")}
    assert env["S2S_PROFILE"] == "gpu"
    env.update(
        {
            "S2S_TTS_HOST": "127.0.0.1",
            "S2S_TTS_PORT": str(port),
            "S2S_TTS_DEVICE": "cpu",  # no GPU here: the rest of the GPU profile stands
            "S2S_TTS_DTYPE": "float32",
            "S2S_TTS_PARLER_MODEL": str(tiny_model),
            "S2S_TTS_PARLER_CHUNK_MS": "100",  # the shortest the 9 codebooks allow (10 decoder steps, 116 ms)
            "S2S_TTS_PARLER_MAX_SECONDS": str(MAX_SECONDS),
            "S2S_TTS_THREADS": "2",
            "PYTHONPATH": str(root),
        }
    )
    argv = [str(PARLER_PYTHON) if part == "python" else part for part in stage.cmd]
    with command_process(argv, f"http://127.0.0.1:{port}/healthz", env, cwd=root):
        yield f"ws://127.0.0.1:{port}/v1/tts"


@dataclass
class Piece:
    started: float  # perf_counter when tts.speak was sent
    frame_times: list[float]
    frame_bytes: list[int]
    done: dict
    done_at: float


async def speak(ws, request_id: str, text: str, cancel_after_first_frame: bool = False) -> Piece:
    started = time.perf_counter()
    await ws.send(json.dumps({"type": "tts.speak", "request_id": request_id, "text": text}))
    times: list[float] = []
    sizes: list[int] = []
    while True:
        data = await asyncio.wait_for(ws.recv(), timeout=120)
        now = time.perf_counter()
        if isinstance(data, bytes):
            times.append(now - started)
            sizes.append(len(data))
            if cancel_after_first_frame and len(times) == 1:
                await ws.send(json.dumps({"type": "tts.cancel", "request_id": request_id}))
            continue
        message = json.loads(data)
        assert message["type"] in ("tts.started", "tts.done"), message
        if message["type"] == "tts.started":
            assert message["sample_rate"] == SAMPLE_RATE
        elif message["request_id"] == request_id:
            return Piece(started, times, sizes, message, now - started)


@pytest.fixture(scope="module")
def full_piece(parler_url) -> Piece:
    async def run() -> Piece:
        async with websockets.connect(parler_url, max_size=None) as ws:
            return await speak(ws, "full", "The quick brown fox jumps over the lazy dog.")

    return asyncio.run(run())


def test_audio_streams_while_the_decoder_generates(full_piece):
    piece = full_piece
    assert not piece.done["cancelled"]
    assert len(piece.frame_times) >= 5, f"only {len(piece.frame_times)} frames"
    assert all(size == FRAME_BYTES for size in piece.frame_bytes[:-1]), "every frame but the last is 40 ms"
    assert sum(piece.frame_bytes) % 2 == 0
    heard_s = sum(piece.frame_bytes) / 2 / SAMPLE_RATE
    assert 0.3 <= heard_s <= MAX_SECONDS + 0.2, heard_s
    # Streaming, not synthesise-then-send: the first frame leaves early in the piece's synthesis, and audio keeps
    # arriving in several chunks spread over it (the streamer decodes every 10 decoder steps).
    assert piece.frame_times[0] < 0.5 * piece.done_at, (piece.frame_times[0], piece.done_at)
    gaps = [b - a for a, b in zip(piece.frame_times, piece.frame_times[1:], strict=False)]
    spread_chunks = 1 + sum(gap > 0.05 * piece.done_at for gap in gaps)
    assert spread_chunks >= 3, f"audio came in {spread_chunks} bursts: {piece.frame_times}"
    assert piece.done["first_audio_ms"] < 0.5 * piece.done_at * 1000


def test_cancel_stops_generation_and_the_next_piece_starts_at_once(parler_url, full_piece):
    async def run() -> tuple[Piece, Piece, float]:
        async with websockets.connect(parler_url, max_size=None) as ws:
            cancelled = await speak(
                ws, "long", "The quick brown fox jumps over the lazy dog.", cancel_after_first_frame=True
            )
            since_cancel = time.perf_counter()
            following = await speak(ws, "next", "Hello there.")
            return cancelled, following, following.started + following.frame_times[0] - since_cancel

    cancelled, following, next_audio_after_s = asyncio.run(run())
    assert cancelled.done["cancelled"]
    assert sum(cancelled.frame_bytes) < sum(full_piece.frame_bytes)
    assert following.frame_times and not following.done["cancelled"]
    # Had generation gone on to the end, the next piece would wait for the rest of the cancelled one.
    assert next_audio_after_s < 0.25 * full_piece.done_at, (next_audio_after_s, full_piece.done_at)
