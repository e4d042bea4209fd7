"""The user's side of a turn as data: the phase, the item being spoken, the decode started at a pause."""

from __future__ import annotations

import enum
from dataclasses import dataclass, field

from services.common.messages import SttFinal
from services.gateway.live_transcript import LiveTranscript
from services.gateway.reply import TurnClock


class Turn(enum.Enum):
    LISTENING = "listening"
    USER_SPEAKING = "user_speaking"
    TRANSCRIBING = "transcribing"


@dataclass
class Speculation:
    """An STT decode started at a short pause, before the end of the turn was certain."""

    voice_end_ms: int  # where the silence began; the turn's end must match it for the result to count
    request_id: str
    sent_at: float
    result: SttFinal | None = None


@dataclass
class Utterance:
    """The user's item being spoken or transcribed."""

    item_id: str
    start_ms: float
    clock: TurnClock = field(default_factory=TurnClock)
    live: LiveTranscript = field(default_factory=LiveTranscript)
    speculation: Speculation | None = None
