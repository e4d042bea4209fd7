"""Decoding and sending typed JSON frames, shared by servers and clients of every protocol here."""

from __future__ import annotations

import json
from typing import Any

from pydantic import BaseModel, TypeAdapter, ValidationError


class WireError(ValueError):
    """A frame that cannot be taken; ``code`` is machine-readable, the message names the problem."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message


def decode(adapter: TypeAdapter[Any], text: str | bytes) -> Any:
    try:
        raw = json.loads(text)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise WireError("invalid_json", f"message is not valid JSON: {exc}") from None
    if not isinstance(raw, dict):
        raise WireError("invalid_json", "message must be a JSON object")
    kind = raw.get("type")
    if not isinstance(kind, str):
        raise WireError("missing_type", "message has no string 'type' field")
    try:
        return adapter.validate_python(raw)
    except ValidationError as exc:
        if any(err["type"] == "union_tag_invalid" for err in exc.errors()):
            raise WireError("unknown_type", f"unknown message type {kind!r}") from None
        detail = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or '(root)'}: {e['msg']}" for e in exc.errors())
        raise WireError("invalid_message", f"invalid {kind!r} message: {detail}") from None


def encode(message: BaseModel) -> str:
    return message.model_dump_json(exclude_none=True)
