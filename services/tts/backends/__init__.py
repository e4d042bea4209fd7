"""TTS backends by name, imported only when chosen (each pulls in its own heavy dependencies)."""

from __future__ import annotations

import importlib

from services.tts.backends.base import TtsBackend
from services.tts.settings import TtsSettings

# name -> "module:Class". parler's module ships only in images built with the parler extra.
BACKENDS = {
    "piper": "services.tts.backends.piper:PiperBackend",
    "espeak": "services.tts.backends.espeak:EspeakBackend",
    "parler": "services.tts.backends.parler:ParlerBackend",
}


def load_backend(settings: TtsSettings) -> TtsBackend:
    """Imports the configured backend and loads its model (slow: call it from a worker thread)."""
    target = BACKENDS.get(settings.backend)
    if target is None:
        raise ValueError(f"unknown TTS backend {settings.backend!r}; choose one of {sorted(BACKENDS)}")
    module_name, class_name = target.split(":")
    try:
        backend: TtsBackend = getattr(importlib.import_module(module_name), class_name)(settings)
    except ModuleNotFoundError as exc:  # the module itself, or a package its constructor imports lazily
        missing = f"its module {module_name}" if exc.name == module_name else f"package {exc.name!r}"
        raise RuntimeError(f"TTS backend {settings.backend!r} is not installed in this image: {missing} is missing") from exc
    return backend
