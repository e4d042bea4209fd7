"""Typed JSON messages between the gateway and the stage services (VAD, STT, LLM, TTS).

Every text frame on a stage WebSocket is one of these models, discriminated by ``type``.
Binary frames carry PCM16LE mono audio at the rate declared by the stream's ``*.start`` /
``tts.started`` message. The gateway <-> client dialect (OpenAI Realtime) lives in
``services.common.realtime``. Documented in docs/protocol.md.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, TypeAdapter


class Message(BaseModel):
    model_config = ConfigDict(extra="forbid")


# --------------------------------------------------------------------------- errors


class ErrorMessage(Message):
    """Any stage answers bad input with this and keeps the connection open."""

    type: Literal["error"] = "error"
    code: str
    message: str
    request_id: str | None = None


# --------------------------------------------------------------------------- VAD


class VadStart(Message):
    """Opens a VAD stream. Optional fields override the service's settings for this stream."""

    type: Literal["vad.start"] = "vad.start"
    sample_rate: int = 16000
    threshold: float | None = Field(default=None, gt=0.0, lt=1.0)
    min_silence_ms: int | None = Field(default=None, ge=0, le=10_000)
    min_speech_ms: int | None = Field(default=None, ge=0, le=5_000)
    speech_pad_ms: int | None = Field(default=None, ge=0, le=2_000)
    pause_ms: int | None = Field(default=None, ge=0, le=10_000)


class VadSpeechStarted(Message):
    type: Literal["vad.speech_started"] = "vad.speech_started"
    start_ms: int  # stream time of the first voiced audio, minus speech padding
    voice_start_ms: int = 0  # stream time of the first voiced audio (sent once speech lasted min_speech_ms)


class VadPause(Message):
    """Silence reached ``pause_ms`` inside a turn: a hint to start speculative work."""

    type: Literal["vad.pause"] = "vad.pause"
    end_ms: int  # stream time where the silence began (the last voiced audio)
    end_of_turn: float | None = None  # the semantic end-of-turn model's probability that the turn is complete


class VadSpeechResumed(Message):
    """Speech came back after a ``vad.pause`` within the same turn: speculative work on that pause is moot."""

    type: Literal["vad.speech_resumed"] = "vad.speech_resumed"
    start_ms: int  # stream time of the voiced audio after the pause


class VadSpeechStopped(Message):
    type: Literal["vad.speech_stopped"] = "vad.speech_stopped"
    end_ms: int  # stream time of the last voiced audio, plus speech padding
    voice_end_ms: int  # stream time where the silence began (the last voiced audio)
    detected_ms: int  # stream time at which the silence was long enough


# --------------------------------------------------------------------------- STT


class SttStart(Message):
    type: Literal["stt.start"] = "stt.start"
    sample_rate: int = 16000
    language: str | None = None  # None: detect


class SttBegin(Message):
    """An utterance started at ``start_ms``: the service emits partial transcripts from there."""

    type: Literal["stt.begin"] = "stt.begin"
    start_ms: int


class SttCommit(Message):
    """Decode stream audio [start_ms, end_ms) and answer with ``stt.final``."""

    type: Literal["stt.commit"] = "stt.commit"
    request_id: str
    start_ms: int
    end_ms: int | None = None  # None: up to the newest audio
    keep_open: bool = False  # a speculative decode at a pause: the utterance may go on, so its partials go on too


class SttPartial(Message):
    type: Literal["stt.partial"] = "stt.partial"
    start_ms: int
    text: str


class SttFinal(Message):
    type: Literal["stt.final"] = "stt.final"
    request_id: str
    text: str
    language: str | None
    audio_ms: int
    decode_ms: float
    queued_ms: float = 0.0  # time the request waited for the model (a decode already running)
    # Whisper's confidence: mean token log-probability and no-speech probability (None: the backend does not say).
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


# --------------------------------------------------------------------------- LLM


class ToolCall(BaseModel):
    """A call the model made: ``arguments`` is the JSON text of its arguments object."""

    id: str
    name: str
    arguments: str = "{}"


class ChatMessage(BaseModel):
    """A turn of the conversation. An assistant turn may hold ``tool_calls``; a ``tool`` turn is one call's result
    (``tool_call_id`` names the call, ``content`` is its output)."""

    role: Literal["system", "user", "assistant", "tool"]
    content: str = ""
    tool_calls: list[ToolCall] | None = None
    tool_call_id: str | None = None


