"""The session's configuration as the client set it (defaults as in the OpenAI Realtime API)."""

from __future__ import annotations

from dataclasses import dataclass, field

from services.common import realtime as rt
from services.common import realtime_server as ev


@dataclass
class SessionState:
    input_rate: int = 24000
    output_rate: int = 24000
    instructions: str | None = None
    turn_detection: rt.TurnDetection | None = field(default_factory=rt.TurnDetection)
    max_output_tokens: int | None = None
    voice: str = "default"
    output_modalities: list[ev.Modality] = field(default_factory=lambda: list[ev.Modality](["audio"]))
    tools: list[rt.FunctionTool] = field(default_factory=list)
    tool_choice: rt.ToolChoice = "auto"
    language: str | None = "en"  # the STT language hint (S2S_GATEWAY_LANGUAGE, or pinned): None detects per turn
    heard_language: str | None = None  # the language of the user's last spoken turn, as STT detected it

    def apply(self, new: rt.SessionConfig) -> None:
        """The text and tool settings of a ``session.update`` (the session applies the audio ones itself)."""
        if new.output_modalities:
            self.output_modalities = ["audio"] if "audio" in new.output_modalities else ["text"]
        if new.tools is not None:
            self.tools = list(new.tools)
        if new.tool_choice is not None:
            self.tool_choice = new.tool_choice

    def describe(self, session_id: str, model: str) -> ev.SessionBody:
        td = self.turn_detection
        return ev.SessionBody.model_validate(
            {
                "id": session_id,
                "model": model,
                "output_modalities": self.output_modalities,
                "tools": [tool.model_dump() for tool in self.tools],
                "tool_choice": rt.tool_choice_name(self.tool_choice)
                if isinstance(self.tool_choice, str)
                else self.tool_choice.model_dump(),
                "instructions": self.instructions or "",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": self.input_rate},
                        "turn_detection": None if td is None else td.model_dump(exclude_none=True),
                        "transcription": {"language": self.language},
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": self.output_rate}, "voice": self.voice},
                },
                "max_output_tokens": self.max_output_tokens or "inf",
            }
        )
