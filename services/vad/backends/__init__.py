"""VAD backends by name (S2S_VAD_BACKEND). Each factory imports its module only when that backend is chosen."""

from __future__ import annotations

from services.common.registry import Registry
from services.vad.backends.base import VadModel
from services.vad.settings import VadSettings

backends: Registry[VadSettings, VadModel] = Registry("VAD backend", "S2S_VAD_BACKEND")


@backends.register("silero")
def _silero(settings: VadSettings) -> VadModel:
    from services.vad.backends.silero import SileroModel

    return SileroModel(settings.model_path)
