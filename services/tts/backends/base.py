"""The interface every TTS backend implements; the app only talks to this."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Iterator

from services.tts.settings import TtsSettings

WARM_UP_TEXT = "Hello there."


def voice_language(espeak_voice: str) -> str:
    """The ISO 639-1 code of an espeak-ng voice or language name: ``en-us`` -> ``en``, ``cmn`` -> ``zh``."""
    code = espeak_voice.split("-")[0].split("+")[0].lower()
    return {"cmn": "zh", "yue": "zh"}.get(code, code)


class TtsBackend(ABC):
    """Loads its model in ``__init__`` (heavy imports happen there, not at module import).

    ``synthesize`` runs in a worker thread, one call at a time per connection, but calls from different
    connections may run at once: keep per-call state local.
    """

    sample_rate: int  # of every chunk ``synthesize`` yields
    language: str = "en"  # ISO 639-1 code of the language the voice speaks (services/tts/voices.py routes the others)

    @abstractmethod
    def __init__(self, settings: TtsSettings) -> None: ...

    @abstractmethod
    def synthesize(self, text: str, stop: threading.Event) -> Iterator[bytes]:
        """Yields PCM16LE mono chunks of ``text`` as soon as each is produced (any sizes, even byte counts).

        Stops early, without error, once ``stop`` is set.
        """

    def warm_up(self) -> None:
        """One throw-away synthesis, so the first client does not pay for lazy initialisation."""
        for _ in self.synthesize(WARM_UP_TEXT, threading.Event()):
            pass
