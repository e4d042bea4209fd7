"""LLM backends by name, imported only when chosen (each pulls in a heavy library)."""

from __future__ import annotations

import importlib
from types import MappingProxyType
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from services.llm.backends.base import LlmBackend
    from services.llm.settings import LlmSettings

BACKENDS = MappingProxyType(
    {
        "llama-cpp": "services.llm.backends.llama_cpp:LlamaCppBackend",
        "transformers": "services.llm.backends.transformers:TransformersBackend",
        "openai": "services.llm.backends.openai_compat:OpenAICompatBackend",
    }
)


def create_backend(settings: LlmSettings) -> LlmBackend:
    """The chosen backend, constructed but not loaded."""
    if settings.backend not in BACKENDS:
        raise ValueError(f"unknown LLM backend {settings.backend!r}; choose one of {sorted(BACKENDS)}")
    module_name, class_name = BACKENDS[settings.backend].split(":")
    return getattr(importlib.import_module(module_name), class_name)(settings)
