"""What the voice says for a piece of LLM text: written conventions turned into words a listener understands.

On top of ``clean_for_speech`` (markdown symbols, emoji, HTML; services/tts/cleanup.py) this turns list items and
headings into sentences, links into their text or their site's name, and symbols, units and common abbreviations into
words ("5 km" → "5 kilometers", "20 °C" → "20 degrees Celsius", "e.g." → "for example", "$5" → "5 dollars"). Digits
stay digits: every voice here reads them as numbers. A pure function of the text, applied to each piece the TTS speaks.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from urllib.parse import urlsplit

from services.tts.cleanup import clean_for_speech

_MD_LINK = re.compile(r"!?\[([^\]]*)\]\(([^)\s]*)\)")  # [text](url); an image's alt text
# A bare URL (or www. address) without the punctuation after it; angle brackets of an autolink go too.
_URL = re.compile(r"<?((?:https?://|www\.)[^\s<>()\"']*[^\s<>()\"'.,;:!?])>?", re.IGNORECASE)
_ITEM = re.compile(r"^(\s*)(?:[-*+•·‣◦]|\d+[.)]|#{1,6})\s+(.*\S)\s*$")  # a list item or a heading, one line
_END = re.compile(r"[.!?:;,]$")
_NUM = r"(\d+(?:[.,]\d+)*)"
_SPACE_BEFORE_PUNCTUATION = re.compile(r"\s+([.,!?;:])(?=\s|$)")


def _site(url: str) -> str:
    """A URL as heard: its host without "www." ("a link" when there is no short host to say)."""
    host = urlsplit(url if "://" in url else "http://" + url).hostname or ""
    host = host.removeprefix("www.")
    if not host or len(host) > 30 or not re.search(r"[a-z]", host):  # an IP address or a long generated host
        return "a link"
    return host


def _links(text: str) -> str:
    text = _MD_LINK.sub(lambda m: m.group(1) or _site(m.group(2)), text)
    return _URL.sub(lambda m: _site(m.group(1)), text)


def _sentences(text: str) -> str:
    """List items and headings become sentences: each ends with a full stop unless it has its own punctuation."""
    lines = []
    for line in text.splitlines():
        item = _ITEM.match(line)
        if item:
            body = item.group(2)
            line = item.group(1) + body + ("" if _END.search(body.rstrip("*_` ")) else ".")
        lines.append(line)
    return "\n".join(lines)


def _unit(singular: str, plural: str | None = None) -> Callable[[re.Match[str]], str]:
    def say(m: re.Match[str]) -> str:
        return f"{m.group(1)} {singular if m.group(1) == '1' else plural or singular + 's'}"

    return say


# After a number: unit -> words. Single letters that are often something else (s, h, l, m without a space) are left.
_UNITS: list[tuple[str, Callable[[re.Match[str]], str]]] = [
    (r"\s?°\s?C\b", _unit("degree Celsius", "degrees Celsius")),
    (r"\s?°\s?F\b", _unit("degree Fahrenheit", "degrees Fahrenheit")),
    (r"\s?°", _unit("degree")),
    (r"\s?%", lambda m: f"{m.group(1)} percent"),
    (r"\s?km/h\b|\s?kph\b", _unit("kilometer per hour", "kilometers per hour")),
    (r"\s?mph\b", _unit("mile per hour", "miles per hour")),
    (r"\s?m/s\b", _unit("meter per second", "meters per second")),
    (r"\s?km\b", _unit("kilometer")),
    (r"\s?cm\b", _unit("centimeter")),
    (r"\s?mm\b", _unit("millimeter")),
    (r" m\b", _unit("meter")),
    (r"\s?kg\b", _unit("kilogram")),
    (r"\s?mg\b", _unit("milligram")),
    (r" g\b", _unit("gram")),
    (r"\s?lbs?\b", _unit("pound")),
    (r"\s?ml\b|\s?mL\b", _unit("milliliter")),
    (r" L\b", _unit("liter")),
    (r"\s?ft\b", _unit("foot", "feet")),
    (r"\s?mi\b", _unit("mile")),
    (r"\s?hrs?\b", _unit("hour")),
    (r"\s?mins?\b", _unit("minute")),
    (r"\s?secs?\b", _unit("second")),
]
_UNIT_PATTERNS = [(re.compile(_NUM + pattern), say) for pattern, say in _UNITS]

_CURRENCY = {"$": ("dollar", "dollars"), "€": ("euro", "euros"), "£": ("pound", "pounds")}
_MONEY = re.compile(r"([$€£])\s?(\d+(?:,\d{3})*)(?:\.(\d\d))?\b")

_BETWEEN_NUMBERS = [  # symbols that mean a word only between two numbers
    (re.compile(r"(?<=\d)\s*\+\s*(?=\d)"), " plus "),
    (re.compile(r"(?<=\d)\s+[-−–]\s+(?=\d)"), " minus "),
    (re.compile(r"(?<=\d)\s*[×*]\s*(?=\d)|(?<=\d)\s+x\s+(?=\d)"), " times "),
    (re.compile(r"(?<=\d)\s*÷\s*(?=\d)|(?<=\d)\s+/\s+(?=\d)"), " divided by "),
    (re.compile(r"(?<=\d)\s*=\s*(?=\d)"), " equals "),
    (re.compile(r"(?<![\d-])(\d+)[-–](\d+)(?![\d-])"), r"\1 to \2"),  # a range (10-20), not a date (2024-05-01)
]

_ABBREVIATIONS = [
    (re.compile(r"\be\.\s?g\.,?", re.IGNORECASE), "for example"),
    (re.compile(r"\bi\.\s?e\.,?", re.IGNORECASE), "that is"),
    (re.compile(r"\betc\.(?=\s+[a-z])"), "et cetera"),
    (re.compile(r"\betc\."), "et cetera."),
    (re.compile(r"\bvs\.?(?=\s)"), "versus"),
    (re.compile(r"\bapprox\.(?=\s)"), "approximately"),
    (re.compile(r"\bDr\.(?=\s|$)"), "Doctor"),
    (re.compile(r"\bMr\.(?=\s|$)"), "Mister"),
    (re.compile(r"\bMrs\.(?=\s|$)"), "Missus"),
    (re.compile(r"\bNo\.\s?(?=\d)"), "number "),
    (re.compile(r"\s&\s"), " and "),
]


def _money(m: re.Match[str]) -> str:
    one, many = _CURRENCY[m.group(1)]
    amount = f"{m.group(2)} {one if m.group(2) == '1' else many}"
    cents = m.group(3)
    return f"{amount} {int(cents)}" if cents and cents != "00" else amount


def spoken_text(text: str) -> str:
    """``text`` as it should be said: plain sentences, no markup, symbols and abbreviations in words."""
    text = _sentences(_links(text))
    for pattern, words in _BETWEEN_NUMBERS:  # before the cleanup, which drops "*"
        text = pattern.sub(words, text)
    text = clean_for_speech(text)
    text = _MONEY.sub(_money, text)
    for pattern, say in _UNIT_PATTERNS:
        text = pattern.sub(say, text)
    for pattern, words in _ABBREVIATIONS:
        text = pattern.sub(words, text)
    text = " ".join(text.split())
    return _SPACE_BEFORE_PUNCTUATION.sub(r"\1", text)  # "**Boil water**." was cleaned to "Boil water ."
