"""Semantic end of turn with real models: silero VAD + Smart Turn v3.2, on espeak speech, through the VAD service.

Questions with a pause in the middle are made the way a hesitation sounds: the whole sentence is spoken at once (so
its intonation runs on), then silence is spliced in at the phrase boundary marked ``|``.

Run as a module for the measurement in docs/performance.md ("End of turn"), both modes side by side:
``.venv/bin/python -m tests.test_end_of_turn [--questions 24] [--voices 3]``.
"""

from __future__ import annotations

import argparse
import io
import json
import subprocess
import time

import numpy as np
import pytest
import soundfile as sf
import soxr
import websockets

from services.common.messages import VadSpeechStarted, VadSpeechStopped
from services.vad.segmenter import Segmenter, SegmenterConfig
from services.vad.smart_turn import log_mel, window_for_model
from tests.procs import free_port, service_process
from tests.speech import voiced_span_ms
from tests.test_vad import collect_events

RATE = 16000
# The test sentence: Smart Turn calls it complete (p >= 0.92) and its first half incomplete (p <= 0.03), measured on
# en-us at 140/150/160 wpm, word gaps 30/50 ms and 200-260 ms of trailing silence: far from the 0.5 threshold.
SENTENCE = "What time does | the museum open tomorrow?"
PAUSE_MS = 150  # the gateway's speculative pause (S2S_GATEWAY_SPECULATIVE_PAUSE_MS)
COMPLETE_SILENCE_MS = 160  # S2S_VAD_TURN_COMPLETE_SILENCE_MS's default
VAD_LAG_MS = 100  # silero's lag after the last voiced sample on espeak speech: median ≈50 ms, p95 ≈90 ms (measured)

QUESTIONS = [
    "What is the capital | of France?",
    "How many legs | does a spider have?",
    "Who wrote | the play Romeo and Juliet?",
    "What is the boiling point | of water?",
    "Can you tell me | a joke about cats?",
    "How far is the moon | from the earth?",
    "Which planet is | closest to the sun?",
    "What time does | the museum open tomorrow?",
    "Why is the sky | blue during the day?",
    "How do I make | a cup of green tea?",
    "What is the tallest | mountain in the world?",
    "Who painted | the Mona Lisa?",
    "Where do penguins | live in the wild?",
    "How long does it take | to boil an egg?",
    "What language do they speak | in Brazil?",
    "Could you recommend | a good book about history?",
    "When did the first man | walk on the moon?",
    "What is the largest | ocean on our planet?",
    "How many days | are there in a leap year?",
    "Which country has | the most people?",
    "What should I cook | for dinner tonight?",
    "Is it going to rain | in London this weekend?",
    "What is the square root | of one hundred and forty four?",
    "How do airplanes | stay in the air?",
]
VOICES = [("en-us", 150), ("en-gb", 170), ("en+f3", 140), ("en-us", 185), ("en-gb", 135), ("en+f3", 165)]
PAUSES_MS = [300, 400, 500, 600, 700]


# --------------------------------------------------------------------------- speech


def espeak(text: str, voice: str = "en-us", wpm: int = 150, word_gap: int = 3) -> np.ndarray:
    """16 kHz float32 speech, trimmed to its first and last audible sample."""
    cmd = ["espeak-ng", "-v", voice, "-s", str(wpm), "-g", str(word_gap), "--stdout", text]
    wav = subprocess.run(cmd, check=True, capture_output=True).stdout
    audio, rate = sf.read(io.BytesIO(wav), dtype="float32")
    return _trim(soxr.resample(audio, rate, RATE).astype(np.float32))


def _trim(audio: np.ndarray, floor: float = 0.01) -> np.ndarray:
    loud = np.flatnonzero(np.abs(audio) > floor)
    return audio[loud[0] : loud[-1] + 1]


def _quiet_runs(audio: np.ndarray, floor: float = 0.01, min_samples: int = 160) -> list[tuple[int, int]]:
    quiet = np.concatenate([[False], np.abs(audio) <= floor, [False]])
    edges = np.flatnonzero(np.diff(quiet.astype(np.int8)))
    return [(int(a), int(b)) for a, b in zip(edges[::2], edges[1::2], strict=True) if b - a >= min_samples]


