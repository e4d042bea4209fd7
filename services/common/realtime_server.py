"""Typed server events of the OpenAI Realtime (GA) dialect: every event the gateway sends to its clients.

Each event is a model whose ``type`` is fixed, so ``SpeechStopped(audio_end_ms=..., item_id=...)`` is a whole event;
the session fills ``event_id`` when it sends it and ``to_wire`` makes the JSON dict. The shapes follow the GA schema
in the ``openai`` package (``openai.types.realtime``), which tests/test_realtime_shapes.py validates them against:
openai-agents parses every server event with that schema and turns the ones that fail it into errors.

Nulls on the wire, one rule per field: a field that is ``None`` is left out, except the fields a model lists in
``keep_null`` — those GA always sends, with ``null`` meaning something (``turn_detection: null`` is manual turns;
``previous_item_id: null`` is the first item; an error's ``param``/``event_id``; a response's ``status_details``).

Extensions beyond GA (allowed by GA's schema, which ignores unknown fields): ``response.done`` carries ``timings``
(per-turn latency marks in ms, read by bench and the clients); audio formats may have any rate ``check_rate``
allows, where GA takes 24000 only. Documented in docs/protocol.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal, Self, get_args

from pydantic import (
    Field,
    TypeAdapter,
    model_validator,
)

from services.common.realtime_session import AudioFormatBody as AudioFormatBody
from services.common.realtime_session import AudioInputBody as AudioInputBody
from services.common.realtime_session import AudioOutputBody as AudioOutputBody
from services.common.realtime_session import ErrorDetail as ErrorDetail
from services.common.realtime_session import FunctionToolBody as FunctionToolBody
from services.common.realtime_session import Modality as Modality
from services.common.realtime_session import SessionAudioBody as SessionAudioBody
from services.common.realtime_session import SessionBody as SessionBody
from services.common.realtime_session import ToolChoiceFunctionBody as ToolChoiceFunctionBody
from services.common.realtime_session import TranscriptionUsage as TranscriptionUsage
from services.common.realtime_session import TurnDetectionBody as TurnDetectionBody
from services.common.realtime_session import WireModel as WireModel

Role = Literal["user", "assistant", "system"]
ItemStatus = Literal["completed", "incomplete", "in_progress"]
ResponseStatus = Literal["in_progress", "completed", "cancelled", "failed", "incomplete"]
CancelReason = Literal["turn_detected", "client_cancelled", "max_output_tokens", "content_filter"]
ItemPartType = Literal["input_text", "input_audio", "output_text", "output_audio"]
ResponsePartType = Literal["audio", "text"]  # the part of response.content_part.* (GA names it apart from items')

# Which part kinds each role's message may hold (GA: system input_text; user input_text/input_audio; assistant output_*).
ROLE_PARTS: dict[str, frozenset[str]] = {
    "system": frozenset({"input_text"}),
    "user": frozenset({"input_text", "input_audio"}),
    "assistant": frozenset({"output_text", "output_audio"}),
}


# --------------------------------------------------------------------------- bodies


class ContentPart(WireModel):
    """A part of an item (``input_text`` … ``output_audio``) or of response.content_part.* (``audio``, ``text``)."""

    type: ItemPartType | ResponsePartType
    text: str | None = None
    transcript: str | None = None


class Item(WireModel):
    """A message (``role``, ``content``), a function call (``call_id``, ``name``, ``arguments``) or a call's result
    (``call_id``, ``output``): GA's three item kinds, each with only its own fields."""

    id: str
    object: Literal["realtime.item"] = "realtime.item"
    type: Literal["message", "function_call", "function_call_output"] = "message"
    role: Role | None = None
    status: ItemStatus = "completed"
    content: list[ContentPart] | None = None
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None

    @model_validator(mode="after")
    def _fields_fit_kind(self) -> Self:
        fields = {"role", "content"} if self.type == "message" else {"call_id", "name", "arguments"}
        if self.type == "function_call_output":
            fields = {"call_id", "output"}
        given = {
            name
            for name in ("role", "content", "call_id", "name", "arguments", "output")
            if getattr(self, name) is not None
        }
        if given != fields:
            raise ValueError(f"a {self.type} item has {sorted(fields)}, not {sorted(given)}")
        if self.role is not None:
            wrong = [part.type for part in self.content or [] if part.type not in ROLE_PARTS[self.role]]
            if wrong:
                allowed = sorted(ROLE_PARTS[self.role])
                raise ValueError(f"a {self.role} message cannot hold {wrong} parts (GA: {allowed})")
        return self

    @classmethod
    def message(cls, item_id: str, role: str, text: str, status: str = "completed", spoken: bool = True) -> Self:
        """A text message as GA shows it: user/system text is ``input_text``; the assistant's is spoken audio
        (``output_audio``), or ``output_text`` when it was a text reply (``spoken=False``)."""
        if role == "assistant" and spoken:
            part: dict[str, Any] = {"type": "output_audio", "transcript": text}
        elif role == "assistant":
            part = {"type": "output_text", "text": text}
        else:
            part = {"type": "input_text", "text": text}
        return cls.model_validate({"id": item_id, "role": role, "status": status, "content": [part]})

    @classmethod
    def function_call(cls, item_id: str, call_id: str, name: str, arguments: str, status: str = "completed") -> Self:
        data = {"id": item_id, "type": "function_call", "status": status}
        return cls.model_validate(data | {"call_id": call_id, "name": name, "arguments": arguments})

    @classmethod
    def function_call_output(cls, item_id: str, call_id: str, output: str) -> Self:
        return cls.model_validate({"id": item_id, "type": "function_call_output", "call_id": call_id, "output": output})

    @classmethod
    def user_audio(cls, item_id: str, transcript: str | None, status: str = "completed") -> Self:
        """What the user said aloud: ``input_audio`` with its transcript (``None`` while not transcribed yet)."""
        part = {"type": "input_audio", "transcript": transcript}
        return cls.model_validate({"id": item_id, "role": "user", "status": status, "content": [part]})


