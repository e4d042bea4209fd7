"""Turns LLM text into something a voice should read aloud: no markdown symbols, no emoji, single-spaced."""

from __future__ import annotations

import re

# Emoji and pictographs, their joiners and modifiers. Other symbols (°, %, €, ©) stay: voices read them as words.
_EMOJI = re.compile(
    "["
    "\U0001f000-\U0001faff"  # mahjong .. symbols & pictographs extended-A (incl. flags, skin tones)
    "\u2600-\u27bf"  # miscellaneous symbols, dingbats
    "\u2b00-\u2bff"  # arrows and shapes used as emoji (⭐, ⬆)
    "\u2300-\u23ff"  # technical symbols used as emoji (⌚, ⏰)
    "\u2190-\u21ff"  # arrows (→), which voices read as "rightwards arrow"
    "\ufe00-\ufe0f"  # variation selectors
    "\u200d\u20e3"  # zero-width joiner, combining keycap
    "\U000e0020-\U000e007f"  # tag characters (subdivision flags)
    "]+"
)
_LINK = re.compile(r"!?\[([^\]]*)\]\([^)]*\)")  # [text](url) -> text
_HTML_TAG = re.compile(r"</?[A-Za-z][A-Za-z0-9]*(?:\s+[^<>]*=[^<>]*)?\s*/?>")  # <b>, </i>, <a href=...>
_LIST_MARK = re.compile(r"^\s*(?:[-*+•·‣◦]|\d+[.)])\s+")  # bullets and "1." at a line start
_RULE = re.compile(r"^\s*[-*_=]{3,}\s*$")  # horizontal rules, setext underlines
_SYMBOLS = re.compile(r"[*#`~|<>\[\]\\^]+")  # markdown punctuation nobody wants read out
_UNDERSCORE_EMPHASIS = re.compile(r"(?<![A-Za-z0-9])_+|_+(?![A-Za-z0-9])")  # _it_, __bold__, but not snake_case
_CLAUSE_END = re.compile(r"[.!?,;:]$")


def clean_for_speech(text: str) -> str:
    """Speakable text; joins lines, so list items become a comma-separated run."""
    lines = []
    for line in text.splitlines():
        if _RULE.match(line):
            continue
        line = _LINK.sub(r"\1", line)
        line = _HTML_TAG.sub(" ", line)
        line = _LIST_MARK.sub("", line)
        line = _EMOJI.sub(" ", line)
        line = _SYMBOLS.sub(" ", line)
        line = _UNDERSCORE_EMPHASIS.sub(" ", line)
        line = " ".join(line.split())
        if line:
            lines.append(line)
    # A line break was a pause for the reader: keep it as one for the listener.
    joined = [line if i == len(lines) - 1 or _CLAUSE_END.search(line) else line + "," for i, line in enumerate(lines)]
    return " ".join(joined)


def is_speakable(text: str) -> bool:
    return any(ch.isalnum() for ch in text)
