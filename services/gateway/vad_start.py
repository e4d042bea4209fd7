"""The VAD stream a session asks for: its turn detection settings as a ``vad.start`` (the VAD fills in the rest)."""

from __future__ import annotations

from services.common import realtime as rt
from services.common.messages import VadStart
from services.gateway.stream_time import STAGE_RATE


def vad_start(turn_detection: rt.TurnDetection | None, pause_ms: int) -> VadStart:
    """``pause_ms``: the gateway's speculative pause, sent only when it comes before the turn's end silence."""
    td = turn_detection
    if td is None:
        return VadStart(sample_rate=STAGE_RATE)
    # semantic_vad: the VAD's end-of-turn model decides how long to wait, not a fixed silence.
    return VadStart(
        sample_rate=STAGE_RATE,
        threshold=td.threshold,
        min_silence_ms=None if td.type == "semantic_vad" else td.silence_duration_ms,
        speech_pad_ms=td.prefix_padding_ms,
        pause_ms=pause_ms if pause_ms and pause_ms < (td.silence_duration_ms or 10_000) else 0,
    )
