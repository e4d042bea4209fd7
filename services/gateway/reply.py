"""One assistant reply in flight: its text pieces, audio sent, timings. Pure bookkeeping, no I/O."""

from __future__ import annotations

import time
from dataclasses import dataclass, field

from services.common.audio import StreamResampler
from services.gateway.chunking import ClauseChunker


@dataclass
class TurnClock:
    """Wall-clock marks of one turn (perf_counter seconds); durations derive from them."""

    marks: dict[str, float] = field(default_factory=dict)
    service_ms: dict[str, float] = field(default_factory=dict)  # compute time the stages report for themselves

    def mark(self, name: str, at: float | None = None) -> None:
        self.marks.setdefault(name, time.perf_counter() if at is None else at)

    def between(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return (self.marks[end] - self.marks[start]) * 1000.0
        return None

    def report(self) -> dict[str, float]:
        spans = {
            "end_of_turn_ms": ("last_voice", "speech_stopped"),
            "stt_final_ms": ("stt_commit", "stt_final"),
            "stt_wait_ms": ("speech_stopped", "stt_final"),
            "llm_first_clause_ms": ("llm_request", "tts_first_request"),
            "llm_ttft_ms": ("llm_request", "llm_first_token"),
            "tts_first_audio_ms": ("tts_first_request", "tts_first_audio"),
            "voice_to_voice_ms": ("last_voice", "first_audio_sent"),
            "response_first_audio_ms": ("response_start", "first_audio_sent"),
            "llm_done_ms": ("response_start", "llm_done"),
        }
        out = {}
        for name, (start, end) in spans.items():
            value = self.between(start, end)
            if value is not None:
                out[name] = round(value, 1)
        out.update({name: round(value, 1) for name, value in self.service_ms.items()})
        return out


@dataclass
class Reply:
    response_id: str
    item_id: str
    output_rate: int
    clock: TurnClock
    chunker: ClauseChunker = field(default_factory=ClauseChunker)
    pieces: list[str] = field(default_factory=list)
    pieces_done: int = 0
    pieces_started: int = 0
    text: str = ""
    llm_done: bool = False
    closed: bool = False
    audio_bytes_sent: int = 0
    resampler: StreamResampler | None = None
    playing_piece: int | None = None
    piece_audio_ms: list[float] = field(default_factory=list)  # audio sent when each piece ended
    progress: int = 0  # LLM and TTS messages received: a watchdog sees whether the stages still answer

    def tts_request_id(self, index: int) -> str:
        return f"{self.response_id}/{index}"

    def piece_index(self, tts_request_id: str) -> int | None:
        prefix, _, index = tts_request_id.rpartition("/")
        return int(index) if prefix == self.response_id and index.isdigit() else None

    @property
    def finished(self) -> bool:
        return self.llm_done and self.pieces_done >= len(self.pieces)

    @property
    def audio_ms_sent(self) -> float:
        return self.audio_bytes_sent / 2 / self.output_rate * 1000.0

    def started_pieces(self) -> tuple[list[str], list[float]]:
        """Pieces whose audio reached the client, with the audio position where each ended (or where it stopped)."""
        ends = list(self.piece_audio_ms[: self.pieces_started])
        if len(ends) < self.pieces_started:
            ends.append(self.audio_ms_sent)
        return self.pieces[: len(ends)], ends

    def heard_ms(self, now: float) -> float:
        """What the client can have played by ``now``: it plays in real time from the first audio delta."""
        first = self.clock.marks.get("first_audio_sent")
        if first is None:
            return 0.0
        return min(self.audio_ms_sent, max(0.0, (now - first) * 1000.0))
