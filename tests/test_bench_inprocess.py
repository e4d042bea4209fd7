"""The bench's in-process baseline drives the gateway's real TurnMachine on a virtual clock.

Stand-in backends with known compute times (their sleeps stand for model work, not for synchronisation) pin down
what the virtual clock must give: each stage's answer lands at the time it was asked for plus that stage's own
compute, the STT decode starts at the speculative pause, and the LLM and TTS are stopped once the first audio is due.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import numpy as np
import pytest

from bench import inprocess
from services.llm.backends.base import GenerationRequest, Piece
from services.stt.backends.base import Transcript

STT_S, LLM_PIECE_S, TTS_FIRST_S = 0.4, 0.02, 0.05
SLACK_MS = 150.0  # sleeps overshoot on a busy machine; a stage timed against the wrong start would be off by far more
QUESTION = "What is the capital of France?"
SPOKEN = ["Paris", " is", " the", " capital.", " It", " is", " lovely", " in", " spring."] + [" More"] * 60
UNSPEAKABLE_FIRST = [" (", "*", ")", ",", " Paris", *SPOKEN[1:]]


class FakeVad:
    """Loud chunks are speech."""

    def new_stream(self) -> FakeVad:
        return self

    def probability(self, chunk: np.ndarray) -> float:
        return 1.0 if float(np.sqrt(np.mean(chunk * chunk))) > 0.01 else 0.0


class FakeStt:
    def __init__(self, seconds: float) -> None:
        self.seconds = seconds
        self.calls: list[int] = []  # samples per decode

    def transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        time.sleep(self.seconds)
        self.calls.append(len(audio))
        return Transcript(QUESTION, "en")


class FakeLlm:
    def __init__(self, pieces: list[str]) -> None:
        self.pieces = pieces
        self.pulled: list[int] = []  # pieces handed out, per generation
        self.cancels: list[threading.Event] = []

    def generate(self, request: GenerationRequest, cancelled: threading.Event) -> Iterator[Piece]:
        self.pulled.append(0)
        self.cancels.append(cancelled)
        for text in self.pieces[: request.max_tokens]:
            if cancelled.is_set():
                return
            time.sleep(LLM_PIECE_S)
            self.pulled[-1] += 1
            yield Piece(text=text, tokens=1)
        yield Piece(finish_reason="stop")


class FakeTts:
    sample_rate = 24000

    def __init__(self) -> None:
        self.texts: list[str] = []
        self.chunks = 0
        self.stops: list[threading.Event] = []

    def warm_up(self) -> None:
        pass

    def synthesize(self, text: str, stop: threading.Event) -> Iterator[bytes]:
        self.texts.append(text)
        self.stops.append(stop)
        for _ in range(20):
            time.sleep(TTS_FIRST_S)
            self.chunks += 1
            yield b"\x01\x00" * 2400  # 100 ms


def run_turn(
    monkeypatch: pytest.MonkeyPatch, llm_pieces: list[str], stt_s: float = STT_S
) -> tuple[inprocess.InProcessTurn, FakeStt, FakeLlm, FakeTts]:
    stt, llm, tts = FakeStt(stt_s), FakeLlm(llm_pieces), FakeTts()
    for registry, backend in [
        ("vad_backends", FakeVad()),
        ("stt_backends", stt),
        ("llm_backends", llm),
        ("tts_backends", tts),
    ]:
        monkeypatch.setattr(getattr(inprocess, registry), "load", lambda settings, b=backend: b)
    pipeline = inprocess.InProcessPipeline()
    stt.calls.clear()
    llm.pulled.clear()
    llm.cancels.clear()
    # 1024 ms of silence, 1024 ms of "speech", 1024 ms of silence: chunk-aligned, so every VAD time is exact.
    loud = 0.3 * np.sin(2 * np.pi * 400 * np.arange(16 * 1024) / 16000)
    samples = np.concatenate([np.zeros(16 * 1024), loud, np.zeros(16 * 1024)])
    turn = pipeline.turn((samples * 32767).astype("<i2").tobytes())
    return turn, stt, llm, tts


def test_the_turn_is_timed_on_the_virtual_clock_by_the_machine(monkeypatch: pytest.MonkeyPatch) -> None:
    turn, stt, llm, tts = run_turn(monkeypatch, SPOKEN)
    t = turn.timings
    assert (turn.transcript, turn.first_clause) == (QUESTION, "Paris is the capital.")
    # VAD (400 ms of silence ends the turn; 32 ms chunks): voice ends at 2048 ms, the turn at 2464 ms.
    assert turn.end_of_turn_ms == 416.0
    # One decode: the speculative one at the 150 ms pause (2208 ms), of [1024 - 300 pad, 2048 + 150) ms.
    assert stt.calls == [(2048 + 150 - 724) * 16]
    assert t["stt_queued_ms"] == 0.0
    assert t["stt_final_ms"] == t["stt_decode_ms"] >= STT_S * 1000
    # It began 256 ms before the end of the turn, so only the rest of it is waited for.
    assert STT_S * 1000 - 256 <= turn.stt_wait_ms < STT_S * 1000 - 256 + SLACK_MS
    # The first clause is cut when " It" arrives: five pieces; the LLM is stopped there.
    assert 5 * LLM_PIECE_S * 1000 <= turn.llm_first_clause_ms < 5 * LLM_PIECE_S * 1000 + SLACK_MS
    assert llm.pulled == [5] and llm.cancels[0].is_set()
    assert TTS_FIRST_S * 1000 <= turn.tts_first_audio_ms < TTS_FIRST_S * 1000 + SLACK_MS
    assert tts.texts == ["Paris is the capital."] and tts.chunks == 1 and tts.stops[0].is_set()
    spans = turn.end_of_turn_ms + turn.stt_wait_ms + turn.llm_first_clause_ms + turn.tts_first_audio_ms
    assert turn.voice_to_voice_ms == pytest.approx(spans, abs=0.5)


def test_an_unspeakable_first_piece_is_passed_over_to_the_next(monkeypatch: pytest.MonkeyPatch) -> None:
    turn, _, llm, tts = run_turn(monkeypatch, UNSPEAKABLE_FIRST)
    assert turn.first_clause == "Paris is the capital."
    assert tts.texts == ["Paris is the capital."] and tts.chunks == 1  # "(*)," went to TTS and made no audio
    assert llm.pulled == [9] and llm.cancels[0].is_set()
    spans = turn.end_of_turn_ms + turn.stt_wait_ms + turn.llm_first_clause_ms + turn.tts_first_audio_ms
    assert turn.voice_to_voice_ms == pytest.approx(spans, abs=0.5)


def test_a_reply_started_at_the_pause_is_heard_when_the_turn_ends(monkeypatch: pytest.MonkeyPatch) -> None:
    """The decode at the pause is back 256 ms before the turn ends: the reply starts then, held until the end."""
    monkeypatch.setenv("S2S_GATEWAY_SPECULATIVE_REPLY", "true")  # off by default for now
    turn, stt, llm, tts = run_turn(monkeypatch, SPOKEN, stt_s=0.02)
    assert len(stt.calls) == 1 and llm.pulled == [5]
    assert tts.texts == ["Paris is the capital."] and tts.stops[0].is_set()  # it went on while held, as the service's
    assert (turn.first_clause, turn.stt_wait_ms) == ("Paris is the capital.", 0.0)
    # LLM and TTS took ~150 ms of the 256: the held audio goes out the moment the turn ends.
    assert turn.end_of_turn_ms <= turn.voice_to_voice_ms < turn.end_of_turn_ms + SLACK_MS
