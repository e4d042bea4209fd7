"""The conversation as the LLM sees it, with what the user actually heard of each assistant reply."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from services.common.messages import ChatMessage


@dataclass
class HistoryItem:
    item_id: str
    role: str
    text: str
    pieces: list[str] = field(default_factory=list)  # assistant: the spoken pieces, in order
    piece_end_ms: list[float] = field(default_factory=list)  # assistant: audio position where each piece ended
    audio_ms: float = 0.0

    def as_realtime(self) -> dict[str, Any]:
        kind = "input_text" if self.role == "user" else "output_audio" if self.role == "assistant" else "input_text"
        part = {"type": kind, "text" if kind == "input_text" else "transcript": self.text}
        return {"id": self.item_id, "object": "realtime.item", "type": "message", "role": self.role, "status": "completed", "content": [part]}


class History:
    def __init__(self, max_messages: int) -> None:
        self.max_messages = max_messages
        self.items: list[HistoryItem] = []

    @property
    def last_item_id(self) -> str | None:
        return self.items[-1].item_id if self.items else None

    def add(self, item_id: str, role: str, text: str, **audio: Any) -> dict[str, Any]:
        item = HistoryItem(item_id, role, text, **audio)
        self.items.append(item)
        return item.as_realtime()

    def get(self, item_id: str) -> HistoryItem | None:
        return next((item for item in self.items if item.item_id == item_id), None)

    def messages(self) -> list[ChatMessage]:
        recent = [item for item in self.items if item.text][-self.max_messages :]
        return [ChatMessage(role=item.role, content=item.text) for item in recent]  # type: ignore[arg-type]

    def truncate(self, item_id: str, audio_end_ms: float) -> bool:
        """Keeps only the text the user heard: whole pieces before ``audio_end_ms``, and the heard share of the next."""
        item = self.get(item_id)
        if item is None or item.role != "assistant":
            return False
        if not item.pieces or audio_end_ms >= item.audio_ms:
            return True
        kept: list[str] = []
        start = 0.0
        for piece, end in zip(item.pieces, item.piece_end_ms):
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
