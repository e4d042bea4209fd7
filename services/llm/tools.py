"""Function calling for local models: the prompt that offers tools, and the model's ``<tool_call>`` output parsed back.

Qwen2.5 (and the Hermes format it follows) answers a tool request with
``<tool_call>\\n{"name": ..., "arguments": {...}}\\n</tool_call>`` in its text. When the GGUF's chat template renders
tools itself (it mentions ``tools``), the messages and tools are passed to it as the OpenAI chat format has them;
otherwise the same Hermes block is written into the system message here, so any instruction model gets the offer in
one format. Either way the streamed text goes through ``ToolCallSplitter``: the words before and after a call are
streamed on, a call comes out whole once its closing tag (or the end of the reply) is seen.
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Generator, Iterator
from typing import Any

from services.common.messages import ToolCall
from services.llm.backends.base import GenerationRequest, Piece

log = logging.getLogger(__name__)

OPEN, CLOSE = "<tool_call>", "</tool_call>"
# Small models call whatever is offered (Qwen2.5-0.5B called get_weather for "what is two plus two?" without it).
CALL_ONLY_WHEN_NEEDED = (
    "\nCall a function only when the user's request needs what it does; otherwise answer directly in words."
)


def chat_tools(request: GenerationRequest) -> list[dict[str, Any]] | None:
    """The request's tools in the OpenAI chat format (``{"type": "function", "function": {...}}``), as offered."""
    if not request.tools or request.tool_choice == "none":
        return None
    if request.messages and request.messages[-1]["role"] == "tool":
        return None  # a local model answers from the result it was given (small ones would only call again)
    tools = request.tools
    if request.tool_choice not in (None, "auto", "required"):
        tools = [tool for tool in tools if tool["name"] == request.tool_choice] or tools  # one named function
    return [
        {
            "type": "function",
            "function": {
                "name": t["name"],
                "description": t.get("description", ""),
                "parameters": t.get("parameters") or {"type": "object", "properties": {}},
            },
        }
        for t in tools
    ]


def _arguments(text: str) -> Any:
    try:
        return json.loads(text or "{}")
    except json.JSONDecodeError:
        return text


def _hermes_system(tools: list[dict[str, Any]]) -> str:
    listed = "\n".join(json.dumps(tool) for tool in tools)
    return (
        "\n\n# Tools\n\nYou may call one or more functions to assist with the user query.\n\n"
        f"You are provided with function signatures within <tools></tools> XML tags:\n<tools>\n{listed}\n</tools>\n\n"
        "For each function call, return a json object with function name and arguments within <tool_call></tool_call>"
        ' XML tags:\n<tool_call>\n{"name": <function-name>, "arguments": <args-json-object>}\n</tool_call>'
    )


def prompt_messages(
    request: GenerationRequest, template_renders_tools: bool
) -> tuple[list[dict[str, Any]], list[dict[str, Any]] | None]:
    """(messages, tools) for llama.cpp's ``create_chat_completion``. Tools on offer and a template that renders them:
    tools and calls go to it as structured data. Otherwise plain messages: the offer is a Hermes block in the system
    message, and each call with its result is a system note (what small models answer from best: measured with
    Qwen2.5-0.5B, which repeats its call when the result comes as a ``<tool_response>`` turn)."""
    tools = chat_tools(request)
    if tools and template_renders_tools:
        messages = []
        for index, message in enumerate(request.messages):
            message = dict(message)
            if index == 0 and message["role"] == "system":
                message["content"] = (message.get("content") or "") + CALL_ONLY_WHEN_NEEDED
            if message.get("tool_calls"):
                message["tool_calls"] = [
                    {
                        "id": call["id"],
                        "type": "function",
                        "function": {"name": call["name"], "arguments": _arguments(call["arguments"])},
                    }
                    for call in message["tool_calls"]
                ]
            messages.append(message)
        return messages, tools
    plain: list[dict[str, Any]] = []
    calls: dict[str, str] = {}  # call id -> "name(arguments)"
    for message in request.messages:
        role, content = message["role"], message.get("content") or ""
        for call in message.get("tool_calls") or []:
            calls[call["id"]] = f"{call['name']}({call['arguments'] or '{}'})"
        if role == "tool":
            called = calls.get(message.get("tool_call_id") or "", "a function")
            role, content = "system", f"You called {called}; it returned: {content}. Now answer the user in words."
        if content:
            plain.append({"role": role, "content": content})
    if tools:
        if plain and plain[0]["role"] == "system":
            plain[0] = {
                "role": "system",
                "content": plain[0]["content"] + CALL_ONLY_WHEN_NEEDED + _hermes_system(tools),
            }
        else:
            plain.insert(0, {"role": "system", "content": _hermes_system(tools).strip()})
    return plain, None


def new_call_id() -> str:
    return "call_" + uuid.uuid4().hex[:20]


def parse_call(body: str) -> ToolCall | None:
    """One ``<tool_call>`` body: ``{"name": ..., "arguments": {...}}``; None when it is not that."""
    try:
        data = json.loads(body.strip())
    except json.JSONDecodeError:
        return None
    if not isinstance(data, dict) or not isinstance(data.get("name"), str):
        return None
    arguments = data.get("arguments", data.get("parameters", {}))
    if isinstance(arguments, str):
        arguments = _arguments(arguments)
    if not isinstance(arguments, dict):
        return None
    return ToolCall(id=new_call_id(), name=data["name"], arguments=json.dumps(arguments))


