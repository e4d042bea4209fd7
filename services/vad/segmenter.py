"""Turns per-chunk speech probabilities into speech started / pause / stopped events (stream time)."""

from __future__ import annotations

from dataclasses import dataclass

from services.common.messages import (
    Message,
    VadPause,
    VadSpeechStarted,
    VadSpeechStopped,
)


@dataclass
class SegmenterConfig:
    threshold: float
    min_silence_ms: int
    speech_pad_ms: int
    pause_ms: int = 0
    min_speech_ms: int = 0

    @property
    def release_threshold(self) -> float:
        # Hysteresis as in silero's own iterator: speech ends only well below the start threshold.
        return max(self.threshold - 0.15, 0.01)


class Segmenter:
    def __init__(self, config: SegmenterConfig) -> None:
        self.config = config
        self.speaking = False
        self._silence_start_ms: int | None = None
        self._paused = False
        self._candidate_start_ms: int | None = None  # voiced, but not yet long enough to count as speech

    def push(self, probability: float, chunk_start_ms: int, chunk_end_ms: int) -> list[Message]:
        cfg = self.config
        if not self.speaking:
            return self._maybe_start(probability, chunk_start_ms, chunk_end_ms)
        if probability >= cfg.threshold:
            self._silence_start_ms, self._paused = None, False
            return []
        if self._silence_start_ms is None:
            if probability >= cfg.release_threshold:
                return []
            self._silence_start_ms = chunk_start_ms
        silence_ms = chunk_end_ms - self._silence_start_ms
        events: list[Message] = []
        if cfg.pause_ms and not self._paused and silence_ms >= cfg.pause_ms:
            self._paused = True
            events.append(VadPause(end_ms=self._silence_start_ms))
        if silence_ms >= cfg.min_silence_ms:
            self.speaking = False
            end_ms = min(self._silence_start_ms + cfg.speech_pad_ms, chunk_end_ms)
            events.append(VadSpeechStopped(end_ms=end_ms, voice_end_ms=self._silence_start_ms, detected_ms=chunk_end_ms))
            self._silence_start_ms = None
        return events

    def _maybe_start(self, probability: float, chunk_start_ms: int, chunk_end_ms: int) -> list[Message]:
        # Speech counts once it has lasted min_speech_ms: a cough or a click must not start a turn or cut a reply.
        cfg = self.config
        if self._candidate_start_ms is None:
            if probability < cfg.threshold:
                return []
            self._candidate_start_ms = chunk_start_ms
        elif probability < cfg.release_threshold:
            self._candidate_start_ms = None
            return []
        if chunk_end_ms - self._candidate_start_ms < max(cfg.min_speech_ms, 1):
            return []
        start_ms, self._candidate_start_ms = self._candidate_start_ms, None
        self.speaking = True
        self._silence_start_ms, self._paused = None, False
        return [VadSpeechStarted(start_ms=max(0, start_ms - cfg.speech_pad_ms), voice_start_ms=start_ms)]
