"""How a streamed reply is cut into pieces for TTS: the first as early as sense allows, none mid-number."""

from __future__ import annotations

from services.gateway.chunking import ClauseChunker


def feed(chunker: ClauseChunker, tokens: list[str]) -> list[str]:
    pieces = []
    for token in tokens:
        pieces += chunker.push(token)
    return pieces + chunker.flush()


def test_first_piece_is_cut_at_the_first_clause_then_pieces_need_a_few_words():
    tokens = [
        "Sure",
        ",",
        " the",
        " capital",
        " of",
        " France",
        " is",
        " Paris",
        ".",
        " It",
        " is",
        ",",
        " yes",
        ",",
        " big",
        ".",
    ]
    assert feed(ClauseChunker(), tokens) == ["Sure,", "the capital of France is Paris.", "It is, yes, big."]


def test_a_run_on_reply_without_punctuation_still_starts_early():
    tokens = [" The", " largest", " is"] * 12
    pieces = feed(ClauseChunker(first_max_words=10, max_words=25), tokens)
    assert len(pieces[0].split()) == 10
    assert all(len(p.split()) <= 25 for p in pieces)
    assert " ".join(pieces).split() == "".join(tokens).split()


def test_numbers_and_abbreviations_are_not_cut():
    tokens = [" Pi", " is", " 3", ".", "14", " and", " Dr", ".", " Smith", " agrees", ".", " Good", "."]
    assert feed(ClauseChunker(), tokens) == ["Pi is 3.14 and Dr. Smith agrees.", "Good."]
