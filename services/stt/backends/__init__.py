"""STT backends by name (S2S_STT_BACKEND). Each factory imports its module only when that backend is chosen."""

from __future__ import annotations

from services.common.registry import Registry
from services.stt.backends.base import SttBackend
from services.stt.settings import SttSettings

backends: Registry[SttSettings, SttBackend] = Registry("STT backend", "S2S_STT_BACKEND")


@backends.register("faster-whisper")
def _faster_whisper(settings: SttSettings) -> SttBackend:
    from services.stt.backends.faster_whisper import FasterWhisperBackend

    return FasterWhisperBackend(settings)
