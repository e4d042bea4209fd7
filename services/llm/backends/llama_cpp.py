"""llama.cpp backend (llama-cpp-python): GGUF models on CPU, or GPU with a CUDA build. The embedded default."""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any

from services.llm.backends.base import (
    ContextOverflow,
    GenerationRequest,
    LlmBackend,
    Piece,
    embedded_gguf,
    is_embedded,
)
from services.llm.tools import prompt_messages, split_tool_calls

if TYPE_CHECKING:
    from services.llm.settings import LlmSettings


class LlamaCppBackend(LlmBackend):
    def __init__(self, settings: LlmSettings) -> None:
        self._settings = settings
        # A llama_cpp.Llama once loaded; Any, as its declared chat-stream types don't fit streaming.
        self._llm: Any = None

    def load(self) -> None:
        from llama_cpp import Llama, llama_supports_gpu_offload

        s = self._settings
        path = embedded_gguf(s.model, s.cache_dir) if is_embedded(s.model) else s.model
        gpu_layers = s.n_gpu_layers if s.n_gpu_layers is not None else (-1 if llama_supports_gpu_offload() else 0)
        self._llm = Llama(
            model_path=str(path),
            n_ctx=s.n_ctx,
            # One thread per token stays steady when the other core is busy (STT, TTS); prompt processing
            # parallelises well, so it gets its own count (≈60 → ≈35 ms to first token on 2 cores).
            n_threads=s.n_threads,
            n_threads_batch=s.n_threads_batch,
            n_gpu_layers=gpu_layers,
            verbose=False,
        )

    def generate(self, request: GenerationRequest, cancelled: threading.Event) -> Generator[Piece, None, None]:
        assert self._llm is not None, "load() first"
        if not request.tools and not any(m.get("tool_calls") or m["role"] == "tool" for m in request.messages):
            return self._pieces(request.messages, None, request, cancelled)
        template = str(self._llm.metadata.get("tokenizer.chat_template", ""))
        messages, tools = prompt_messages(request, "tools" in template)  # services/llm/tools.py
        offered = {tool["name"] for tool in request.tools or []}
        return split_tool_calls(self._pieces(messages, tools, request, cancelled), offered)

    def _pieces(
        self, messages: Any, tools: Any, request: GenerationRequest, cancelled: threading.Event
    ) -> Generator[Piece, None, None]:
        stream = self._llm.create_chat_completion(
            messages=messages,
            tools=tools,
            max_tokens=request.max_tokens,  # llama.cpp clamps it to what is left of the context window
            temperature=request.temperature,
            seed=request.seed,
            stream=True,
        )
        try:
            for chunk in stream:
                choice = chunk["choices"][0]
                text = choice["delta"].get("content") or ""
                if text:
                    # ≈ one chunk per sampled token (llama.cpp may merge a held-back few)
                    yield Piece(text=text, tokens=1)
                if choice.get("finish_reason"):
                    yield Piece(finish_reason="length" if choice["finish_reason"] == "length" else "stop")
                    return
                if cancelled.is_set():
                    return
        except ValueError as exc:
            if "exceed context window" in str(exc):  # llama-cpp-python's only signal for an over-long prompt
                raise ContextOverflow(str(exc)) from exc
            raise
        finally:
            stream.close()
