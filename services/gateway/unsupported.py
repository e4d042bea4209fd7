"""The error for a client event the gateway does not take: GA Realtime events it does not support are named as such
(with what to do instead), anything else is an unknown event. Listed in docs/protocol.md."""

from __future__ import annotations

import json

# GA client events (openai.types.realtime.RealtimeClientEvent) this gateway does not implement, and why.
NOT_SUPPORTED = {
    "conversation.item.delete": "conversation items cannot be deleted here; truncate an assistant item instead",
    "output_audio_buffer.clear": "there is no server-side output audio buffer (WebRTC/SIP only): stop playback on the "
    "client and send conversation.item.truncate",
}


def unknown_event(text: str) -> tuple[str, str]:
    """(code, message) for a frame whose ``type`` is not one the gateway takes."""
    try:
        kind = str(json.loads(text).get("type"))
    except (ValueError, AttributeError):
        kind = "?"
    reason = NOT_SUPPORTED.get(kind)
    if reason is not None:
        return "unsupported_event", f"event type {kind!r} is not supported by this server: {reason}"
    return "unknown_event", f"unknown event type {kind!r}: not an OpenAI Realtime (GA) client event"
