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

    def describe(self, session_id: str, model: str) -> ev.SessionBody:
        td = self.turn_detection
        return ev.SessionBody.model_validate(
            {
                "id": session_id,
                "model": model,
                "output_modalities": ["audio"],
                "instructions": self.instructions or "",
                "audio": {
                    "input": {
                        "format": {"type": "audio/pcm", "rate": self.input_rate},
                        "turn_detection": None if td is None else td.model_dump(exclude_none=True),
                    },
                    "output": {"format": {"type": "audio/pcm", "rate": self.output_rate}, "voice": self.voice},
                },
                "max_output_tokens": self.max_output_tokens or "inf",
            }
        )
