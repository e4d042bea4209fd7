"""End to end through the real stack: a spoken question in, a spoken answer out."""

from __future__ import annotations

import asyncio
import re

import httpx
import pytest

from client.file_client import talk
from tests.speech import read_pcm16, speak
from tests.transcribe import transcribe, words

# An earlier exchange, added as conversation items: it shows the small model the wanted answer style (the answer, then
# a sentence about it), so the reply is long enough for streaming to be observable.
EARLIER_TURN = [
    ("user", "What is the capital of Italy?"),
    (
        "assistant",
        "The capital of Italy is Rome. Rome is famous for the Colosseum, and people have lived there for almost three thousand years.",
    ),
]


@pytest.fixture(scope="module")
def france_turn(stack, tmp_path_factory):
    wav = speak("What is the capital of France?", tmp_path_factory.mktemp("e2e") / "q.wav")
    pcm, rate = read_pcm16(wav)
    return asyncio.run(talk(stack.url, None, pcm, rate, realtime=True, timeout_s=90, history=EARLIER_TURN))


def test_user_transcript_and_reply_text(france_turn):
    assert france_turn.errors == []
    assert "capital of france" in " ".join(words(france_turn.user_text)), france_turn.user_text
    assert "paris" in words(france_turn.reply_text), france_turn.reply_text
    assert france_turn.status == "completed"


def test_reply_audio_speaks_the_reply_text(france_turn):
    audio = bytes(france_turn.reply_audio)
    assert len(audio) / 2 / france_turn.output_rate > 0.5
    heard = set(words(transcribe(audio, france_turn.output_rate)))
    said = set(words(france_turn.reply_text))
    common = heard & said
    assert len(common) >= max(2, len(said) // 3), (heard, said)


def test_first_audio_reaches_the_client_before_the_llm_finished(france_turn):
    first_audio = france_turn.first("response.output_audio.delta")
    timings = france_turn.server_timings
    assert first_audio is not None
    # Server-side: the first reply audio was sent before the LLM produced its last token — or, for a reply started at
    # a pause and held until the turn was sure, the moment it was released (it may have been made whole by then).
    first_ms = timings["response_first_audio_ms"]
    released_at_once = "reply_held_ms" in timings and first_ms <= timings["reply_held_ms"] + 50
    assert first_ms < timings["llm_done_ms"] or released_at_once, timings
    # Client-side: audio arrived before the reply's transcript was complete.
    assert first_audio < france_turn.last("response.output_audio_transcript.delta"), france_turn.timeline


def test_two_conversations_at_once_each_get_their_own_answer(stack, tmp_path):
    questions = {"france": "What is the capital of France?", "week": "How many days are in a week?"}
    clips = {key: read_pcm16(speak(text, tmp_path / f"{key}.wav")) for key, text in questions.items()}

    async def both():
        return await asyncio.gather(
            *(talk(stack.url, None, pcm, rate, realtime=True, timeout_s=120) for pcm, rate in clips.values())
        )

    france, week = asyncio.run(both())
    assert "france" in words(france.user_text) and "week" in words(week.user_text), (france.user_text, week.user_text)
    assert "paris" in words(france.reply_text), france.reply_text
    assert "paris" not in words(week.reply_text), week.reply_text
    assert france.status == week.status == "completed"


def test_turn_timings_reach_prometheus(stack, france_turn):
    metrics = httpx.get(f"{stack.http}/metrics").text
    for name in ("end_of_turn_delay", "stt_final", "llm_ttft", "tts_first_audio", "voice_to_voice"):
        count = re.search(rf"^s2s_{name}_seconds_count (\S+)$", metrics, re.M)
        assert count and float(count.group(1)) >= 1, name
