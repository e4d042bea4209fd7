"""One assistant reply in flight: its text pieces, the audio the client got, timings. Pure bookkeeping, no I/O."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common.audio import StreamResampler
from services.common.realtime_server import ResponseStatus, ServerEvent, StatusDetails
from services.gateway.chunking import ClauseChunker
from services.gateway.outputs import ReplyOutputs

SPANS = {
    "end_of_turn_ms": ("last_voice", "speech_stopped"),
    "stt_final_ms": ("stt_commit", "stt_final"),
    "stt_wait_ms": ("speech_stopped", "stt_final"),
    "llm_first_clause_ms": ("llm_request", "tts_first_request"),
    "llm_ttft_ms": ("llm_request", "llm_first_token"),
    "tts_first_audio_ms": ("tts_first_request", "first_audio_sent"),
    "voice_to_voice_ms": ("last_voice", "first_audio_sent"),
    "response_first_audio_ms": ("response_start", "first_audio_sent"),
    "llm_done_ms": ("response_start", "llm_done"),
    "reply_held_ms": ("response_start", "released"),  # a speculative reply: started, then held until the turn ended
}

REPLY_MARKS = (
    "response_start",
    "llm_request",
    "llm_first_token",
    "tts_first_request",
    "first_audio_sent",
    "llm_done",
    "released",
)
REPLY_SERVICE_MS = ("llm_service_ttft_ms", "tts_service_first_audio_ms")


@dataclass
class TurnClock:
    """Marks of one turn (perf_counter seconds, handed in by the caller); durations derive from them."""

    marks: dict[str, float] = field(default_factory=dict)
    service_ms: dict[str, float] = field(default_factory=dict)  # compute time the stages report for themselves

    def mark(self, name: str, at: float) -> None:
        """The first time ``name`` happened; later calls keep it."""
        self.marks.setdefault(name, at)

    def set(self, name: str, at: float) -> None:
        """``name`` happened (again) at ``at``: the latest one counts."""
        self.marks[name] = at

    def forget_reply(self) -> None:
        """A speculative reply of this turn was thrown away: the turn's next reply is timed afresh."""
        for name in REPLY_MARKS:
            self.marks.pop(name, None)
        for name in REPLY_SERVICE_MS:
            self.service_ms.pop(name, None)

    def between(self, start: str, end: str) -> float | None:
        if start in self.marks and end in self.marks:
            return (self.marks[end] - self.marks[start]) * 1000.0
        return None

    def report(self) -> dict[str, float]:
        out = {}
        for name, (start, end) in SPANS.items():
            value = self.between(start, end)
            if value is not None:
                out[name] = round(value, 1)
        out.update({name: round(value, 1) for name, value in self.service_ms.items()})
        return out


@dataclass
class Playback:
    """One reply's audio as the client gets it: what was sent, and what the client can have played by a time.

    Clients play in real time from the first delta, so by ``now`` at most ``now - first_sent_at`` can have been heard;
    a client that knows better says so with ``conversation.item.truncate``.
    """

    item_id: str
    output_rate: int
    bytes_sent: int = 0
    first_sent_at: float | None = None

    def sent(self, n_bytes: int, now: float) -> None:
        if self.first_sent_at is None:
            self.first_sent_at = now
        self.bytes_sent += n_bytes

    @property
    def sent_ms(self) -> float:
        return self.bytes_sent / 2 / self.output_rate * 1000.0

    def heard_ms(self, now: float) -> float:
        if self.first_sent_at is None:
            return 0.0
        return min(self.sent_ms, max(0.0, (now - self.first_sent_at) * 1000.0))

    def still_playing(self, now: float) -> bool:
        return self.heard_ms(now) < self.sent_ms


@dataclass
class Reply:
    response_id: str
    item_id: str
    clock: TurnClock
    playback: Playback
    chunker: ClauseChunker = field(default_factory=ClauseChunker)
    pieces: list[str] = field(default_factory=list)
    tts_requests: dict[str, int] = field(default_factory=dict)  # tts request id -> piece index
    pieces_done: int = 0
    started: list[int] = field(default_factory=list)  # pieces whose audio began, in the order it began
    ended_at_ms: dict[int, float] = field(default_factory=dict)  # piece -> audio sent when it ended
    llm_done: bool = False
    resampler: StreamResampler | None = None
    playing_piece: int | None = None
    progress: int = 0  # LLM and TTS messages received: the watchdog sees whether the stages still answer
    produced_bytes: int = 0  # reply audio made so far (sent to the client, or held)
    # A speculative reply, started before the end of the turn was sure: what the client would have been sent, held
    # back (with the audio bytes of each event) until the turn is confirmed; None once it is live.
    held: list[tuple[ServerEvent, int]] | None = None
    speculation_id: str | None = None  # the speculative STT decode the held reply answers
    pending_finish: tuple[ResponseStatus, StatusDetails | None] | None = None  # it ended while held
    outputs: ReplyOutputs = field(default_factory=ReplyOutputs)  # text reply, tools, function calls

    @property
    def produced_ms(self) -> float:
        return self.produced_bytes / 2 / self.playback.output_rate * 1000.0

    def new_piece(self, text: str) -> str:
        """Adds a piece; returns its TTS request id."""
        request_id = f"{self.response_id}/{len(self.pieces)}"
        self.tts_requests[request_id] = len(self.pieces)
        self.pieces.append(text)
        return request_id

    @property
    def finished(self) -> bool:
        return self.llm_done and self.pieces_done >= len(self.pieces)

    def started_pieces(self) -> tuple[list[str], list[float]]:
        """Pieces whose audio went to the client, with the audio position where each ended (or where it stopped)."""
        made = self.produced_ms
        return [self.pieces[i] for i in self.started], [self.ended_at_ms.get(i, made) for i in self.started]
