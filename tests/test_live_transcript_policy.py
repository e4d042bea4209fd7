"""Unit: how revising STT partials become append-only live deltas (services/gateway/live_transcript.py)."""

from services.gateway.live_transcript import LiveTranscript


def test_words_are_shown_once_two_partials_agree_and_a_revision_is_not_shown():
    live = LiveTranscript()
    assert live.update("Tell me up.") == ""  # one partial: nothing is certain yet
    assert live.update("Tell me about the weather") == "Tell me"  # "up." was revised away before it was shown
    assert live.update("Tell me about the weather in London") == " about the weather"
    assert live.update("Tell me about the weather in London today.") == " in London"
    assert live.shown == ["Tell", "me", "about", "the", "weather", "in", "London"]


def test_case_and_punctuation_do_not_count_as_disagreement():
    live = LiveTranscript()
    live.update("what is the capital")
    assert live.update("What is the capital, of") == "What is the capital,"  # the newest spelling


def test_partials_that_contradict_what_is_shown_wait_until_they_agree_again():
    live = LiveTranscript()
    live.update("What is a capital")
    assert live.update("What is a capital of") == "What is a capital"
    assert live.update("What is the capital of France") == ""  # agrees with the last partial only on "What is"
    assert live.update("What is the capital of France today") == ""  # stable "What is the …" contradicts "a"
    assert live.update("What is a capital of France today") == ""  # back to "a", but no agreement with the last one yet
    assert live.update("What is a capital of France today and") == " of France today"