class StatusError(WireModel):
    type: str = "server_error"
    code: str | None = None
    message: str | None = None


class StatusDetails(WireModel):
    """Why a response ended other than completed: a GA cancel reason, or for ``failed`` an error (no reason)."""

    type: Literal["completed", "cancelled", "incomplete", "failed"]
    reason: CancelReason | None = None
    error: StatusError | None = None

    @classmethod
    def cancelled(cls, reason: CancelReason) -> Self:
        return cls(type="cancelled", reason=reason)

    @classmethod
    def failed(cls, code: str, message: str | None = None) -> Self:
        return cls(type="failed", error=StatusError(code=code, message=message))


class ResponseBody(WireModel):
    keep_null = frozenset({"status_details"})

    id: str
    object: Literal["realtime.response"] = "realtime.response"
    status: ResponseStatus
    status_details: StatusDetails | None = None
    output: list[Item] = Field(default_factory=list)


# --------------------------------------------------------------------------- events


class ServerEvent(WireModel):
    type: str  # each event class fixes it (a Literal with a default), so events are built without it
    event_id: str = ""  # assigned by the session when it sends the event


class ErrorEvent(ServerEvent):
    type: Literal["error"] = "error"
    error: ErrorDetail


class SessionCreated(ServerEvent):
    type: Literal["session.created"] = "session.created"
    session: SessionBody


class SessionUpdated(ServerEvent):
    type: Literal["session.updated"] = "session.updated"
    session: SessionBody


class SpeechStarted(ServerEvent):
    type: Literal["input_audio_buffer.speech_started"] = "input_audio_buffer.speech_started"
    audio_start_ms: int
    item_id: str


class SpeechStopped(ServerEvent):
    type: Literal["input_audio_buffer.speech_stopped"] = "input_audio_buffer.speech_stopped"
    audio_end_ms: int
    item_id: str


class InputAudioCommitted(ServerEvent):
    keep_null = frozenset({"previous_item_id"})

    type: Literal["input_audio_buffer.committed"] = "input_audio_buffer.committed"
    item_id: str
    previous_item_id: str | None


class InputAudioCleared(ServerEvent):
    type: Literal["input_audio_buffer.cleared"] = "input_audio_buffer.cleared"


class ItemAdded(ServerEvent):
    keep_null = frozenset({"previous_item_id"})

    type: Literal["conversation.item.added"] = "conversation.item.added"
    item: Item
    previous_item_id: str | None = None


class ItemDone(ServerEvent):
    keep_null = frozenset({"previous_item_id"})

    type: Literal["conversation.item.done"] = "conversation.item.done"
    item: Item
    previous_item_id: str | None = None


class ItemTruncated(ServerEvent):
    type: Literal["conversation.item.truncated"] = "conversation.item.truncated"
    item_id: str
    content_index: int = 0
    audio_end_ms: int


class ItemRetrieved(ServerEvent):
    type: Literal["conversation.item.retrieved"] = "conversation.item.retrieved"
    item: Item


class TranscriptionDelta(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.delta"] = (
        "conversation.item.input_audio_transcription.delta"
    )
    item_id: str
    content_index: int = 0
    delta: str


