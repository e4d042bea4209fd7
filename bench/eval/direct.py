"""The file path: the row's STT model called on each whole 16 kHz clip, in this process, before its stack starts.

Two decodes per clip: the 30 s window (``short_decode`` off: faster-whisper's own ``transcribe``, the reference the
issue names) and the short decode (the speech's own frames, what the live path uses by default). The STT settings come
from the row's environment, so a preset that changes the model or the beam changes the direct decode too."""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager

import numpy as np

from services.stt.backends.base import SttBackend


@contextmanager
def environment(env: Mapping[str, str]) -> Iterator[None]:
    """``os.environ`` with ``env`` on top, for settings read while the block runs."""
    saved = {key: os.environ.get(key) for key in env}
    os.environ.update(env)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


class DirectDecoder:
    def __init__(self, env: Mapping[str, str], language: str = "en") -> None:
        from services.stt.backends import backends
        from services.stt.settings import SttSettings

        with environment(env):
            window, short = SttSettings(short_decode=False), SttSettings(short_decode=True)
        self.model = window.model
        self.language = language
        self._window: SttBackend = backends.load(window)
        self._short: SttBackend = backends.load(short)

    def decode(self, pcm16k: bytes, segments_ms: list[list[int]] | None = None) -> dict[str, str]:
        """{"window": the 30 s window's text, "short": the short decode's (or the 30 s fallback's when a guard fired)}.

        With ``segments_ms``, only those parts of the clip, each decoded on its own and the texts joined: what the
        live path's commits held, were the gateway's audio the same as the file's (a diagnosis of the live path)."""
        audio = np.frombuffer(pcm16k, dtype="<i2").astype(np.float32) / 32768.0
        parts = [audio[max(0, a) * 16 : max(0, b) * 16] for a, b in segments_ms] if segments_ms is not None else [audio]
        parts = [p for p in parts if len(p)]
        shorts = [self._short.transcribe(p, self.language) for p in parts]
        return {
            "window": " ".join(self._window.transcribe(p, self.language).text for p in parts).strip(),
            "short": " ".join(s.text for s in shorts).strip(),
            "short_guard": ",".join(s.guard for s in shorts if s.guard),
        }
