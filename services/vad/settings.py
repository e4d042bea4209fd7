from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class VadSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_VAD_", extra="ignore")

    port: int = 8001
    backend: str = Field(default="silero", description="VAD backend: silero (ONNX).")
    model_path: str | None = Field(
        default=None, description="silero ONNX file; default: the one in the silero-vad wheel."
    )
    threshold: float = Field(default=0.5, description="Speech probability that starts speech.")
    min_silence_ms: int = Field(default=400, description="Silence that ends a turn in the silence mode.")
    min_speech_ms: int = Field(
        default=250,
        description="Voiced audio needed before speech counts: shorter noises neither start a turn nor interrupt a reply.",
    )
    speech_pad_ms: int = Field(default=300, description="Audio kept before speech starts (and after it ends).")
    pause_ms: int = Field(default=0, description="Silence that emits a vad.pause hint (0: off).")
    # Default "silence": measured here, Smart Turn is at chance on synthetic speech (espeak, piper) — the only speech
    # this project can test with — so it ended turns later (p50 1004 vs 403 ms) and split them no less (docs/performance.md).
    end_of_turn: Literal["smart", "silence"] = Field(
        default="silence",
        description="smart: an end-of-turn model (Smart Turn v3.2) judges each pause; silence: a fixed silence (min_silence_ms).",
    )
    turn_model_path: str | None = Field(
        default=None, description="Smart Turn ONNX file; default: the one in the pipecat-ai wheel."
    )
    turn_threshold: float = Field(
        default=0.5, gt=0.0, lt=1.0, description="Smart mode: the model's probability that makes a turn complete."
    )
    turn_complete_silence_ms: int = Field(
        default=160, ge=0, description="Smart mode: silence that ends a turn the model calls complete."
    )
    turn_incomplete_silence_ms: int = Field(
        default=1000,
        ge=0,
        description="Smart mode: silence that ends a turn the model calls incomplete (a stream's min_silence_ms replaces it).",
    )
    turn_recheck_ms: int = Field(
        default=0, ge=0, description="Smart mode: ask the model again after this much more silence (0: once a pause)."
    )
