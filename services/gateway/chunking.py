"""Cuts a streaming LLM reply into pieces TTS can speak as soon as each is complete."""

from __future__ import annotations

import re

# A clause ends at sentence punctuation, or at a comma/semicolon/colon, followed by a space.
_BOUNDARY = re.compile(r"(?<=[.!?;:,])\s+|(?<=[.!?])[\"')\]]\s+|\n+")
_ABBREVIATIONS = ("mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "vs.", "etc.", "no.")


class ClauseChunker:
    """Feed token deltas; get back the pieces that are ready to speak.

    The first piece is cut at the first clause boundary (latency matters most there); later pieces need
    ``min_words`` words so TTS prosody doesn't suffer from tiny fragments. Text without punctuation is cut after
    ``first_max_words`` words for the first piece (a run-on start must not hold back the first audio) and
    ``max_words`` after that.
    """

    def __init__(self, min_words: int = 4, max_words: int = 25, first_max_words: int = 10) -> None:
        self.min_words = min_words
        self.max_words = max_words
        self.first_max_words = first_max_words
        self._buffer = ""
        self._pieces_out = 0

    def push(self, delta: str) -> list[str]:
        self._buffer += delta
        pieces: list[str] = []
        while True:
            piece = self._next_piece()
            if piece is None:
                return pieces
            pieces.append(piece)

    def flush(self) -> list[str]:
        rest, self._buffer = self._buffer.strip(), ""
        return [rest] if rest else []

    def _next_piece(self) -> str | None:
        needed = 1 if self._pieces_out == 0 else self.min_words
        for match in _BOUNDARY.finditer(self._buffer):
            candidate = self._buffer[: match.start()].strip()
            if not candidate or candidate.lower().endswith(_ABBREVIATIONS) or _ends_in_number(candidate):
                continue
            if len(candidate.split()) >= needed:
                return self._take(match.end(), candidate)
        limit = self.first_max_words if self._pieces_out == 0 else self.max_words
        if len(self._buffer.split()) > limit:
            # Tokens arrive with their leading space, so the last word may be incomplete: cut before it.
            cut = self._buffer.rstrip().rfind(" ")
            return self._take(cut + 1, self._buffer[:cut].strip())
        return None

    def _take(self, end: int, piece: str) -> str:
        self._buffer = self._buffer[end:]
        self._pieces_out += 1
        return piece


def _ends_in_number(text: str) -> bool:
    # "3.14" arrives as "3." then "14": don't cut after a digit and a period with nothing after yet.
    return bool(re.search(r"\d[.,]$", text))
