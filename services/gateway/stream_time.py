"""One owner of stream time: the gateway's clock of input audio, and where each stage's own clock starts on it.

VAD and STT count milliseconds of the audio they received since their ``*.start``. When one of them reconnects, its
count restarts at 0 while the other's goes on; mapping both onto the gateway's clock (which never restarts within a
session) keeps their times comparable: a VAD turn boundary names the same audio in the STT's buffer.
"""

from __future__ import annotations

from typing import Literal

STAGE_RATE = 16000  # VAD and STT take 16 kHz PCM16 mono

AudioStage = Literal["vad", "stt"]


class StreamClock:
    def __init__(self) -> None:
        self.now_ms = 0.0  # input audio sent to the stages so far
        self._origin_ms: dict[str, int] = {"vad": 0, "stt": 0}

    def advance(self, n_bytes: int) -> float:
        """``n_bytes`` more of 16 kHz PCM16 were sent; returns the new stream time."""
        self.now_ms += n_bytes / 2 / STAGE_RATE * 1000.0
        return self.now_ms

    def stage_started(self, stage: AudioStage) -> None:
        """The stage's stream (re)starts now: its 0 is the gateway's ``now_ms`` (whole ms, so that mapping a time
        there and back gives the same time; half a millisecond is far below what a stage can resolve)."""
        self._origin_ms[stage] = round(self.now_ms)

    def from_stage(self, stage: AudioStage, stage_ms: int) -> int:
        return stage_ms + self._origin_ms[stage]

    def to_stage(self, stage: AudioStage, gateway_ms: float) -> int:
        """Audio from before the stage's stream began is not in it: such times clamp to its start."""
        return max(0, round(gateway_ms - self._origin_ms[stage]))
