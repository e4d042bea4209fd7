"""The interface every LLM backend implements (the embedded, wheel-shipped models: services/llm/embedded.py)."""

from __future__ import annotations

import threading
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal, Self

# Re-exported: the backends and tests find the embedded models here.
from services.llm.embedded import EMBEDDED_PREFIX as EMBEDDED_PREFIX
from services.llm.embedded import embedded_gguf as embedded_gguf
from services.llm.embedded import is_embedded as is_embedded

if TYPE_CHECKING:
    from services.common.messages import ToolCall


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[dict[str, Any]]  # [{"role": ..., "content": ..., "tool_calls"?, "tool_call_id"?}], system first
    max_tokens: int
    temperature: float
    seed: int | None
    tools: list[dict[str, Any]] | None = None  # [{"name", "description", "parameters"}] (services/llm/tools.py)
    tool_choice: str | None = None  # "auto", "none", "required" or a function's name


@dataclass(frozen=True)
class Piece:
    """A step of a streamed reply: some text and the tokens it took; the last one carries the finish reason."""

    text: str = ""
    tokens: int = 0
    finish_reason: Literal["stop", "length"] | None = None
    calls: tuple[ToolCall, ...] = ()  # functions the model called, each whole


class ContextOverflow(ValueError):
    """The prompt leaves no room for a reply in the model's context window (the caller should trim the history)."""


class LlmBackend(ABC):
    """One loaded model. ``generate`` runs in a worker thread; the service never runs more than ``max_parallel`` at once."""

    max_parallel: int = 1  # local models are not thread-safe (llama.cpp) or would only fight over the same cores

    @abstractmethod
    def load(self) -> None:
        """Load the model (heavy imports happen here, not at module import)."""

    def loaded(self) -> Self:
        """``load()``, then this backend: what the registry's factories return."""
        self.load()
        return self

    @abstractmethod
    def generate(self, request: GenerationRequest, cancelled: threading.Event) -> Generator[Piece, None, None]:
        """Yields the reply as it is generated. Stops soon after ``cancelled`` is set; ``close()`` must stop it too."""
