"""The eval's pure logic: number-aware words and WER, the judge, the question file, rows and the plan (bench/eval)."""

from __future__ import annotations

from typing import Any

import pytest

from bench.eval.judge import format_violations, judge, sentences
from bench.eval.questions import KINDS, Question, QuestionError, Selection, load, parse
from bench.eval.run import RowError, parse_row, plan
from bench.eval.text import wer, word_errors, words
from bench.eval.voices import VOICES


def q(require: tuple[str, ...], forbid: tuple[str, ...] = (), **extra) -> Question:
    return Question("t", "fact", "a question", require, forbid, **extra)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("One hundred minus thirty-five is sixty-five.", ["100", "minus", "35", "is", "65"]),
        ("a hundred and twenty", ["120"]),
        ("two thousand and twenty four", ["2024"]),
        ("One, two, three, four, five.", ["1", "2", "3", "4", "5"]),  # a count stays a count
        ("about 2.1 million people", ["about", "2.1", "million", "people"]),
        ("1,000 and 5", ["1000", "and", "5"]),
        ("What's the colour?", ["what", "is", "the", "color"]),
        ("twenty one", ["21"]),
    ],
)
def test_words_reads_numbers(text: str, expected: list[str]) -> None:
    assert words(text) == expected


def test_wer_counts_numbers_as_words_or_digits_the_same() -> None:
    assert word_errors("What is seven times eight?", "What is 7 times 8?") == (0, 5)
    assert word_errors("Who wrote Romeo and Juliet?", "Rote Romeo and Juliet") == (2, 5)  # "who" lost, "wrote" wrong
    assert wer([("a b c d", "a b c d"), ("a b", "a x")]) == round(1 / 6, 4)
    assert wer([]) is None


def test_judge_required_groups_numbers_and_plurals() -> None:
    assert judge(q(("56",)), "Seven times eight is fifty-six.").correct
    assert judge(q(("56",)), "It is 56.").correct
    assert not judge(q(("8",)), "A spider has 18 legs.").correct  # whole words: 8 is not in 18
    assert judge(q(("million",)), "Paris has about two millions people.").correct
    v = judge(q(("plant", "light|sunlight")), "Plants use energy.")
    assert not v.correct and v.missing == ["light|sunlight"]
    assert judge(q(("1 2 3 4 5",)), "One, two, three, four, five.").correct


def test_judge_forbidden_words_make_a_reply_wrong() -> None:
    v = judge(q(("7",), ("5 continents",)), "Some say five continents, others 7.")
    assert not v.correct and v.forbidden == ["5 continents"]
    assert not judge(q(("paris",)), "").correct  # no reply is never right


def test_brevity_sentences_words_and_asked_limits() -> None:
    assert sentences("Paris is the capital. It has 2.1 million people!") == 2
    assert sentences("Mr. Smith lives at No. 5, e.g. in London.") == 1
    assert judge(q(("paris",)), "It is Paris. A big city.").brief
    assert not judge(q(("paris",)), "It is Paris. A big city. With a tower.").brief
    assert not judge(q(("paris",), max_sentences=1), "It is Paris. A big city.").brief
    assert not judge(q(("green",), max_words=3), "Grass is usually green in colour.").brief
    run_on = "Romeo and Juliet, " * 20 + "by Shakespeare."
    assert not judge(q(("shakespeare",)), run_on).brief  # one sentence, but not brief


@pytest.mark.parametrize(
    ("reply", "found"),
    [
        ("Paris is the capital of France.", []),
        ("Water boils at 100 °C, © 2024 ™.", []),  # symbols a TTS can say are not emoji
        ("Here is how: 1. **Use soap** 2. Rinse.", ["markdown", "list"]),
        ("Steps:\n- wet your hands\n- use soap", ["list"]),
        ("Use `soap`.", ["markdown"]),
        ("Great question! 😊", ["emoji"]),
        ("Sunny ☀️ today", ["emoji"]),
        ("# Title\nText", ["markdown"]),
    ],
)
def test_format_violations(reply: str, found: list[str]) -> None:
    assert format_violations(reply) == found


def test_the_question_file_is_valid_and_varied() -> None:
    questions = load()
    assert len(questions) >= 40
    assert {x.kind for x in questions} == set(KINDS)
    assert sum(x.subset for x in questions) == 5
    assert all(x.context for x in questions if x.kind == "followup")


