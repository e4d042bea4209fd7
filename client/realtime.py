"""A small asyncio client for the gateway's OpenAI Realtime dialect (what the file and mic clients share)."""

from __future__ import annotations

import base64
import json
from typing import Any

import websockets


class ConnectError(RuntimeError):
    """The gateway could not be reached or refused us; the message is one line for the user."""

    def __init__(self, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.status = status  # the HTTP status it answered with, None when nothing answered

    @property
    def final(self) -> bool:
        """A client error (a refused token, a wrong path): trying again cannot help."""
        return self.status is not None and 400 <= self.status < 500


async def connect(url: str, token: str | None, open_timeout: float = 10.0) -> websockets.ClientConnection:
    headers = {"Authorization": f"Bearer {token}"} if token else {}
    try:
        return await websockets.connect(url, additional_headers=headers, max_size=None, open_timeout=open_timeout)
    except websockets.InvalidStatus as exc:
        status = exc.response.status_code
        if status == 401:
            raise ConnectError(f"{url} refused the token (HTTP 401): pass the right --token", status) from None
        raise ConnectError(f"{url} answered HTTP {status}; is this an s2s gateway's /v1/realtime?", status) from None
    except (OSError, TimeoutError, websockets.InvalidURI, websockets.InvalidHandshake) as exc:
        raise ConnectError(f"cannot reach {url}: {exc or type(exc).__name__}") from None


def append_audio(pcm16: bytes) -> str:
    return json.dumps({"type": "input_audio_buffer.append", "audio": base64.b64encode(pcm16).decode()})


def session_update(input_rate: int, output_rate: int, **extra: Any) -> str:
    audio = {
        "input": {"format": {"type": "audio/pcm", "rate": input_rate}},
        "output": {"format": {"type": "audio/pcm", "rate": output_rate}},
    }
    return json.dumps({"type": "session.update", "session": {"type": "realtime", "audio": audio, **extra}})


def audio_of(event: dict[str, Any]) -> bytes:
    return base64.b64decode(event["delta"])


def text_item(role: str, text: str) -> str:
    kind = "output_text" if role == "assistant" else "input_text"
    return json.dumps(
        {
            "type": "conversation.item.create",
            "item": {"type": "message", "role": role, "content": [{"type": kind, "text": text}]},
        }
    )
