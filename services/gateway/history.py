"""The conversation as the LLM sees it, with what the user actually heard of each assistant reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.common import realtime_server as ev
from services.common.messages import ChatMessage, ToolCall


@dataclass
class HistoryItem:
    item_id: str
    role: str
    text: str
    pieces: list[str] = field(default_factory=list)  # assistant: the spoken pieces, in order
    piece_end_ms: list[float] = field(default_factory=list)  # assistant: audio position where each piece ended
    audio_ms: float = 0.0
    spoken: bool = False  # user: said aloud (its text is a transcript), not typed
    written: bool = False  # assistant: a text reply (output_modalities ["text"]), not spoken
    kind: str = "message"  # or "function_call" (call_id, name, arguments), "function_call_output" (call_id, text)
    call_id: str = ""
    name: str = ""
    arguments: str = ""

    def as_realtime(self) -> ev.Item:
        if self.kind == "function_call":
            return ev.Item.function_call(self.item_id, self.call_id, self.name, self.arguments)
        if self.kind == "function_call_output":
            return ev.Item.function_call_output(self.item_id, self.call_id, self.text)
        if self.role == "user" and self.spoken:
            return ev.Item.user_audio(self.item_id, self.text)
        return ev.Item.message(self.item_id, self.role, self.text, spoken=not self.written)


class History:
    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self.items: list[HistoryItem] = []

    @property
    def last_item_id(self) -> str | None:
        return self.items[-1].item_id if self.items else None

    def add(self, item_id: str, role: str, text: str, **audio: Any) -> None:
        self.items.append(HistoryItem(item_id, role, text, **audio))

    def get(self, item_id: str) -> HistoryItem | None:
        return next((item for item in self.items if item.item_id == item_id), None)

    def item(self, item_id: str) -> ev.Item:
        """The item as the Realtime API shows it (it must exist)."""
        found = self.get(item_id)
        if found is None:
            raise KeyError(item_id)
        return found.as_realtime()

    def add_call(self, item_id: str, call_id: str, name: str, arguments: str) -> None:
        self.items.append(
            HistoryItem(item_id, "assistant", "", kind="function_call", call_id=call_id, name=name, arguments=arguments)
        )

    def add_call_output(self, item_id: str, call_id: str, output: str) -> None:
        self.items.append(HistoryItem(item_id, "tool", output, kind="function_call_output", call_id=call_id))

    def messages(self) -> list[ChatMessage]:
        """The recent conversation for the LLM: a function call joins the assistant message before it (or starts
        one), its output is a ``tool`` message; a window never starts with an output whose call it cut off."""
        recent = [item for item in self.items if item.text or item.kind != "message"][-self.max_messages :]
        while recent and recent[0].kind == "function_call_output":
            recent.pop(0)
        out: list[ChatMessage] = []
        for item in recent:
            if item.kind == "function_call":
                call = ToolCall(id=item.call_id, name=item.name, arguments=item.arguments)
                last = out[-1] if out else None
                if last is not None and last.role == "assistant":
                    last.tool_calls = [*(last.tool_calls or []), call]
                else:
                    out.append(ChatMessage(role="assistant", tool_calls=[call]))
            elif item.kind == "function_call_output":
                out.append(ChatMessage(role="tool", content=item.text, tool_call_id=item.call_id))
            else:
                out.append(ChatMessage(role=item.role, content=item.text))  # type: ignore[arg-type]
        return out

    def truncate(self, item_id: str, audio_end_ms: float) -> bool:
        """Keeps only the text the user heard: whole pieces before ``audio_end_ms``, and the heard share of the next."""
        item = self.get(item_id)
        if item is None or item.role != "assistant":
            return False
        if not item.pieces or audio_end_ms >= item.audio_ms:
            return True
        kept: list[str] = []
        start = 0.0
        for piece, end in zip(item.pieces, item.piece_end_ms, strict=False):
            if audio_end_ms >= end:
                kept.append(piece)
            elif audio_end_ms > start:
                words = piece.split()
                share = (audio_end_ms - start) / max(end - start, 1.0)
                kept.append(" ".join(words[: int(len(words) * share)]))
                break
            else:
                break
            start = end
        item.text = " ".join(p for p in kept if p).strip()
        item.audio_ms = audio_end_ms
        return True