class ToolCallSplitter:
    """Streamed text in; text to pass on and whole calls out. Holds back only what may be the start of a tag.

    A reply that opens with a bare JSON object (small models often leave the tags out) is held until the object
    closes: a ``{"name", "arguments"}`` object is a call, anything else is text after all."""

    def __init__(self, offered: set[str] | None = None) -> None:
        self._offered = offered
        self._buffer = ""
        self._in_call = False
        self._started = False  # some text went out (a bare call counts only at the start of the reply)

    def push(self, text: str) -> tuple[str, list[ToolCall]]:
        self._buffer += text
        out, calls = "", list[ToolCall]()
        while True:
            if self._in_call:
                end = self._buffer.find(CLOSE)
                if end < 0:
                    return out, calls
                calls += self._call(self._buffer[:end])
                self._buffer, self._in_call = self._buffer[end + len(CLOSE) :], False
                continue
            if not self._started and not out:
                bare = self._bare_call()
                if bare is None:
                    return out, calls  # a JSON object still open: wait for its end
                if bare:
                    calls += bare
                    continue
            start = self._buffer.find(OPEN)
            if start >= 0:
                out += self._buffer[:start]
                self._buffer, self._in_call = self._buffer[start + len(OPEN) :], True
                continue
            tail = self._buffer[-(len(OPEN) - 1) :]
            keep = next((n for n in range(len(tail), 0, -1) if OPEN.startswith(tail[-n:])), 0)
            out += self._buffer[: len(self._buffer) - keep]
            self._buffer = self._buffer[len(self._buffer) - keep :]
            self._started = self._started or bool(out.strip())
            return out, calls

    def _bare_call(self) -> list[ToolCall] | None:
        """At the reply's start: [call] and the object consumed; [] when the text is no bare object; None: wait."""
        stripped = self._buffer.lstrip()
        if not stripped:
            return None
        if not stripped.startswith("{"):
            return []
        end = _object_end(stripped)
        if end is None:
            return None
        call = parse_call(stripped[:end])
        if call is not None and self._offered is not None and call.name not in self._offered:
            self._buffer = stripped[end:]
            log.warning("dropped a call to %r, a function not offered", call.name)
            return []
        if call is None:
            self._started = True  # JSON, but no call: it is text
            return []
        self._buffer = stripped[end:]
        return [call]

    def flush(self) -> tuple[str, list[ToolCall]]:
        """The end of the reply: an unclosed call is parsed as it stands; a held-back partial tag is text after all."""
        rest, self._buffer = self._buffer, ""
        if self._in_call:
            self._in_call = False
            return "", self._call(rest)
        if not self._started and rest.lstrip().startswith("{") and (call := parse_call(rest)) is not None:
            return "", [call]
        return rest, []

    def _call(self, body: str) -> list[ToolCall]:
        call = parse_call(body)
        if call is None or (self._offered is not None and call.name not in self._offered):
            log.warning("dropped a tool call the model wrote badly or to a function not offered: %r", body[:200])
            return []
        return [call]


def _object_end(text: str) -> int | None:
    """The index after the JSON object that ``text`` opens with; None while it is not closed yet."""
    depth, in_string, escaped = 0, False, False
    for index, char in enumerate(text):
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "{":
            depth += 1
        elif char == "}":
            depth -= 1
            if depth == 0:
                return index + 1
    return None


def split_tool_calls(pieces: Iterator[Piece], offered: set[str] | None = None) -> Generator[Piece, None, None]:
    """A backend's text pieces with the ``<tool_call>`` blocks taken out as ``Piece.calls``; a call of a function that
    was not offered (``offered``: the names) is dropped (Qwen2.5-0.5B made up ``get_weather_args``)."""
    splitter = ToolCallSplitter(offered)
    try:
        for piece in pieces:
            text, calls = splitter.push(piece.text)
            if piece.finish_reason is not None:
                rest, more = splitter.flush()
                text, calls = text + rest, calls + more
            if text or calls or piece.tokens or piece.finish_reason:
                yield Piece(text=text, tokens=piece.tokens, finish_reason=piece.finish_reason, calls=tuple(calls))
        rest, more = splitter.flush()
        if rest or more:
            yield Piece(text=rest, calls=tuple(more))
    finally:
        close = getattr(pieces, "close", None)
        if close is not None:
            close()  # the backend's own cleanup (its stream), when the caller stops early


def openai_message(message: dict[str, Any]) -> dict[str, Any]:
    """A stage message in the OpenAI chat format (its tool calls as ``{id, type, function: {name, arguments}}``)."""
    if not message.get("tool_calls"):
        return message
    calls = [
        {"id": c["id"], "type": "function", "function": {"name": c["name"], "arguments": c["arguments"] or "{}"}}
        for c in message["tool_calls"]
    ]
    return {**message, "content": message.get("content") or None, "tool_calls": calls}


class StreamedCalls:
    """Tool calls of an OpenAI chat stream, which come in pieces by index (id and name first, then the arguments)."""

    def __init__(self) -> None:
        self._calls: dict[int, dict[str, str]] = {}

    def add(self, deltas: Any) -> None:
        for delta in deltas:
            call = self._calls.setdefault(delta.index, {"id": "", "name": "", "arguments": ""})
            call["id"] = delta.id or call["id"]
            if delta.function is not None:
                call["name"] += delta.function.name or ""
                call["arguments"] += delta.function.arguments or ""

    def whole(self) -> tuple[ToolCall, ...]:
        return tuple(
            ToolCall(id=c["id"] or new_call_id(), name=c["name"], arguments=c["arguments"] or "{}")
            for _, c in sorted(self._calls.items())
            if c["name"]
        )
