"""The language of a reply: the one the user spoke (Whisper detects it per turn), else the one the session pinned.

The LLM is told to answer in it by a system note after the conversation (a non-English reply only: English is every
model's default), and each TTS piece names it, so the TTS service speaks it with a voice for that language.
"""

from __future__ import annotations

from services.common.messages import ChatMessage

# Whisper's codes (ISO 639-1) of the languages most asked for; another code is named by its code in the note.
NAMES = {
    "ar": "Arabic", "ca": "Catalan", "cs": "Czech", "da": "Danish", "de": "German", "el": "Greek", "en": "English",
    "es": "Spanish", "fa": "Persian", "fi": "Finnish", "fr": "French", "he": "Hebrew", "hi": "Hindi",
    "hu": "Hungarian", "id": "Indonesian", "it": "Italian", "ja": "Japanese", "ko": "Korean", "nl": "Dutch",
    "no": "Norwegian", "pl": "Polish", "pt": "Portuguese", "ro": "Romanian", "ru": "Russian", "sv": "Swedish",
    "th": "Thai", "tr": "Turkish", "uk": "Ukrainian", "vi": "Vietnamese", "zh": "Chinese",
}  # fmt: skip


def reply_language(pinned: str | None, heard: str | None) -> str | None:
    """The language to answer in: what the user's last spoken turn was in, else the session's pinned language."""
    return heard or pinned


def language_note(language: str | None) -> str | None:
    """The system note that makes the LLM answer in ``language``; None for English or an unknown language."""
    if not language or language.split("-")[0] == "en":
        return None
    name = NAMES.get(language, f"the language with the code '{language}'")
    return f"The user speaks {name}. Answer in {name} only."


def language_notes(language: str | None) -> list[ChatMessage]:
    """The note as the last message of an LLM request (none for English): right before the answer is where a small
    model heeds it (Qwen2.5-Coder-0.5B answered "Comment faire du pain ?" in English with the note in the first system
    message, in French with it last). NB: the LLM service takes any system message as the client's instructions and
    then leaves out its default spoken-style prompt (services/llm/prompt.py ``with_default_prompt``)."""
    note = language_note(language)
    return [ChatMessage(role="system", content=note)] if note else []
