"""The user's words while they speak, as append-only deltas, from STT partials that may revise themselves.

Each partial is a fresh decode of the whole utterance so far, and Whisper changes its mind: "Tell me up." becomes
"Tell me about the weather" once more audio arrives. Realtime transcription deltas can only append, so a word is shown
once two consecutive partials agree on it (the LocalAgreement-2 policy of whisper_streaming): the live text lags one
partial behind, but is rarely contradicted by the next one, and never blocks on a revision.
"""

from __future__ import annotations

import re

_NORMALISE = re.compile(r"[^\w']+")


def _key(word: str) -> str:
    return _NORMALISE.sub("", word.lower())


class LiveTranscript:
    def __init__(self) -> None:
        self.shown: list[str] = []  # words sent as deltas
        self._previous: list[str] = []  # the last partial's words

    def update(self, partial: str) -> str:
        """Takes the next partial of the utterance; returns the delta to show ("" when nothing new is certain)."""
        words = partial.split()
        agreed = 0
        for old, new in zip(self._previous, words, strict=False):
            if _key(old) != _key(new):
                break
            agreed += 1
        self._previous = words
        stable = words[:agreed]
        if len(stable) <= len(self.shown) or [_key(w) for w in stable[: len(self.shown)]] != [
            _key(w) for w in self.shown
        ]:
            return ""  # nothing new, or the partials now disagree with what is shown: wait for them to come back
        new_words = stable[len(self.shown) :]
        delta = (" " if self.shown else "") + " ".join(new_words)
        self.shown = stable
        return delta
