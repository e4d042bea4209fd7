"""Which voice speaks a piece: the service's own, or a fallback voice for a language the own voice can't speak.

Whisper detects ~100 languages; piper's embedded `joe` and parler speak English only. A ``tts.speak`` that names
another language goes to an espeak-ng voice for it (S2S_TTS_LANGUAGE_FALLBACK=espeak), built on first use and shared
by every connection (espeak-ng runs one subprocess per piece, so it is safe across threads). A language espeak-ng has
no voice for, or no espeak-ng at all, falls back to the own voice, once logged per language.
"""

from __future__ import annotations

import logging
import re
import threading
from collections.abc import Callable

from services.tts.backends.base import TtsBackend
from services.tts.settings import TtsSettings

log = logging.getLogger(__name__)

_CODE = re.compile(r"^[a-z]{2,3}(-[a-z0-9]{2,8})*$")  # ISO 639 with optional region/variant: fr, es-419, pt-br


def fallback_espeak(settings: TtsSettings) -> Callable[[str], TtsBackend]:
    def build(language: str) -> TtsBackend:
        from services.tts.backends.espeak import EspeakBackend

        return EspeakBackend(settings, voice=language)

    return build


class Voices:
    """The own voice plus fallback voices by language; ``for_language`` picks one per piece."""

    def __init__(self, own: TtsBackend, fallback: Callable[[str], TtsBackend] | None) -> None:
        self.own = own
        self._fallback = fallback
        self._by_language: dict[str, TtsBackend] = {}  # the own voice where no fallback could be built
        self._lock = threading.Lock()

    def for_language(self, language: str | None) -> TtsBackend:
        code = (language or "").strip().lower().replace("_", "-")
        if not code or code.split("-")[0] == self.own.language or self._fallback is None:
            return self.own
        with self._lock:  # a build takes a few ms (espeak-ng probes the voice); done once per language
            if code not in self._by_language:
                self._by_language[code] = self._build(code)
            return self._by_language[code]

    def _build(self, code: str) -> TtsBackend:
        assert self._fallback is not None
        if not _CODE.match(code):
            log.warning("tts: %r is not a language code; the own voice speaks it", code)
            return self.own
        try:
            voice = self._fallback(code)
        except Exception as exc:  # no espeak-ng, or no voice for this language
            log.warning(
                "tts: no voice for language %r (%s); the own voice (%s) speaks it", code, exc, self.own.language
            )
            return self.own
        log.info("tts: language %r is spoken by a fallback voice (%s Hz)", code, voice.sample_rate)
        return voice


def build_voices(own: TtsBackend, settings: TtsSettings) -> Voices:
    return Voices(own, fallback_espeak(settings) if settings.language_fallback == "espeak" else None)
