"""OpenAI-compatible backend: streams from any server that speaks chat.completions (vLLM, Ollama, llama.cpp server)."""

from __future__ import annotations

import threading
from collections.abc import Generator
from typing import TYPE_CHECKING, Any, Literal

from services.llm.backends.base import GenerationRequest, LlmBackend, Piece, is_embedded
from services.llm.tools import StreamedCalls, chat_tools, openai_message

if TYPE_CHECKING:
    from services.llm.settings import LlmSettings


class OpenAICompatBackend(LlmBackend):
    def __init__(self, settings: LlmSettings) -> None:
        self._settings = settings
        self.max_parallel = settings.openai_max_parallel  # the server batches; we only bound what we send it
        self._client: Any = None
        self._model = settings.model

    def load(self) -> None:
        from openai import OpenAI

        s = self._settings
        # No retries: a turn that can't reach the server should fail now, not after a backoff the user hears as silence.
        self._client = OpenAI(base_url=s.openai_base_url, api_key=s.openai_api_key, max_retries=0, timeout=30.0)
        if is_embedded(s.model):  # the embedded default means "whatever the server serves"
            models = self._client.models.list().data
            if not models:
                raise RuntimeError(f"{s.openai_base_url} lists no models; set S2S_LLM_MODEL")
            self._model = models[0].id

    def generate(self, request: GenerationRequest, cancelled: threading.Event) -> Generator[Piece, None, None]:
        assert self._client is not None, "load() first"
        extra: dict[str, Any] = {"seed": request.seed} if request.seed is not None else {}
        tools = chat_tools(request)  # passed through as is: the server's own template and parser handle them
        if tools:
            extra["tools"] = tools
            if request.tool_choice in ("auto", "required"):
                extra["tool_choice"] = request.tool_choice
            elif request.tool_choice:
                extra["tool_choice"] = {"type": "function", "function": {"name": request.tool_choice}}
        stream = self._client.chat.completions.create(
            model=self._model,
            messages=[openai_message(m) for m in request.messages],
            max_tokens=request.max_tokens,
            temperature=request.temperature,
            stream=True,
            **extra,
        )
        calls = StreamedCalls()
        try:
            for chunk in stream:
                if not chunk.choices:
                    continue
                choice = chunk.choices[0]
                text = choice.delta.content if choice.delta else None
                if text:
                    yield Piece(text=text, tokens=1)  # servers send one chunk per token
                if choice.delta and choice.delta.tool_calls:
                    calls.add(choice.delta.tool_calls)
                if choice.finish_reason:
                    finish: Literal["stop", "length"] = "length" if choice.finish_reason == "length" else "stop"
                    yield Piece(finish_reason=finish, calls=calls.whole())
                    return
                if cancelled.is_set():
                    return
        finally:
            stream.close()  # closing the HTTP response tells the server to stop generating