class ToolSpec(BaseModel):
    """A function the model may call (the Realtime API's flat ``{type: "function", name, ...}`` form)."""

    model_config = ConfigDict(extra="ignore")

    type: Literal["function"] = "function"
    name: str = Field(min_length=1, max_length=64)
    description: str = ""
    parameters: dict[str, Any] = Field(default_factory=lambda: {"type": "object", "properties": {}})


class LlmGenerate(Message):
    """Generate a reply; a new request on the same connection cancels the previous one."""

    type: Literal["llm.generate"] = "llm.generate"
    request_id: str
    messages: list[ChatMessage] = Field(min_length=1)
    max_tokens: int | None = Field(default=None, ge=1, le=4096)
    temperature: float | None = Field(default=None, ge=0.0, le=2.0)
    tools: list[ToolSpec] | None = None  # functions the model may call instead of (or after) answering
    tool_choice: str | None = None  # "auto" (default), "none", "required", or the name of one function


class LlmCancel(Message):
    type: Literal["llm.cancel"] = "llm.cancel"
    request_id: str


class LlmDelta(Message):
    type: Literal["llm.delta"] = "llm.delta"
    request_id: str
    text: str


class LlmToolCall(Message):
    """The model called a function: sent as soon as the call is complete, before ``llm.done``."""

    type: Literal["llm.tool_call"] = "llm.tool_call"
    request_id: str
    call_id: str
    name: str
    arguments: str  # JSON text of the arguments object


class LlmDone(Message):
    type: Literal["llm.done"] = "llm.done"
    request_id: str
    finish_reason: Literal["stop", "length", "cancelled", "error", "tool_calls"]
    ttft_ms: float | None = None
    tokens: int = 0


# --------------------------------------------------------------------------- TTS


class TtsSpeak(Message):
    """Queue a piece of text. Pieces are spoken in order, one after another."""

    type: Literal["tts.speak"] = "tts.speak"
    request_id: str
    text: str = Field(min_length=1, max_length=4000)
    # ISO 639-1 code of the text (None: the voice's own). A language the service's voice can't speak is spoken by a
    # fallback voice for it where the service has one (S2S_TTS_LANGUAGE_FALLBACK), else by its voice anyway.
    language: str | None = Field(default=None, min_length=2, max_length=12)


class TtsCancel(Message):
    """Drop queued pieces and stop the one being spoken. ``request_id`` None: all of them."""

    type: Literal["tts.cancel"] = "tts.cancel"
    request_id: str | None = None


class TtsStarted(Message):
    """Binary frames that follow belong to this request, at this rate, until its ``tts.done``."""

    type: Literal["tts.started"] = "tts.started"
    request_id: str
    sample_rate: int


class TtsDone(Message):
    type: Literal["tts.done"] = "tts.done"
    request_id: str
    cancelled: bool = False
    first_audio_ms: float | None = None
    audio_ms: float = 0.0


# --------------------------------------------------------------------------- unions

VadClientMessage = Annotated[VadStart, Field(discriminator="type")]
VadServerMessage = Annotated[
    VadSpeechStarted | VadPause | VadSpeechResumed | VadSpeechStopped | ErrorMessage, Field(discriminator="type")
]
SttClientMessage = Annotated[SttStart | SttBegin | SttCommit, Field(discriminator="type")]
SttServerMessage = Annotated[SttPartial | SttFinal | ErrorMessage, Field(discriminator="type")]
LlmClientMessage = Annotated[LlmGenerate | LlmCancel, Field(discriminator="type")]
LlmServerMessage = Annotated[LlmDelta | LlmToolCall | LlmDone | ErrorMessage, Field(discriminator="type")]
TtsClientMessage = Annotated[TtsSpeak | TtsCancel, Field(discriminator="type")]
TtsServerMessage = Annotated[TtsStarted | TtsDone | ErrorMessage, Field(discriminator="type")]

VAD_CLIENT = TypeAdapter(VadClientMessage)
VAD_SERVER = TypeAdapter(VadServerMessage)
STT_CLIENT = TypeAdapter(SttClientMessage)
STT_SERVER = TypeAdapter(SttServerMessage)
LLM_CLIENT = TypeAdapter(LlmClientMessage)
LLM_SERVER = TypeAdapter(LlmServerMessage)
TTS_CLIENT = TypeAdapter(TtsClientMessage)
TTS_SERVER = TypeAdapter(TtsServerMessage)
