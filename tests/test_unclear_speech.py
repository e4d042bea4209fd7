"""Speech nobody can make out gets a request to repeat, never an answer to a question nobody asked (real stack)."""

from __future__ import annotations

import asyncio

import numpy as np

from client.file_client import talk
from services.gateway.settings import GatewaySettings
from tests.speech import read_pcm16, speak
from tests.transcribe import transcribe, words

REPEAT_REQUEST = GatewaySettings().repeat_request


def test_mumbling_gets_a_request_to_repeat(stack, tmp_path):
    # Speech played backwards sounds like words in no language: Whisper base writes a sentence for it anyway ("Well,
    # the episode is now in ember."), with a mean token log-probability of about -1.3.
    pcm, rate = read_pcm16(speak("How many legs does a spider have?", tmp_path / "forwards.wav"))
    samples = np.frombuffer(pcm, dtype="<i2")[::-1]
    pcm = samples.tobytes()
    turn = asyncio.run(talk(stack.url, None, pcm, rate, realtime=True, timeout_s=90))
    assert turn.errors == [] and turn.status == "completed", (turn.errors, turn.status)
    assert turn.user_text, "the client still sees what was heard"
    assert turn.reply_text == REPEAT_REQUEST, (turn.user_text, turn.reply_text)
    heard = set(words(transcribe(bytes(turn.reply_audio), turn.output_rate)))
    assert {"say", "again"} <= heard, heard  # what the user hears asks them to repeat


def test_noise_before_a_question_is_not_answered_as_if_someone_spoke(stack, tmp_path):
    rng = np.random.default_rng(7)
    noise = (rng.normal(0, 0.15, 16000 * 2) * 32767).clip(-32768, 32767).astype("<i2").tobytes()
    question, rate = read_pcm16(speak("What is the capital of France?", tmp_path / "q.wav"))
    assert rate == 16000
    turn = asyncio.run(talk(stack.url, None, noise + question, rate, realtime=True, timeout_s=90))
    assert turn.errors == [], turn.errors
    # The first turn the gateway makes of this audio: the noise ignored (the question answered), the noise heard as
    # nothing (no reply), or the noise heard as mumbling (a request to repeat). Never an invented answer.
    if "france" in words(turn.user_text):
        assert "paris" in words(turn.reply_text), (turn.user_text, turn.reply_text)
    else:
        assert turn.reply_text in ("", REPEAT_REQUEST), (turn.user_text, turn.reply_text)
