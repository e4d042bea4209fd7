"""What the turn machine takes in (events) and what it asks the session to do (commands): plain data, no behaviour.

Times inside events are the gateway's stream time: milliseconds of 16 kHz input audio since the session began. The
session maps each stage's own clock onto it at the edge (``stream_time.StreamOffsets``), so a stage that reconnects
never shifts the machine's view of time.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

from pydantic import BaseModel

from services.common import realtime as rt
from services.common.realtime_server import ServerEvent

Stage = Literal["vad", "stt", "llm", "tts"]

# --------------------------------------------------------------------------- events (into the machine)


@dataclass(frozen=True)
class AudioIn:
    """The client's audio reached ``end_ms`` of stream time (it was sent on to VAD and STT)."""

    end_ms: float


@dataclass(frozen=True)
class FromStage:
    """A message from a stage service, times already in gateway stream time; ``bytes`` is TTS audio."""

    stage: Stage
    message: BaseModel | bytes


@dataclass(frozen=True)
class StageDown:
    """A stage link was lost (``upstream_lost``), or a connect or send failed (``upstream_unavailable``)."""

    stage: Stage
    code: str
    reason: str


@dataclass(frozen=True)
class TimerFired:
    key: tuple[str, str]


@dataclass(frozen=True)
class InputRestarted:
    """Turn detection changed and the VAD stream restarted: an utterance in progress is abandoned."""


ClientRequest = (
    rt.InputAudioCommit
    | rt.InputAudioClear
    | rt.ConversationItemCreate
    | rt.ConversationItemTruncate
    | rt.ConversationItemRetrieve
    | rt.ResponseCreate
    | rt.ResponseCancel
)
Event = AudioIn | FromStage | StageDown | TimerFired | InputRestarted | ClientRequest

# --------------------------------------------------------------------------- commands (out of the machine)


@dataclass(frozen=True)
class Emit:
    """Send this event to the client (the session stamps its ``event_id``)."""

    event: ServerEvent


@dataclass(frozen=True)
class Send:
    """Send to a stage. ``connect``: reconnect a lost link first; False for cancels, which a new link would not need."""

    stage: Stage
    message: BaseModel
    connect: bool = True


@dataclass(frozen=True)
class StartTimer:
    """Feed ``TimerFired(key)`` back after ``seconds``; the machine ignores keys it no longer waits for."""

    key: tuple[str, str]
    seconds: float


@dataclass(frozen=True)
class TurnFinished:
    """A reply ended: for metrics and the log."""

    response_id: str
    status: str
    timings: dict[str, float]


Command = Emit | Send | StartTimer | TurnFinished
