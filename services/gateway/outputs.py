"""What a reply may be besides speech: a text reply, and function calls. Pure helpers of the ``Replier``.

A reply's settings are the session's (``session.update``) unless its ``response.create`` overrides them:
``output_modalities`` (``["text"]``: no TTS, the words come as ``response.output_text.*``), ``tools`` and
``tool_choice`` (passed to the LLM). A call the LLM makes becomes a ``function_call`` output item of the response;
the client runs it and answers with a ``function_call_output`` item and a new ``response.create``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common import realtime as rt
from services.common import realtime_server as ev
from services.common.messages import LlmToolCall, ToolSpec
from services.gateway.language import reply_language
from services.gateway.session_state import SessionState


@dataclass
class ReplyOutputs:
    """One reply's shape and what it produced besides audio."""

    text_only: bool = False  # output_modalities ["text"]: no TTS
    tools: list[ToolSpec] | None = None  # offered to the LLM
    tool_choice: str | None = None
    message_open: bool = False  # the assistant message item was announced (output_item.added)
    text: str = ""  # a text reply's words so far
    calls: list[ev.Item] = field(default_factory=list)  # function_call items, in order
    language: str | None = None  # what the reply is in: the user's last spoken language, else the pinned one

    @classmethod
    def of(cls, config: SessionState, options: rt.ResponseOptions | None) -> ReplyOutputs:
        modalities = (options.output_modalities if options else None) or config.output_modalities
        tools = options.tools if options is not None and options.tools is not None else config.tools
        choice = options.tool_choice if options is not None and options.tool_choice is not None else config.tool_choice
        name = rt.tool_choice_name(choice)
        offered = [ToolSpec(name=t.name, description=t.description, parameters=t.parameters) for t in tools]
        return cls(
            text_only="audio" not in modalities,
            tools=offered if offered and name != "none" else None,
            tool_choice=name if offered and name != "none" else None,
            language=reply_language(config.language, config.heard_language),
        )

    @property
    def lazy_message(self) -> bool:
        """With tools on offer a reply may be only a call: its message item opens with its first words."""
        return self.tools is not None

    def part(self, text: str = "") -> ev.ContentPart:
        """The part of response.content_part.* for this reply's message."""
        if self.text_only:
            return ev.ContentPart(type="text", text=text)
        return ev.ContentPart(type="audio", transcript=text)

    def call_index(self, n: int) -> int:
        """The output index of the reply's n-th call (after its message, when it has one)."""
        return n + (1 if self.message_open else 0)


def call_events(response_id: str, item_id: str, output_index: int, call: LlmToolCall) -> list[ev.ServerEvent]:
    """A whole function call as GA streams it: the item, its arguments (one delta), the item done."""
    pending = ev.Item.function_call(item_id, call.call_id, call.name, "", status="in_progress")
    done = ev.Item.function_call(item_id, call.call_id, call.name, call.arguments)
    rid, index, cid = response_id, output_index, call.call_id
    return [
        ev.OutputItemAdded(response_id=rid, output_index=index, item=pending),
        ev.FunctionCallArgumentsDelta(
            response_id=rid, item_id=item_id, output_index=index, call_id=cid, delta=call.arguments
        ),
        ev.FunctionCallArgumentsDone(
            response_id=rid, item_id=item_id, output_index=index, call_id=cid, name=call.name, arguments=call.arguments
        ),
        ev.OutputItemDone(response_id=response_id, output_index=output_index, item=done),
    ]
