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

from typing import Annotated, Any, ClassVar, Literal, Self, get_args

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SerializerFunctionWrapHandler,
    TypeAdapter,
    model_serializer,
    model_validator,
)

Role = Literal["user", "assistant", "system"]
ItemStatus = Literal["completed", "incomplete", "in_progress"]
ResponseStatus = Literal["in_progress", "completed", "cancelled", "failed", "incomplete"]
CancelReason = Literal["turn_detected", "client_cancelled", "max_output_tokens", "content_filter"]
ItemPartType = Literal["input_text", "input_audio", "output_text", "output_audio"]
Modality = Literal["audio", "text"]
ResponsePartType = Literal["audio", "text"]  # the part of response.content_part.* (GA names it apart from items')

# Which part kinds each role's message may hold (GA: system input_text; user input_text/input_audio; assistant output_*).
ROLE_PARTS: dict[str, frozenset[str]] = {
    "system": frozenset({"input_text"}),
    "user": frozenset({"input_text", "input_audio"}),
    "assistant": frozenset({"output_text", "output_audio"}),
}


class WireModel(BaseModel):
    """Strict on what we build (a misspelt field is an error), and writes ``None`` only where ``keep_null`` says."""

    model_config = ConfigDict(extra="forbid")
    keep_null: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _drop_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None or key in self.keep_null}


# --------------------------------------------------------------------------- bodies


class ErrorDetail(WireModel):
    keep_null = frozenset({"code", "param", "event_id"})

    type: str = "invalid_request_error"
    code: str | None = None
    message: str
    param: str | None = None
    event_id: str | None = None  # the client event that caused it


class ContentPart(WireModel):
    """A part of an item (``input_text`` … ``output_audio``) or of response.content_part.* (``audio``, ``text``)."""

    type: ItemPartType | ResponsePartType
    text: str | None = None
    transcript: str | None = None


class Item(WireModel):
    id: str
    object: Literal["realtime.item"] = "realtime.item"
    type: Literal["message"] = "message"
    role: Role
    status: ItemStatus = "completed"
    content: list[ContentPart] = Field(default_factory=list)

    @model_validator(mode="after")
    def _parts_fit_role(self) -> Self:
        wrong = [part.type for part in self.content if part.type not in ROLE_PARTS[self.role]]
        if wrong:
            raise ValueError(f"a {self.role} message cannot hold {wrong} parts (GA: {sorted(ROLE_PARTS[self.role])})")
        return self

    @classmethod
    def message(cls, item_id: str, role: str, text: str, status: str = "completed") -> Self:
        """A text message as GA shows it: user/system text is ``input_text``, the assistant's is spoken audio."""
        if role == "assistant":
            part: dict[str, Any] = {"type": "output_audio", "transcript": text}
        else:
            part = {"type": "input_text", "text": text}
        return cls.model_validate({"id": item_id, "role": role, "status": status, "content": [part]})

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


class AudioFormatBody(WireModel):
    type: Literal["audio/pcm"] = "audio/pcm"
    rate: int = 24000


class TurnDetectionBody(WireModel):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = None
    prefix_padding_ms: int | None = None
    silence_duration_ms: int | None = None
    create_response: bool = True
    interrupt_response: bool = True


class AudioInputBody(WireModel):
    keep_null = frozenset({"turn_detection"})

    format: AudioFormatBody = Field(default_factory=AudioFormatBody)
    turn_detection: TurnDetectionBody | None = Field(default_factory=TurnDetectionBody)  # None: manual turns


class AudioOutputBody(WireModel):
    format: AudioFormatBody = Field(default_factory=AudioFormatBody)
    voice: str = "default"


class SessionAudioBody(WireModel):
    input: AudioInputBody = Field(default_factory=AudioInputBody)
    output: AudioOutputBody = Field(default_factory=AudioOutputBody)


class SessionBody(WireModel):
    type: Literal["realtime"] = "realtime"
    object: Literal["realtime.session"] = "realtime.session"
    id: str
    model: str
    output_modalities: list[Modality] = Field(default_factory=lambda: list[Modality](["audio"]))
    instructions: str = ""
    audio: SessionAudioBody = Field(default_factory=SessionAudioBody)
    max_output_tokens: int | Literal["inf"] = "inf"


class TranscriptionUsage(WireModel):
    """GA requires usage on a completed transcription; ours is billed by audio duration."""

    type: Literal["duration"] = "duration"
    seconds: float = Field(ge=0.0)


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
