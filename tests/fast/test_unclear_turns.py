"""Transcripts nobody likely said (low confidence) are answered with a request to repeat, not by the LLM."""

from __future__ import annotations

from typing import Any

import pytest

from services.common.messages import (
    LlmGenerate,
    SttCommit,
    SttFinal,
    TtsSpeak,
    VadPause,
    VadSpeechStarted,
    VadSpeechStopped,
)
from tests.fast.test_turn_machine import Driver, event, sent, spoken_turn, types


@pytest.mark.parametrize("speculate", [False, True])
def test_a_transcript_nobody_likely_said_is_answered_with_a_request_to_repeat(speculate: bool) -> None:
    d = Driver()
    d.audio(4000)
    d.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    mumbled: dict[str, Any] = {
        "text": "Gawaa gawaaa gawaa.",
        "language": "en",
        "audio_ms": 1500,
        "decode_ms": 80,
        "avg_logprob": -1.4,
    }
    if speculate:  # the decode at the pause is just as unclear: no reply is prepared from it
        (speculative,) = sent(d.stage("vad", VadPause(end_ms=2000)), SttCommit)
        assert not sent(d.stage("stt", SttFinal(request_id=speculative.request_id, **mumbled)), LlmGenerate)
    out = d.stage("vad", VadSpeechStopped(end_ms=2300, voice_end_ms=2000, detected_ms=2500))
    if not speculate:
        (commit,) = sent(out, SttCommit)
        out = d.stage("stt", SttFinal(request_id=commit.request_id, **mumbled))
    completed = event(out, "conversation.item.input_audio_transcription.completed")
    assert completed.transcript == "Gawaa gawaaa gawaa."  # the client still sees what was heard
    assert "response.created" in types(out)
    assert not sent(d.log, LlmGenerate)  # nothing was asked of the LLM
    assert " ".join(p.text for p in sent(out, TtsSpeak)) == "Sorry, I didn't catch that. Could you say it again?"


def test_a_confident_transcript_is_answered_and_a_backend_without_scores_is_trusted():
    d = Driver()
    spoken_turn(d)  # SttFinal without scores
    d2 = Driver()
    d2.audio(3000)
    d2.stage("vad", VadSpeechStarted(start_ms=500, voice_start_ms=600))
    (commit,) = sent(d2.stage("vad", VadSpeechStopped(end_ms=2300, voice_end_ms=2000, detected_ms=2500)), SttCommit)
    final = SttFinal(
        request_id=commit.request_id, text="Okay.", language="en", audio_ms=900, decode_ms=60, avg_logprob=-0.9
    )
    assert sent(d2.stage("stt", final), LlmGenerate)
