"""TTS backends by name (S2S_TTS_BACKEND). Each factory imports its module only when that backend is chosen.

parler needs its own virtualenv/image (it pins transformers 4.46.1); elsewhere choosing it fails as BackendUnavailable.
"""

from __future__ import annotations

from services.common.registry import Registry
from services.tts.backends.base import TtsBackend
from services.tts.settings import TtsSettings

backends: Registry[TtsSettings, TtsBackend] = Registry("TTS backend", "S2S_TTS_BACKEND")


@backends.register("piper")
def _piper(settings: TtsSettings) -> TtsBackend:
    from services.tts.backends.piper import PiperBackend

    return PiperBackend(settings)


@backends.register("espeak")
def _espeak(settings: TtsSettings) -> TtsBackend:
    from services.tts.backends.espeak import EspeakBackend

    return EspeakBackend(settings)


@backends.register("parler")
def _parler(settings: TtsSettings) -> TtsBackend:
    from services.tts.backends.parler import ParlerBackend

    return ParlerBackend(settings)
