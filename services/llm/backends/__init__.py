"""LLM backends by name (S2S_LLM_BACKEND). Each factory imports its module only when that backend is chosen."""

from __future__ import annotations

from services.common.registry import Registry
from services.llm.backends.base import LlmBackend
from services.llm.settings import LlmSettings

backends: Registry[LlmSettings, LlmBackend] = Registry("LLM backend", "S2S_LLM_BACKEND")


@backends.register("llama-cpp")
def _llama_cpp(settings: LlmSettings) -> LlmBackend:
    from services.llm.backends.llama_cpp import LlamaCppBackend

    return LlamaCppBackend(settings).loaded()


@backends.register("transformers")
def _transformers(settings: LlmSettings) -> LlmBackend:
    from services.llm.backends.transformers import TransformersBackend

    return TransformersBackend(settings).loaded()


@backends.register("openai")
def _openai(settings: LlmSettings) -> LlmBackend:
    from services.llm.backends.openai_compat import OpenAICompatBackend

    return OpenAICompatBackend(settings).loaded()
