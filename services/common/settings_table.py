"""Prints the settings of every service as a Markdown table (the README's table is made with this)."""

from __future__ import annotations

import importlib

from pydantic_settings import BaseSettings

SERVICES = ("gateway", "vad", "stt", "llm", "tts")


def rows() -> list[str]:
    out = ["| variable | default | meaning |", "|---|---|---|"]
    for stage in SERVICES:
        module = importlib.import_module(f"services.{stage}.settings")
        cls = next(
            v
            for k, v in vars(module).items()
            if k.endswith("Settings") and k != "ServiceSettings" and isinstance(v, type) and issubclass(v, BaseSettings)
        )
        prefix = cls.model_config.get("env_prefix", "")
        for name, field in cls.model_fields.items():
            default = field.default if field.default is not None else ""
            doc = (field.description or "").replace("|", "\\|")
            out.append(f"| `{prefix}{name.upper()}` | `{default}` | {doc} |")
    return out


if __name__ == "__main__":
    print("\n".join(rows()))
