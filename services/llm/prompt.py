"""The default prompt for spoken replies: a system message and a few example turns that show the shape of an answer.

Measured on 33 mixed questions (facts, arithmetic, definitions, how-to, follow-ups; docs/models.md), greedy: with the
system message alone, Qwen2.5-Coder-0.5B answered both how-to questions with a markdown list of steps (24 right, 3
longer than two sentences); with the two example turns below all 33 were plain, at most two sentences, 26 right
(SmolLM2-135M at 0.2: 19 right with the previous prompt, 21 with this one, and no more "Boil: Boil: Boil:" loops).
Examples that contain numbers leaked into answers ("seven times eight is fifty-four"), so these have none to copy, and
asking for numbers or units as words cost three right answers: the TTS text cleanup (services/tts/spoken_text.py)
speaks symbols and units instead. The examples follow the system message, so llama.cpp's prompt-prefix reuse keeps
them cached after the first turn: they cost nothing per turn.
"""

from __future__ import annotations

from typing import Any

SPOKEN_SYSTEM_PROMPT = (
    "You are a voice assistant. Everything you write is spoken aloud, so reply with one or two short, plain sentences. "
    "Never use lists, numbered steps, headings, markdown, code or emoji. Answer the question directly and correctly."
)

SPOKEN_EXAMPLES: tuple[dict[str, str], ...] = (
    {"role": "user", "content": "How do I plant a tree?"},
    {
        "role": "assistant",
        "content": "Dig a hole twice as wide as the roots, set the tree in, fill it with soil and water it well.",
    },
    {"role": "user", "content": "What is the tallest mountain on Earth?"},
    {"role": "assistant", "content": "Mount Everest is the tallest mountain on Earth."},
)


def default_prefix(system_prompt: str, examples: bool) -> list[dict[str, Any]]:
    """What goes before a conversation that brings no system message of its own."""
    return [{"role": "system", "content": system_prompt}, *(dict(m) for m in SPOKEN_EXAMPLES if examples)]


def with_default_prompt(messages: list[dict[str, Any]], system_prompt: str, examples: bool) -> list[dict[str, Any]]:
    """``messages`` unchanged if they start with a system message (the client's instructions), else after the default.
    A system note later on (the gateway's "answer in French", a tool result) keeps the default prompt."""
    if messages and messages[0]["role"] == "system":
        return messages
    return default_prefix(system_prompt, examples) + messages
