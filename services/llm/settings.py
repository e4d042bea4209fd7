from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings
from services.llm.prompt import SPOKEN_SYSTEM_PROMPT


class LlmSettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_LLM_", extra="ignore")
    # S2S_PROFILE=gpu: transformers on CUDA in bfloat16 (S2S_LLM_TORCH_COMPILE=true for faster tokens after a slow start).
    profile_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "gpu": {
            "backend": "transformers",
            "model": "HuggingFaceTB/SmolLM2-1.7B-Instruct",
            "device": "cuda",
            "dtype": "bfloat16",
        }
    }
    # S2S_PRESET (services/common/settings.py; measured in docs/models.md): balanced is the fields' own defaults.
    # SmolLM2-135M answers "Paris" more reliably at 0.2 than greedy; the Qwen models answer best greedy.
    preset_defaults: ClassVar[dict[str, dict[str, Any]]] = {
        "fast": {"backend": "llama-cpp", "model": "embedded:smollm2-135m", "temperature": 0.2},
        "balanced": {"backend": "llama-cpp", "model": "embedded:qwen2.5-coder-0.5b", "temperature": 0.0},
        "best": {"backend": "llama-cpp", "model": "embedded:qwen2.5-coder-1.5b", "temperature": 0.0},
    }

    port: int = 8003
    backend: str = Field(
        default="llama-cpp",
        description="LLM backend: llama-cpp, transformers or openai (any OpenAI-compatible server).",
    )
    model: str = Field(
        default="embedded:qwen2.5-coder-0.5b",
        description=(
            "llama-cpp: a .gguf path; transformers: a local directory or hub id; openai: the server's model name. "
            "Embedded GGUFs from PyPI wheels (docs/models.md), each checked against its pinned sha256: "
            "`embedded:qwen2.5-coder-0.5b` (Qwen2.5-Coder-0.5B-Instruct Q4_K_M), `embedded:smollm2-135m` (faster, "
            "answers less well), `embedded:qwen2.5-coder-1.5b` (better, slower; requirements/best.txt). "
            "openai: `embedded:…` means the server's first model."
        ),
    )
    cache_dir: str | None = Field(
        default=None,
        description="Where an embedded model shipped in parts is joined once; default ~/.cache/s2s/llm.",
    )
    system_prompt: str = Field(
        default=SPOKEN_SYSTEM_PROMPT, description="Prepended when a request has no system message."
    )
    spoken_examples: bool = Field(
        default=True,
        description="With the default system prompt, also send two short example turns that show the answer's shape "
        "(no lists, one or two sentences); cached by llama.cpp, so they cost no time per turn.",
    )
    max_tokens: int = Field(default=96, ge=1, le=4096, description="Reply length limit when a request sets none.")
    temperature: float = Field(
        default=0.0, ge=0.0, le=2.0, description="Sampling temperature when a request sets none (0: greedy)."
    )
    seed: int | None = Field(
        default=0,
        description="Sampling seed set before every request, so equal requests get equal replies; unset: random.",
    )
    warmup: bool = Field(
        default=True, description="Run one short generation while loading, so the first user turn doesn't pay for it."
    )
    n_ctx: int = Field(default=2048, ge=128, description="llama-cpp: context window in tokens (prompt + reply).")
    n_threads: int = Field(
        default=1, ge=1, description="llama-cpp: threads per generated token; transformers: torch threads."
    )
    n_threads_batch: int = Field(
        default=2, ge=1, description="llama-cpp: threads for prompt processing (the time to first token)."
    )
    n_gpu_layers: int | None = Field(
        default=None,
        description="llama-cpp: layers offloaded to the GPU (-1: all); unset: all on a GPU build of llama.cpp, else 0.",
    )
    gguf_file: str | None = Field(
        default=None,
        description="transformers: a GGUF file inside `model` to load (dequantized) instead of safetensors.",
    )
    device: Literal["cpu", "cuda"] = Field(default="cpu", description="transformers: device to run on.")
    dtype: Literal["float32", "bfloat16", "float16"] = Field(
        default="float32", description="transformers: weight dtype."
    )
    torch_compile: bool = Field(
        default=False,
        description="transformers: torch.compile the model's forward (slow first start, faster tokens on GPU).",
    )
    openai_base_url: str = Field(
        default="http://127.0.0.1:8080/v1",
        description="openai: base URL of the OpenAI-compatible API (vLLM, Ollama, llama.cpp server).",
    )
    openai_api_key: str = Field(
        default="none", description="openai: API key sent to the server (local servers ignore it)."
    )
    openai_max_parallel: int = Field(
        default=4, ge=1, description="openai: generations in flight at once (local backends always run one at a time)."
    )
