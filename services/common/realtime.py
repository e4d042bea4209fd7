"""The OpenAI Realtime (GA) dialect the gateway speaks with clients: the subset we implement.

Client events are validated strictly enough to name what is wrong; unknown *fields* are ignored (SDKs send more
than we use), unknown *types* are an error. The server events are typed in ``realtime_server``. Documented in
docs/protocol.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Lenient(BaseModel):
    model_config = ConfigDict(extra="ignore")


# --------------------------------------------------------------------------- session


class AudioFormat(Lenient):
    type: str = "audio/pcm"
    rate: int = 24000


class TurnDetection(Lenient):
    type: Literal["server_vad", "semantic_vad"] = "server_vad"
    threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    prefix_padding_ms: int | None = Field(default=None, ge=0, le=2000)
    silence_duration_ms: int | None = Field(default=None, ge=0, le=10_000)
    create_response: bool = True
    interrupt_response: bool = True


class Transcription(Lenient):
    """``audio.input.transcription``: only ``language`` is used (an ISO-639-1 code pins it; null: detect per turn)."""

    language: str | None = Field(
        default=None, min_length=2, max_length=12, pattern=r"^[A-Za-z]{2,3}([-_][A-Za-z0-9]+)*$"
    )


class AudioInput(Lenient):
    format: AudioFormat | None = None
    turn_detection: TurnDetection | None = Field(default_factory=TurnDetection)
    transcription: Transcription | None = None


class AudioOutput(Lenient):
    format: AudioFormat | None = None
    voice: str | None = None  # echoed in session.updated; the TTS service's voice is its own setting (S2S_TTS_*)


class SessionAudio(Lenient):
    input: AudioInput | None = None
    output: AudioOutput | None = None


class FunctionTool(Lenient):
    """A function the model may call: ``{type: "function", name, description, parameters}`` (JSON schema)."""

    type: Literal["function"] = "function"
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class ToolChoiceFunction(Lenient):
    type: Literal["function"] = "function"
    name: str


ToolChoice = Literal["auto", "none", "required"] | ToolChoiceFunction


def tool_choice_name(choice: ToolChoice | None) -> str | None:
    """The stage protocol's form: "auto", "none", "required" or a function's name."""
    return choice.name if isinstance(choice, ToolChoiceFunction) else choice


class SessionConfig(Lenient):
    """What ``session.update`` may set; ``None`` leaves a field as it was."""

    type: Literal["realtime"] = "realtime"
    model: str | None = None
    instructions: str | None = None
    output_modalities: list[Literal["audio", "text"]] | None = None
    audio: SessionAudio | None = None
    max_output_tokens: int | Literal["inf"] | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoice | None = None


# --------------------------------------------------------------------------- client events


class ClientEvent(Lenient):
    event_id: str | None = None


class SessionUpdate(ClientEvent):
    type: Literal["session.update"]
    session: SessionConfig


class InputAudioAppend(ClientEvent):
    type: Literal["input_audio_buffer.append"]
    audio: str  # base64 PCM16LE at the session's input rate


class InputAudioCommit(ClientEvent):
    type: Literal["input_audio_buffer.commit"]


class InputAudioClear(ClientEvent):
    type: Literal["input_audio_buffer.clear"]


class ContentPart(Lenient):
    type: Literal["input_text", "text", "output_text", "input_audio", "output_audio", "audio"] = "input_text"
    text: str | None = None
    transcript: str | None = None


class ConversationItem(Lenient):
    """A message, or a function call (``call_id``, ``name``, ``arguments``) or its result (``call_id``, ``output``)."""

    id: str | None = None
    type: Literal["message", "function_call", "function_call_output"] = "message"
    role: Literal["user", "assistant", "system"] = "user"
    content: list[ContentPart] = Field(default_factory=list)
    call_id: str | None = None
    name: str | None = None
    arguments: str | None = None
    output: str | None = None

    def text(self) -> str:
        return " ".join((part.text or part.transcript or "") for part in self.content).strip()


class ConversationItemCreate(ClientEvent):
    type: Literal["conversation.item.create"]
    item: ConversationItem


class ConversationItemTruncate(ClientEvent):
    type: Literal["conversation.item.truncate"]
    item_id: str
    content_index: int = 0
    audio_end_ms: int = Field(ge=0)


class ConversationItemRetrieve(ClientEvent):
    type: Literal["conversation.item.retrieve"]
    item_id: str


class ResponseOptions(Lenient):
    """Per-response overrides of the session's settings (``None``: the session's)."""

    instructions: str | None = None
    output_modalities: list[Literal["audio", "text"]] | None = None
    tools: list[FunctionTool] | None = None
    tool_choice: ToolChoice | None = None
    max_output_tokens: int | Literal["inf"] | None = None


class ResponseCreate(ClientEvent):
    type: Literal["response.create"]
    response: ResponseOptions | None = None


class ResponseCancel(ClientEvent):
    type: Literal["response.cancel"]
    response_id: str | None = None


RealtimeClientEvent = Annotated[
    SessionUpdate
    | InputAudioAppend
    | InputAudioCommit
    | InputAudioClear
    | ConversationItemCreate
    | ConversationItemTruncate
    | ConversationItemRetrieve
    | ResponseCreate
    | ResponseCancel,
    Field(discriminator="type"),
]
CLIENT_EVENTS = TypeAdapter(RealtimeClientEvent)
