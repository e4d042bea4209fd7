"""Word error rate of a transcript against the text that was spoken, after a light normalisation.

Whisper writes "2 plus 2" and "Two plus two?" for the same audio: both are right, so case, punctuation and small
numbers are normalised away before words are compared (a Levenshtein distance over words)."""

from __future__ import annotations

import re
from collections.abc import Callable

_NUMBERS = [
    "zero",
    "one",
    "two",
    "three",
    "four",
    "five",
    "six",
    "seven",
    "eight",
    "nine",
    "ten",
    "eleven",
    "twelve",
    "thirteen",
    "fourteen",
    "fifteen",
    "sixteen",
    "seventeen",
    "eighteen",
    "nineteen",
    "twenty",
]


def normalise(text: str) -> list[str]:
    words = re.sub(r"[^a-z0-9' ]+", " ", text.lower().replace("-", " ")).split()
    return [_NUMBERS[int(w)] if w.isdigit() and int(w) < len(_NUMBERS) else w.strip("'") for w in words]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    """Substitutions + deletions + insertions that turn ``ref`` into ``hyp`` (Levenshtein over words)."""
    row = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        prev, row[0] = row[0], i
        for j, h in enumerate(hyp, 1):
            prev, row[j] = row[j], min(row[j] + 1, row[j - 1] + 1, prev + (r != h))
    return row[-1]


def corpus_wer(pairs: list[tuple[str, str]], normalise: Callable[[str], list[str]]) -> float | None:
    """Corpus WER over (reference, hypothesis) pairs, each text made words by ``normalise``: total errors / total
    reference words."""
    errors = words = 0
    for reference, hypothesis in pairs:
        ref = normalise(reference)
        errors, words = errors + edit_distance(ref, normalise(hypothesis)), words + len(ref)
    return round(errors / words, 4) if words else None


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words in the reference)."""
    ref = normalise(reference)
    return edit_distance(ref, normalise(hypothesis)), len(ref)


def wer(pairs: list[tuple[str, str]]) -> float | None:
    return corpus_wer(pairs, normalise)
