"""Turns per-chunk speech probabilities into speech started / pause / resumed / stopped events (stream time).

Two ways to end a turn (``SegmenterConfig.end_of_turn``):

- ``silence``: the turn ends once the silence reaches ``min_silence_ms``.
- ``smart``: when the silence reaches ``check_ms`` the end-of-turn model (Smart Turn) is asked whether the utterance so
  far is a complete turn. Complete (probability >= ``turn_threshold``): the turn ends at ``complete_silence_ms``.
  Incomplete: the segmenter keeps listening, asks again every ``recheck_ms`` of further silence, and ends the turn at
  ``incomplete_silence_ms`` whatever the model says.

Silence is counted from the first chunk the VAD scores below its release threshold, so every figure here comes on top
of the VAD's own lag after the last voiced sample (silero on espeak speech: median ≈50 ms, p95 ≈90 ms).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from services.common.messages import (
    Message,
    VadPause,
    VadSpeechResumed,
    VadSpeechStarted,
    VadSpeechStopped,
)

EndOfTurnMode = Literal["smart", "silence"]
# (turn start, now) in stream ms -> probability that the utterance in between is a complete turn.
AskTurn = Callable[[int, int], float]


@dataclass
class SegmenterConfig:
    threshold: float
    min_silence_ms: int
    speech_pad_ms: int
    pause_ms: int = 0
    min_speech_ms: int = 0
    end_of_turn: EndOfTurnMode = "silence"
    turn_threshold: float = 0.5
    complete_silence_ms: int = 160
    incomplete_silence_ms: int = 1000
    recheck_ms: int = 0  # 0: the model is asked once per pause

    @property
    def release_threshold(self) -> float:
        # Hysteresis as in silero's own iterator: speech ends only well below the start threshold.
        return max(self.threshold - 0.15, 0.01)

    @property
    def check_ms(self) -> int:
        """Silence at which the model is first asked: the pause hint's, if it comes first (its message carries the
        answer), else the earliest moment a complete turn may end."""
        return min(self.pause_ms, self.complete_silence_ms) if self.pause_ms else self.complete_silence_ms


class Segmenter:
    def __init__(self, config: SegmenterConfig, ask_turn: AskTurn | None = None) -> None:
        if config.end_of_turn == "smart" and ask_turn is None:
            raise ValueError("end_of_turn 'smart' needs an end-of-turn model")
        self.config = config
        self._ask_turn = ask_turn
        self.speaking = False
        self.turn_start_ms = 0
        self.end_of_turn: float | None = None  # the model's latest answer within this silence
        self._silence_start_ms: int | None = None
        self._paused = False
        self._next_check_ms: int | None = None  # silence at which the model is asked next
        self._candidate_start_ms: int | None = None  # voiced, but not yet long enough to count as speech
        # A candidate that fell silent before min_speech_ms: (its start, when it fell). A short first word ("Who",
        # "Which") followed by the gap before the next one; if speech comes back soon, the turn starts at that word.
        self._dropped: tuple[int, int] | None = None

    def push(self, probability: float, chunk_start_ms: int, chunk_end_ms: int) -> list[Message]:
        cfg = self.config
        if not self.speaking:
            return self._maybe_start(probability, chunk_start_ms, chunk_end_ms)
        if probability >= cfg.threshold:
            resumed = self._paused
            self._reset_silence()
            return [VadSpeechResumed(start_ms=chunk_start_ms)] if resumed else []
        if self._silence_start_ms is None:
            if probability >= cfg.release_threshold:
                return []
            self._silence_start_ms = chunk_start_ms
            self._next_check_ms = cfg.check_ms if cfg.end_of_turn == "smart" else None
        silence_ms = chunk_end_ms - self._silence_start_ms
        if self._next_check_ms is not None and silence_ms >= self._next_check_ms:
            assert self._ask_turn is not None
            self.end_of_turn = self._ask_turn(self.turn_start_ms, chunk_end_ms)
            self._next_check_ms = silence_ms + cfg.recheck_ms if cfg.recheck_ms else None
        events: list[Message] = []
        if cfg.pause_ms and not self._paused and silence_ms >= cfg.pause_ms:
            self._paused = True
            events.append(VadPause(end_ms=self._silence_start_ms, end_of_turn=self.end_of_turn))
        if silence_ms >= self._silence_needed():
            self.speaking = False
            end_ms = min(self._silence_start_ms + cfg.speech_pad_ms, chunk_end_ms)
            events.append(
                VadSpeechStopped(end_ms=end_ms, voice_end_ms=self._silence_start_ms, detected_ms=chunk_end_ms)
            )
            self._reset_silence()
        return events

    def _silence_needed(self) -> int:
        cfg = self.config
        if cfg.end_of_turn == "silence":
            return cfg.min_silence_ms
        if self.end_of_turn is not None and self.end_of_turn >= cfg.turn_threshold:
            return cfg.complete_silence_ms
        return cfg.incomplete_silence_ms

    def _reset_silence(self) -> None:
        self._silence_start_ms, self._paused = None, False
        self._next_check_ms, self.end_of_turn = None, None

    def _maybe_start(self, probability: float, chunk_start_ms: int, chunk_end_ms: int) -> list[Message]:
        # Speech counts once it has lasted min_speech_ms: a cough or a click must not start a turn or cut a reply.
        cfg = self.config
        if self._candidate_start_ms is None:
            if self._dropped is not None and chunk_start_ms - self._dropped[1] > cfg.speech_pad_ms:
                self._dropped = None  # silent too long since: not this speech's first word
            if probability < cfg.threshold:
                return []
            self._candidate_start_ms = chunk_start_ms
        elif probability < cfg.release_threshold:
            first = self._dropped[0] if self._dropped is not None else self._candidate_start_ms
            self._dropped, self._candidate_start_ms = (first, chunk_start_ms), None
            return []
        if chunk_end_ms - self._candidate_start_ms < max(cfg.min_speech_ms, 1):
            return []
        start_ms, self._candidate_start_ms = self._candidate_start_ms, None
        if self._dropped is not None:
            start_ms, self._dropped = min(start_ms, self._dropped[0]), None
        self.speaking = True
        self._reset_silence()
        self.turn_start_ms = max(0, start_ms - cfg.speech_pad_ms)
        return [VadSpeechStarted(start_ms=self.turn_start_ms, voice_start_ms=start_ms)]