@pytest.mark.parametrize(
    ("entries", "message"),
    [
        ("not a list", "must be a list"),
        ([{"id": "a", "kind": "fact", "ask": "x"}], "require names at least one group"),
        ([{"id": "a", "kind": "joke", "ask": "x", "require": ["y"]}], "kind 'joke'"),
        ([{"id": "a", "kind": "fact", "ask": "x", "require": ["y"], "extra": 1}], "unknown fields"),
        (
            [{"id": "a", "kind": "followup", "ask": "x", "require": ["y"]}],
            r"followup \(and only a followup\) has a context",
        ),
        ([{"id": "a", "kind": "fact", "ask": "x", "require": ["y"]}] * 2, "duplicate ids"),
        ([{"id": "a", "kind": "fact", "ask": "x", "require": ["y"], "max_words": 0}], "max_words"),
    ],
)
def test_a_malformed_question_file_is_refused_by_entry(entries: object, message: str) -> None:
    with pytest.raises(QuestionError, match=message):
        parse(entries)


def test_selection_and_plan() -> None:
    questions = load()
    assert [x.id for x in Selection(ids=["capital-france", "bees"]).apply(questions)] == ["capital-france", "bees"]
    assert {x.kind for x in Selection(kinds=["followup"]).apply(questions)} == {"followup"}
    with pytest.raises(QuestionError, match="unknown question ids"):
        Selection(ids=["nope"]).apply(questions)
    chosen = Selection(limit=6).apply(questions)
    conversations = plan(chosen, VOICES, 2)
    assert len(conversations) == 12
    assert {c.voice.name for c in conversations} == {v.name for v in VOICES}  # the rotation reaches every voice
    assert [c.voice for c in conversations[:2]] == VOICES[:2]


def test_rows() -> None:
    row = parse_row("fast:S2S_PRESET=fast, S2S_LLM_TEMPERATURE=0")
    assert (row.name, row.env) == ("fast", {"S2S_PRESET": "fast", "S2S_LLM_TEMPERATURE": "0"})
    assert parse_row("default").env == {}
    for bad in (":S2S_X=1", "r:S2S_X", "r:not a name=1"):
        with pytest.raises(RowError):
            parse_row(bad)


def test_a_request_to_repeat_is_counted_and_is_not_an_answer() -> None:
    v = judge(q(("paris",)), "Sorry, I didn't catch that. Could you say it again?")
    assert v.repeat and not v.correct
    assert not judge(q(("paris",)), "Paris. I repeat, Paris.").repeat


def test_a_live_turn_is_settled_once_its_last_transcript_is_answered() -> None:
    from bench.eval.live import LiveTurn, _note

    turn = LiveTurn(clip_start_ms=1000.0)
    events: list[dict[str, Any]] = [
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 1700},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 2500},
        {"type": "input_audio_buffer.committed"},
        {"type": "conversation.item.input_audio_transcription.completed", "transcript": "What is"},
        {"type": "response.created"},
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 2900},  # the user goes on: barge-in
        {"type": "response.done", "response": {"status": "cancelled"}},
        {"type": "input_audio_buffer.speech_stopped", "audio_end_ms": 4000},
        {"type": "input_audio_buffer.committed"},
        {"type": "conversation.item.input_audio_transcription.completed", "transcript": "two plus two?"},
        {"type": "response.created"},
        {"type": "response.output_audio.delta"},
        {"type": "response.output_audio_transcript.done", "transcript": "Four."},
    ]
    for event in events:
        assert not turn.settled(), event
        _note(turn, event, 5.0)
    _note(turn, {"type": "response.done", "response": {"status": "completed"}, "timings": {"x": 1.0}}, 6.0)
    assert turn.settled()
    d = turn.to_dict()
    assert (d["heard"], d["reply"], d["status"], d["utterances"]) == ("What is two plus two?", "Four.", "completed", 2)
    assert d["segments_ms"] == [[700, 1500], [1900, 3000]]


def test_an_empty_transcript_settles_the_turn_without_a_reply() -> None:
    from bench.eval.live import LiveTurn, _note

    turn = LiveTurn()
    for event in (
        {"type": "input_audio_buffer.speech_started", "audio_start_ms": 0},
        {"type": "input_audio_buffer.committed"},
        {"type": "conversation.item.input_audio_transcription.completed", "transcript": ""},
    ):
        _note(turn, event, 0.0)
    assert turn.settled() and turn.status is None
