"""The TTS service speaks a piece in its language: the own voice for its own, an espeak-ng voice for the others."""

from __future__ import annotations

import asyncio
import json

import pytest
import websockets

from services.tts.backends.espeak import EspeakBackend
from services.tts.settings import TtsSettings
from services.tts.voices import Voices, build_voices
from tests.test_tts import start_tts
from tests.transcribe import transcribe_detect, words


@pytest.fixture(scope="module")
def english() -> EspeakBackend:
    return EspeakBackend(TtsSettings(backend="espeak"))


def test_the_own_voice_speaks_its_own_language_and_unnamed_pieces(english):
    voices = build_voices(english, TtsSettings())
    assert english.language == "en"
    assert voices.for_language(None) is english
    assert voices.for_language("en") is english
    assert voices.for_language("EN-gb") is english


def test_another_language_gets_an_espeak_voice_built_once(english):
    voices = build_voices(english, TtsSettings())
    french = voices.for_language("fr")
    assert french is not english and french.language == "fr"
    assert voices.for_language("fr") is french
    assert voices.for_language("es").language == "es"


def test_a_language_without_a_voice_or_a_bad_code_falls_back_to_the_own_voice(english):
    voices = build_voices(english, TtsSettings())
    assert voices.for_language("qz") is english  # a well-formed code espeak-ng has no voice for
    assert voices.for_language("-v en ../../etc") is english  # never reaches espeak-ng's command line


def test_fallback_off_keeps_the_own_voice(english):
    voices = build_voices(english, TtsSettings(language_fallback="none"))
    assert voices.for_language("fr") is english
    assert Voices(english, None).for_language("de") is english


async def _speak(url: str, text: str, language: str | None) -> tuple[bytes, int, list[dict]]:
    audio, rate, messages = bytearray(), 0, []
    async with websockets.connect(url) as ws:
        speak = {"type": "tts.speak", "request_id": "r1", "text": text}
        await ws.send(json.dumps(speak | ({"language": language} if language else {})))
        async for frame in ws:
            if isinstance(frame, bytes):
                audio += frame
                continue
            message = json.loads(frame)
            messages.append(message)
            if message["type"] == "tts.started":
                rate = message["sample_rate"]
            if message["type"] == "tts.done":
                return bytes(audio), rate, messages
    raise AssertionError("the connection closed before tts.done")


def test_piper_service_speaks_a_spanish_piece_in_spanish():
    """piper's joe voice is English only: the Spanish piece is spoken by espeak-ng's Spanish voice, and a listener
    that detects the language hears Spanish."""
    process, url = start_tts("piper")
    with process:
        audio, rate, messages = asyncio.run(_speak(url, "La capital de España es Madrid.", "es"))
        english, english_rate, _ = asyncio.run(_speak(url, "The capital of Spain is Madrid.", None))
    assert [m["type"] for m in messages] == ["tts.started", "tts.done"], messages
    text, language = transcribe_detect(audio, rate)
    assert language == "es", (language, text)
    assert "capital" in words(text), text  # espeak-ng's "Madrid" is heard as "Manlín"
    assert english_rate == 22050 and transcribe_detect(english, english_rate)[1] == "en"
