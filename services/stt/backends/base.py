"""The interface every STT backend implements: a shared model that turns 16 kHz float32 audio into text."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import Protocol

import numpy as np

SAMPLE_RATE = 16000  # Whisper's rate; the service takes nothing else


@dataclass
class Transcript:
    text: str
    language: str
    short: bool = False  # decoded on the speech's own frames (services/stt/backends/short_decode.py)
    guard: str | None = None  # the short-decode guard that fired; the text then came from the 30 s path
    # How sure Whisper was: the mean log-probability of its tokens and the probability that there was no speech at all
    # (None: the backend does not say). The gateway asks the user to repeat when these say nobody said the words.
    avg_logprob: float | None = None
    no_speech_prob: float | None = None


class SttBackend(Protocol):
    def transcribe(self, audio: np.ndarray, language: str | None) -> Transcript:
        """Text of mono float32 audio at SAMPLE_RATE; language None detects it. Blocking: call from a worker thread."""

    def supports_language(self, language: str) -> bool: ...


Deliver = Callable[[int, "Transcript | None"], None]  # (item's index, its transcript), called as each is known


class BatchSttBackend(SttBackend, Protocol):
    """A backend that decodes several utterances in one call (the scheduler batches waiting requests for it)."""

    def transcribe_batch(
        self,
        audios: Sequence[np.ndarray],
        languages: Sequence[str | None],
        fallback: bool = True,
        deliver: Deliver | None = None,
    ) -> list[Transcript | None]:
        """One transcript per item. ``fallback`` False (partials): an item the fast path does not trust is None
        instead of being decoded again the slow way. ``deliver`` hears of each item as soon as it is done, so one slow
        item (a fallback) does not hold back the others' answers."""
        ...
