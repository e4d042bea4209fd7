"""What the TTS says for LLM text (services/tts/spoken_text.py): a pure function, tested on its own."""

from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from services.tts.spoken_text import spoken_text


@pytest.mark.parametrize(
    ("text", "said"),
    [
        # markdown and emoji
        ("**Paris** is the *capital* of France! 🎉", "Paris is the capital of France!"),
        ("Use `print()` to show __it__.", "Use print() to show it."),
        ("# Tea\nBoil water", "Tea. Boil water"),
        # lists become sentences
        (
            "To boil an egg:\n1. **Fill a pot** with water\n2) Bring it to a boil\n- Add the egg",
            "To boil an egg: Fill a pot with water. Bring it to a boil. Add the egg.",
        ),
        ("- Red,\n- blue,\n- and green!", "Red, blue, and green!"),  # an item's own punctuation stays
        # links
        ("See [the docs](https://example.com/a/b).", "See the docs."),
        ("Go to https://www.python.org/downloads/.", "Go to python.org."),
        ("Open <https://x.io> or www.bbc.co.uk today", "Open x.io or bbc.co.uk today"),
        ("Visit http://192.168.0.1/admin now", "Visit a link now"),
        ("[](https://example.com)", "example.com"),
        # units, symbols, money
        ("It is 20 °C, or 68°F.", "It is 20 degrees Celsius, or 68 degrees Fahrenheit."),
        ("About 50% of them, 1 km away.", "About 50 percent of them, 1 kilometer away."),
        ("At 30 km/h it takes 2 hrs to go 60 km.", "At 30 kilometers per hour it takes 2 hours to go 60 kilometers."),
        (
            "Add 250 ml and 2 kg; the room is 3 m wide.",
            "Add 250 milliliters and 2 kilograms; the room is 3 meters wide.",
        ),
        ("It costs $5, $1, €2.50 or £1,000.", "It costs 5 dollars, 1 dollar, 2 euros 50 or 1,000 pounds."),
        ("15 + 27 = 42", "15 plus 27 equals 42"),
        ("3 x 4, 3*4, 10 / 2 and 5 - 3", "3 times 4, 3 times 4, 10 divided by 2 and 5 minus 3"),
        ("It takes 10-20 minutes.", "It takes 10 to 20 minutes."),
        # abbreviations
        ("Fruit, e.g. apples, i.e. red ones.", "Fruit, for example apples, that is red ones."),
        (
            "Apples, pears, etc. are fruit. So are plums etc.",
            "Apples, pears, et cetera are fruit. So are plums et cetera.",
        ),
        ("Dr. Smith vs. Mr. Jones & Mrs. Lee", "Doctor Smith versus Mister Jones and Missus Lee"),
        ("It is No. 5 on the list.", "It is number 5 on the list."),
        # what must stay as it is
        ("The 1990s were 30 years ago.", "The 1990s were 30 years ago."),
        ("It was on 2024-05-01 at 5 pm.", "It was on 2024-05-01 at 5 pm."),
        ("Call the snake_case function.", "Call the snake_case function."),
        ("The capital of France is Paris.", "The capital of France is Paris."),
        ("I have 5 men and 4 guests.", "I have 5 men and 4 guests."),
    ],
)
def test_spoken_text(text, said):
    assert spoken_text(text) == said


def test_a_piece_of_only_markup_and_emoji_says_nothing():
    assert spoken_text("🎉🇫🇷😀 **\n---\n##") == ""


@given(st.text(max_size=200))
def test_any_text_gives_single_spaced_text_without_markup(text):
    said = spoken_text(text)
    assert said == said.strip() and "  " not in said and "\n" not in said
    assert not any(mark in said for mark in ("*", "`", "#", "[", "]"))
