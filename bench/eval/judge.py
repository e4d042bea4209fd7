"""The automatic judge: is a reply right (required words present, forbidden ones absent), brief, and fit to be spoken?

Words are compared after ``bench.eval.text.words`` (numbers as digits), as whole words or phrases: "8" does not match
"18", "million" matches "millions" (a required word also matches its plural, +s or +es)."""

from __future__ import annotations

import re
import unicodedata
from dataclasses import asdict, dataclass, field

from bench.eval.questions import Question
from bench.eval.text import words

# A sentence ends at . ! or ? followed by a space or the end; these abbreviations do not end one.
_ABBREVIATIONS = ("mr.", "mrs.", "ms.", "dr.", "st.", "e.g.", "i.e.", "etc.", "vs.", "approx.", "no.")
_SENTENCE_END = re.compile(r"[.!?]+(?=\s|$)")
_MARKDOWN = re.compile(r"\*\*|__|`|^\s*#{1,6}\s|\[[^\]]*\]\([^)]*\)|(?<![\w*])\*\S[^*\n]*\*|^\s*>", re.MULTILINE)
# A list: lines that start with a bullet or a number, or a numbered run inline ("1. … 2. …", as a TTS would read it).
_LIST = re.compile(r"^\s*(?:[-*•]|\d{1,2}[.)])\s+\S|•|(?:^|\s)1[.)]\s.*\s2[.)]\s", re.MULTILINE | re.DOTALL)
WORDS_PER_SENTENCE = 25  # brief: also at most this many words per allowed sentence (a run-on is not brief)


_REPEAT = re.compile(
    r"\b(?:say (?:it|that) again|repeat (?:it|that|the question|yourself)|(?:didn't|did not|couldn't|could not) "
    r"(?:catch|hear|understand) (?:that|you|it|what)|come again)\b",
    re.IGNORECASE,
)


def asks_to_repeat(reply: str) -> bool:
    """The assistant asked the user to say it again (what it should do when it did not hear a question right)."""
    return bool(_REPEAT.search(reply))


@dataclass
class Verdict:
    correct: bool
    brief: bool
    missing: list[str] = field(default_factory=list)  # required groups not found
    forbidden: list[str] = field(default_factory=list)  # forbidden words found
    sentences: int = 0
    words: int = 0
    format: list[str] = field(default_factory=list)  # "markdown", "list", "emoji"
    repeat: bool = False  # the reply asks the user to say it again

    def to_dict(self) -> dict:
        return asdict(self)


def _contains(haystack: list[str], phrase: list[str], plural: bool) -> bool:
    n = len(phrase)
    if n == 0:
        return False
    for start in range(len(haystack) - n + 1):
        if all(_same(h, p, plural) for h, p in zip(haystack[start : start + n], phrase, strict=True)):
            return True
    return False


def _same(word: str, wanted: str, plural: bool) -> bool:
    return word == wanted or (plural and not wanted[0].isdigit() and word in (wanted + "s", wanted + "es"))


def sentences(text: str) -> int:
    """Sentences in ``text``: pieces ending at . ! ? (not after a listed abbreviation or inside "2.5"), with a word."""
    masked = text
    for abbreviation in _ABBREVIATIONS:
        masked = re.sub(re.escape(abbreviation), abbreviation.replace(".", "_"), masked, flags=re.IGNORECASE)
    return sum(1 for piece in _SENTENCE_END.split(masked) if re.search(r"\w", piece))


def emoji(text: str) -> bool:
    """Pictographs, dingbats and the emoji variation selector (not °, ©, ™ and other symbols a TTS can say)."""
    for char in text:
        code = ord(char)
        if 0x1F000 <= code <= 0x1FAFF or 0x2600 <= code <= 0x27BF or code == 0xFE0F:
            return True
        if unicodedata.category(char) == "So" and code >= 0x2B00 and code not in (0x3030, 0x303D):
            return True
    return False


def format_violations(text: str) -> list[str]:
    found = []
    if _MARKDOWN.search(text):
        found.append("markdown")
    if _LIST.search(text):
        found.append("list")
    if emoji(text):
        found.append("emoji")
    return found


def judge(question: Question, reply: str) -> Verdict:
    said = words(reply)
    missing = [
        group for group in question.require if not any(_contains(said, words(alt), True) for alt in group.split("|"))
    ]
    forbidden = [term for term in question.forbid if _contains(said, words(term), False)]
    count, n_words = sentences(reply), len(re.findall(r"[\w']+", reply))
    max_words = question.max_words or WORDS_PER_SENTENCE * question.max_sentences
    brief = count <= question.max_sentences and n_words <= max_words
    correct = bool(said) and not missing and not forbidden
    return Verdict(correct, brief, missing, forbidden, count, n_words, format_violations(reply), asks_to_repeat(reply))
