from __future__ import annotations

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class VadSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_VAD_", extra="ignore")

    port: int = 8001
    backend: str = Field(default="silero", description="VAD backend: silero (ONNX).")
    model_path: str | None = Field(default=None, description="silero ONNX file; default: the one in the silero-vad wheel.")
    threshold: float = Field(default=0.5, description="Speech probability that starts speech.")
    min_silence_ms: int = Field(default=400, description="Silence that ends a turn.")
    min_speech_ms: int = Field(default=250, description="Voiced audio needed before speech counts: shorter noises neither start a turn nor interrupt a reply.")
    speech_pad_ms: int = Field(default=300, description="Audio kept before speech starts (and after it ends).")
    pause_ms: int = Field(default=0, description="Silence that emits a vad.pause hint (0: off).")