def complete_question(text: str, voice: str = "en-us", wpm: int = 150) -> np.ndarray:
    return espeak(text.replace(" |", ""), voice, wpm)


def question_with_pause(text: str, pause_ms: int, voice: str = "en-us", wpm: int = 150) -> tuple[np.ndarray, int]:
    """The whole sentence with ``pause_ms`` of silence at the word boundary ``|``; also where the pause starts.

    The boundary is the quiet gap between words nearest to where the first half, spoken alone, ends (less 100 ms:
    alone, its last word is drawn out)."""
    full = complete_question(text, voice, wpm)
    first_half = espeak(text.split("|")[0].strip(), voice, wpm)
    gap = min(_quiet_runs(full), key=lambda run: abs((run[0] + run[1]) / 2 - (len(first_half) - RATE // 10)))
    cut = (gap[0] + gap[1]) // 2
    head, tail = _trim(full[:cut]), _trim(full[cut:])
    return np.concatenate([head, np.zeros(pause_ms * RATE // 1000, np.float32), tail]), len(head)


def pcm16(audio: np.ndarray, lead_ms: int = 1000, tail_ms: int = 1500) -> bytes:
    padded = np.concatenate([np.zeros(lead_ms * 16, np.float32), audio, np.zeros(tail_ms * 16, np.float32)])
    return (np.clip(padded, -1.0, 1.0) * 32767).astype("<i2").tobytes()


# --------------------------------------------------------------------------- tests


@pytest.fixture(scope="module")
def smart_url():
    port = free_port()
    with service_process("services.vad", port, {"S2S_VAD_PORT": str(port), "S2S_VAD_END_OF_TURN": "smart"}):
        yield f"ws://127.0.0.1:{port}/v1/vad"


@pytest.fixture(scope="module")
def silence_url():
    port = free_port()
    with service_process("services.vad", port, {"S2S_VAD_PORT": str(port), "S2S_VAD_END_OF_TURN": "silence"}):
        yield f"ws://127.0.0.1:{port}/v1/vad"


async def vad_events(url: str, pcm: bytes, **start: int) -> list[dict]:
    async with websockets.connect(url) as ws:
        await ws.send(json.dumps({"type": "vad.start", "sample_rate": RATE, "pause_ms": PAUSE_MS, **start}))
        return await collect_events(ws, pcm)


def test_log_mel_matches_transformers_whisper_features():
    """The numpy log-mel is what pipecat feeds the model: transformers' WhisperFeatureExtractor(chunk_length=8)."""
    transformers = pytest.importorskip("transformers")
    extractor = transformers.WhisperFeatureExtractor(chunk_length=8)
    speech = complete_question("What time does the museum open tomorrow?")
    for audio in (speech, np.tile(speech, 5), np.random.default_rng(0).standard_normal(3000).astype(np.float32)):
        window = window_for_model(audio)
        assert len(window) == 8 * RATE and np.all(window[: max(0, 8 * RATE - len(audio))] == 0)  # padded at the start
        expected = extractor(window, sampling_rate=RATE, do_normalize=True, return_tensors="np").input_features[0]
        ours = log_mel(window)
        assert ours.shape == expected.shape == (80, 800)
        assert np.abs(ours - expected).max() < 1e-4


async def test_complete_question_ends_the_turn_early(smart_url):
    pcm = pcm16(complete_question(SENTENCE))
    last_ms = voiced_span_ms(pcm, RATE)[1]
    events = await vad_events(smart_url, pcm)
    assert [e["type"] for e in events] == ["vad.speech_started", "vad.pause", "vad.speech_stopped"], events
    _, pause, stopped = events
    assert pause["end_of_turn"] >= 0.5, pause  # the model's answer (≈0.9) rides on the pause
    assert stopped["detected_ms"] - stopped["voice_end_ms"] <= COMPLETE_SILENCE_MS  # the VAD's silence count
    assert stopped["voice_end_ms"] - last_ms <= VAD_LAG_MS, (stopped, last_ms)  # silero's own lag
    assert stopped["detected_ms"] - last_ms <= 250 + VAD_LAG_MS, (stopped, last_ms)


@pytest.mark.parametrize("pause_ms", [300, 700])
async def test_mid_sentence_pause_does_not_end_the_turn(smart_url, pause_ms):
    audio, pause_at = question_with_pause(SENTENCE, pause_ms)
    pcm = pcm16(audio)
    pause_start, pause_end = 1000 + pause_at / 16, 1000 + pause_at / 16 + pause_ms
    events = await vad_events(smart_url, pcm)
    kinds = [e["type"] for e in events]
    assert kinds == ["vad.speech_started", "vad.pause", "vad.speech_resumed", "vad.pause", "vad.speech_stopped"], events
    _, mid_pause, resumed, end_pause, stopped = events
    assert mid_pause["end_of_turn"] < 0.5 and pause_start <= mid_pause["end_ms"] <= pause_start + VAD_LAG_MS
    assert pause_end <= resumed["start_ms"] <= pause_end + 100, (resumed, pause_end)
    assert end_pause["end_of_turn"] >= 0.5
    assert stopped["voice_end_ms"] >= voiced_span_ms(pcm, RATE)[1]  # the turn ends after the question, not before


async def test_the_streams_silence_caps_the_wait_in_smart_mode(smart_url):
    """vad.start's min_silence_ms (the client's silence_duration_ms) is the longest a smart turn waits: an incomplete
    turn ends there, as the client asked."""
    audio, _ = question_with_pause(SENTENCE, 600)
    events = await vad_events(smart_url, pcm16(audio), min_silence_ms=300)
    kinds = [e["type"] for e in events]
    assert kinds[:3] == ["vad.speech_started", "vad.pause", "vad.speech_stopped"], events
    assert events[1]["end_of_turn"] < 0.5
    assert events[2]["detected_ms"] - events[2]["voice_end_ms"] in range(300, 300 + 32)


def test_the_model_is_asked_at_the_pause_and_again_as_the_silence_grows():
    """The decision rule itself, with scripted answers: incomplete at the pause, complete at the second re-ask."""
    asked: list[tuple[int, int]] = []
    answers = iter([0.1, 0.3, 0.8])

    def ask(start_ms: int, end_ms: int) -> float:
        asked.append((start_ms, end_ms))
        return next(answers)

    config = SegmenterConfig(0.5, 400, 300, pause_ms=96, end_of_turn="smart", complete_silence_ms=160, recheck_ms=128)
    segmenter = Segmenter(config, ask)
    events = [e for t in range(0, 640, 32) for e in segmenter.push(0.9, t, t + 32)]  # 640 ms of speech
    assert events == [VadSpeechStarted(start_ms=0, voice_start_ms=0)]
    stopped = None
    for t in range(640, 2000, 32):
        events = segmenter.push(0.0, t, t + 32)
        if events and isinstance(events[-1], VadSpeechStopped):
            stopped = events[-1]
            break
    silence_start = 640
    assert asked == [(0, silence_start + 96), (0, silence_start + 96 + 128), (0, silence_start + 96 + 256)]
    assert stopped is not None and stopped.detected_ms == silence_start + 96 + 256  # complete, past 160 ms: ends now
    assert not segmenter.speaking


async def test_silence_mode_keeps_the_fixed_silence(silence_url):
    pcm = pcm16(complete_question(SENTENCE))
    events = await vad_events(silence_url, pcm)  # the service's min_silence_ms: 400
    assert [e["type"] for e in events] == ["vad.speech_started", "vad.pause", "vad.speech_stopped"], events
    assert events[1].get("end_of_turn") is None  # no model asked
    stopped = events[2]
    assert stopped["detected_ms"] - stopped["voice_end_ms"] in range(400, 400 + 32)
    # ... and a 600 ms pause in the middle ends the turn there, as before.
    audio, _ = question_with_pause(SENTENCE, 600)
    kinds = [e["type"] for e in await vad_events(silence_url, pcm16(audio))]
    assert kinds[:3] == ["vad.speech_started", "vad.pause", "vad.speech_stopped"]
    assert kinds.count("vad.speech_started") == 2


# --------------------------------------------------------------------------- measurement (python -m)


def measure(questions: int, voices: int, thresholds: list[float]) -> dict:
    """Complete questions: silence after the last voiced sample until vad.speech_stopped (stream time). Questions
    with a 300-700 ms pause: how many are cut there. Both modes, real models, in process."""
    from services.common.messages import VadStart
    from services.vad.app import VadStreamSession, config_for
    from services.vad.backends.silero import SileroModel
    from services.vad.settings import VadSettings
    from services.vad.smart_turn import SmartTurnModel

    vad, turn = SileroModel(), SmartTurnModel()
    calls: list[float] = []

    class Timed:
        def probability(self, audio: np.ndarray) -> float:
            began = time.perf_counter()
            p = turn.probability(audio)
            calls.append(time.perf_counter() - began)
            return p

    def stops(audio: np.ndarray, mode: str, threshold: float) -> list[VadSpeechStopped]:
        settings = VadSettings(end_of_turn=mode, turn_threshold=threshold)  # type: ignore[arg-type]
        config = config_for(settings, VadStart(pause_ms=PAUSE_MS))
        session = VadStreamSession(vad, config, Timed() if mode == "smart" else None)  # type: ignore[arg-type]
        samples = np.frombuffer(pcm16(audio), "<i2").astype(np.float32) / 32768.0
        return [e for e in session.feed(samples) if isinstance(e, VadSpeechStopped)]

    clips = []
    for round_ in range(voices):
        for i, text in enumerate(QUESTIONS[:questions]):
            voice, wpm = VOICES[(i + 2 * round_) % len(VOICES)]
            pause_ms = PAUSES_MS[(i + round_) % len(PAUSES_MS)]
            clips.append(
                (
                    text,
                    voice,
                    wpm,
                    complete_question(text, voice, wpm),
                    pause_ms,
                    *question_with_pause(text, pause_ms, voice, wpm),
                )
            )
    result: dict = {"complete": len(clips), "mid": len(clips)}
    for mode, threshold in [*(("smart", threshold) for threshold in thresholds), ("silence", 0.5)]:
        calls.clear()
        silences, recognised, cut, early = [], [], 0, 0
        for _text, _voice, _wpm, whole, pause_ms, spliced, pause_at in clips:
            last_ms = 1000 + len(whole) / 16
            ended = stops(whole, mode, threshold)
            silence = ended[-1].detected_ms - last_ms
            silences.append(silence)
            if ended[-1].detected_ms - ended[-1].voice_end_ms <= COMPLETE_SILENCE_MS + 32:
                recognised.append(silence)  # ended as a complete turn
            early += len(ended) > 1  # a complete question cut at a gap between its words
            pause_end = 1000 + (pause_at / 16) + pause_ms
            cut += any(s.voice_end_ms < pause_end for s in stops(spliced, mode, threshold))
        result[f"smart {threshold}" if mode == "smart" else mode] = {
            "silence_p50_ms": float(np.percentile(silences, 50)),
            "silence_p95_ms": float(np.percentile(silences, 95)),
            "within_250_ms": sum(s <= 250 for s in silences),
            "recognised_p50_ms": float(np.percentile(recognised, 50)) if recognised else None,
            "recognised_p95_ms": float(np.percentile(recognised, 95)) if recognised else None,
            "complete_split": early,
            "cut": cut,
            "model_calls": len(calls),
            "model_ms_p50": float(np.percentile(calls, 50) * 1000) if calls else None,
            "model_ms_p95": float(np.percentile(calls, 95) * 1000) if calls else None,
        }
    return result


if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--questions", type=int, default=len(QUESTIONS))
    parser.add_argument("--voices", type=int, default=3, help="rounds over the questions, each in other voices")
    parser.add_argument("--thresholds", default="0.5", help="smart mode's turn thresholds to try, comma-separated")
    args = parser.parse_args()
    print(json.dumps(measure(args.questions, args.voices, [float(x) for x in args.thresholds.split(",")]), indent=2))