class TranscriptionCompleted(ServerEvent):
    type: Literal["conversation.item.input_audio_transcription.completed"] = (
        "conversation.item.input_audio_transcription.completed"
    )
    item_id: str
    content_index: int = 0
    transcript: str
    usage: TranscriptionUsage  # required by GA


class ResponseCreated(ServerEvent):
    type: Literal["response.created"] = "response.created"
    response: ResponseBody


class OutputItemAdded(ServerEvent):
    type: Literal["response.output_item.added"] = "response.output_item.added"
    response_id: str
    output_index: int = 0
    item: Item


class ResponsePartEvent(ServerEvent):
    """The fields every event about one content part of a response's output item carries."""

    response_id: str
    item_id: str
    output_index: int = 0
    content_index: int = 0


class PartEvent(ResponsePartEvent):
    """response.content_part.*: GA names their parts ``audio``/``text``, not the ``output_*`` kinds of items."""

    part: ContentPart

    @model_validator(mode="after")
    def _part_kind(self) -> Self:
        if self.part.type not in get_args(ResponsePartType):
            raise ValueError(f"response.content_part.* parts are {get_args(ResponsePartType)}, not {self.part.type!r}")
        return self


class ContentPartAdded(PartEvent):
    type: Literal["response.content_part.added"] = "response.content_part.added"


class OutputAudioDelta(ResponsePartEvent):
    type: Literal["response.output_audio.delta"] = "response.output_audio.delta"
    delta: str  # base64 PCM16LE at the session's output rate


class OutputAudioTranscriptDelta(ResponsePartEvent):
    type: Literal["response.output_audio_transcript.delta"] = "response.output_audio_transcript.delta"
    delta: str


class OutputAudioDone(ResponsePartEvent):
    type: Literal["response.output_audio.done"] = "response.output_audio.done"


class OutputAudioTranscriptDone(ResponsePartEvent):
    type: Literal["response.output_audio_transcript.done"] = "response.output_audio_transcript.done"
    transcript: str


class OutputTextDelta(ResponsePartEvent):
    type: Literal["response.output_text.delta"] = "response.output_text.delta"
    delta: str


class OutputTextDone(ResponsePartEvent):
    type: Literal["response.output_text.done"] = "response.output_text.done"
    text: str


class FunctionCallArgumentsDelta(ServerEvent):
    type: Literal["response.function_call_arguments.delta"] = "response.function_call_arguments.delta"
    response_id: str
    item_id: str
    output_index: int = 0
    call_id: str
    delta: str


class FunctionCallArgumentsDone(ServerEvent):
    type: Literal["response.function_call_arguments.done"] = "response.function_call_arguments.done"
    response_id: str
    item_id: str
    output_index: int = 0
    call_id: str
    name: str
    arguments: str


class ContentPartDone(PartEvent):
    type: Literal["response.content_part.done"] = "response.content_part.done"


class OutputItemDone(ServerEvent):
    type: Literal["response.output_item.done"] = "response.output_item.done"
    response_id: str
    output_index: int = 0
    item: Item


class ResponseDone(ServerEvent):
    type: Literal["response.done"] = "response.done"
    response: ResponseBody
    timings: dict[str, float] | None = None  # extension: the turn's latency marks in ms (docs/protocol.md)


ServerEventUnion = Annotated[
    (
        ErrorEvent
        | SessionCreated
        | SessionUpdated
        | SpeechStarted
        | SpeechStopped
        | InputAudioCommitted
        | InputAudioCleared
        | ItemAdded
        | ItemDone
        | ItemTruncated
        | ItemRetrieved
        | TranscriptionDelta
        | TranscriptionCompleted
        | ResponseCreated
        | OutputItemAdded
        | ContentPartAdded
        | OutputAudioDelta
        | OutputAudioTranscriptDelta
        | OutputAudioDone
        | OutputAudioTranscriptDone
        | OutputTextDelta
        | OutputTextDone
        | FunctionCallArgumentsDelta
        | FunctionCallArgumentsDone
        | ContentPartDone
        | OutputItemDone
        | ResponseDone
    ),
    Field(discriminator="type"),
]
SERVER_EVENTS: TypeAdapter[ServerEventUnion] = TypeAdapter(ServerEventUnion)

EVENT_CLASSES: tuple[type[ServerEvent], ...] = get_args(get_args(ServerEventUnion)[0])
EVENT_TYPES: tuple[str, ...] = tuple(str(cls.model_fields["type"].default) for cls in EVENT_CLASSES)


def to_wire(event: ServerEvent) -> dict[str, Any]:
    """The JSON object to send: nulls only where GA keeps them (see the module docstring)."""
    wire: dict[str, Any] = event.model_dump(mode="json")
    return wire
