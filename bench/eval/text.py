"""Words as the eval compares them: lower case, no punctuation, every number as digits.

Whisper writes "7 times 8" or "Seven times eight" for the same audio, and a reply says "fifty-six" or "56": both are
right, so both sides become ``["7", "times", "8"]`` / ``["56"]`` before words are compared (the WER and the judge).
Numbers up to the thousands are read ("one hundred and twenty" → 120, "a hundred" → 100); "million" and "billion" stay
words ("2.1 million" → ``["2.1", "million"]``), so a reply can be asked to say them. A run of small numbers stays a run:
"one two three" → ``["1", "2", "3"]``."""

from __future__ import annotations

import re

from bench.wer import corpus_wer, edit_distance

_UNITS = {
    "zero": 0, "one": 1, "two": 2, "three": 3, "four": 4, "five": 5, "six": 6, "seven": 7, "eight": 8,
    "nine": 9, "ten": 10, "eleven": 11, "twelve": 12, "thirteen": 13, "fourteen": 14, "fifteen": 15, "sixteen": 16,
    "seventeen": 17, "eighteen": 18, "nineteen": 19,
}  # fmt: skip
_TENS = {
    "twenty": 20, "thirty": 30, "forty": 40, "fourty": 40, "fifty": 50, "sixty": 60, "seventy": 70, "eighty": 80,
    "ninety": 90,
}  # fmt: skip
_SCALES = {"hundred": 100, "thousand": 1000}
# Spoken forms Whisper and the replies use interchangeably; the WER should not count them.
_SAME = {
    "what's": "what is", "it's": "it is", "that's": "that is", "there's": "there is", "i'm": "i am",
    "don't": "do not", "doesn't": "does not", "can't": "cannot", "isn't": "is not", "let's": "let us",
    "colour": "color", "colours": "colors", "okay": "ok", "percent": "%",
}  # fmt: skip
_TOKEN = re.compile(r"\d+(?:\.\d+)?|[a-z]+(?:'[a-z]+)?|%")


def _kind(word: str) -> str | None:
    if word in _UNITS:
        return "unit" if _UNITS[word] < 10 else "teen"
    if word in _TENS:
        return "tens"
    return word if word in _SCALES else None


# (what came last, what comes now): may they form one number? "twenty one", "one hundred", "hundred and five"…
_JOINS = {
    ("tens", "unit"),
    ("unit", "hundred"), ("teen", "hundred"), ("tens", "hundred"),
    ("unit", "thousand"), ("teen", "thousand"), ("tens", "thousand"), ("hundred", "thousand"),
    ("hundred", "unit"), ("hundred", "teen"), ("hundred", "tens"),
    ("thousand", "unit"), ("thousand", "teen"), ("thousand", "tens"), ("thousand", "hundred"),
}  # fmt: skip


def _numbers(words: list[str]) -> list[str]:
    """Runs of number words become digits; other words pass through."""
    out: list[str] = []
    total = current = 0
    last: str | None = None  # kind of the previous number word in the run; None: not in a number

    def flush() -> None:
        nonlocal total, current, last
        if last is not None:
            out.append(str(total + current))
        total = current = 0
        last = None

    for i, word in enumerate(words):
        kind = _kind(word)
        nxt = words[i + 1] if i + 1 < len(words) else ""
        if word == "and" and last in ("hundred", "thousand") and _kind(nxt) in ("unit", "teen", "tens"):
            continue  # "one hundred and five"
        if word == "a" and last is None and nxt in _SCALES:
            last, current = "unit", 1  # "a hundred"
            continue
        if kind is None:
            flush()
            out.append(word)
            continue
        if last is not None and (last, kind) not in _JOINS:
            flush()
        if kind in ("unit", "teen"):
            current += _UNITS[word]
        elif kind == "tens":
            current += _TENS[word]
        elif kind == "hundred":
            current = max(current, 1) * 100
        else:  # thousand
            total += max(current, 1) * 1000
            current = 0
        last = kind
    flush()
    return out


def words(text: str) -> list[str]:
    """The comparable words of ``text`` (see the module's docstring)."""
    text = text.lower().replace("’", "'").replace("-", " ")
    text = re.sub(r"(?<=\d),(?=\d{3})", "", text)  # 1,000 → 1000
    expanded: list[str] = []
    for token in _TOKEN.findall(text):
        expanded += _SAME.get(token, token).split()
    return _numbers(expanded)


def word_errors(reference: str, hypothesis: str) -> tuple[int, int]:
    """(substitutions + deletions + insertions, words in the reference), after ``words``."""
    ref = words(reference)
    return edit_distance(ref, words(hypothesis)), len(ref)


def wer(pairs: list[tuple[str, str]]) -> float | None:
    """Corpus WER over (reference, hypothesis) pairs: all errors over all reference words, after ``words``."""
    return corpus_wer(pairs, words)
