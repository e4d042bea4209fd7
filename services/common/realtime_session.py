"""The body of ``session.created`` / ``session.updated`` (part of realtime_server, which re-exports it)."""

from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, SerializerFunctionWrapHandler, model_serializer

Modality = Literal["audio", "text"]


class WireModel(BaseModel):
    """Strict on what we build (a misspelt field is an error), and writes ``None`` only where ``keep_null`` says."""

    model_config = ConfigDict(extra="forbid")
    keep_null: ClassVar[frozenset[str]] = frozenset()

    @model_serializer(mode="wrap")
    def _drop_nulls(self, handler: SerializerFunctionWrapHandler) -> dict[str, Any]:
        data: dict[str, Any] = handler(self)
        return {key: value for key, value in data.items() if value is not None or key in self.keep_null}


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


class TranscriptionBody(WireModel):
    language: str | None = None  # None: detected per turn


class AudioInputBody(WireModel):
    keep_null = frozenset({"turn_detection"})

    format: AudioFormatBody = Field(default_factory=AudioFormatBody)
    turn_detection: TurnDetectionBody | None = Field(default_factory=TurnDetectionBody)  # None: manual turns
    transcription: TranscriptionBody = Field(default_factory=TranscriptionBody)


class AudioOutputBody(WireModel):
    format: AudioFormatBody = Field(default_factory=AudioFormatBody)
    voice: str = "default"


class SessionAudioBody(WireModel):
    input: AudioInputBody = Field(default_factory=AudioInputBody)
    output: AudioOutputBody = Field(default_factory=AudioOutputBody)


class FunctionToolBody(WireModel):
    type: Literal["function"] = "function"
    name: str
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=dict)


class ToolChoiceFunctionBody(WireModel):
    type: Literal["function"] = "function"
    name: str


class SessionBody(WireModel):
    type: Literal["realtime"] = "realtime"
    object: Literal["realtime.session"] = "realtime.session"
    id: str
    model: str
    output_modalities: list[Modality] = Field(default_factory=lambda: list[Modality](["audio"]))
    instructions: str = ""
    audio: SessionAudioBody = Field(default_factory=SessionAudioBody)
    max_output_tokens: int | Literal["inf"] = "inf"
    tools: list[FunctionToolBody] = Field(default_factory=list)
    tool_choice: Literal["auto", "none", "required"] | ToolChoiceFunctionBody = "auto"


class ErrorDetail(WireModel):
    keep_null = frozenset({"code", "param", "event_id"})

    type: str = "invalid_request_error"
    code: str | None = None
    message: str
    param: str | None = None
    event_id: str | None = None  # the client event that caused it


class TranscriptionUsage(WireModel):
    """GA requires usage on a completed transcription; ours is billed by audio duration."""

    type: Literal["duration"] = "duration"
    seconds: float = Field(ge=0.0)
