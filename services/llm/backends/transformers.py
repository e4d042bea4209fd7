"""transformers backend (the design card's): any causal LM with a chat template, local dir or hub id, optionally a GGUF."""

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

if TYPE_CHECKING:
    from services.llm.settings import LlmSettings


class _TokenGate:
    """A StoppingCriteria: counts generated tokens and stops generation once the request is cancelled or closed."""

    def __init__(self, prompt_tokens: int, *stop_flags: threading.Event) -> None:
        self.prompt_tokens = prompt_tokens
        self.generated = 0
        self._stop_flags = stop_flags

    def __call__(self, input_ids: Any, scores: Any, **kwargs: Any) -> Any:
        import torch

        self.generated = input_ids.shape[-1] - self.prompt_tokens
        stop = any(flag.is_set() for flag in self._stop_flags)
        return torch.full((input_ids.shape[0],), stop, dtype=torch.bool, device=input_ids.device)


class TransformersBackend(LlmBackend):
    def __init__(self, settings: LlmSettings) -> None:
        self._settings = settings
        self._model: Any = None
        self._tokenizer: Any = None

    def load(self) -> None:
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer

        s = self._settings
        source, gguf_file = s.model, s.gguf_file
        if is_embedded(s.model):
            path = embedded_gguf(s.model, s.cache_dir)
            source, gguf_file = str(path.parent), path.name
        extra = {"gguf_file": gguf_file} if gguf_file else {}
        if s.device == "cpu":
            torch.set_num_threads(s.n_threads)
        self._tokenizer = AutoTokenizer.from_pretrained(source, **extra)
        # A GGUF is dequantized into this dtype on every start (≈13 s for SmolLM2-135M on CPU).
        model: Any = AutoModelForCausalLM.from_pretrained(source, dtype=getattr(torch, s.dtype), **extra)
        self._model = model.to(s.device).eval()
        if s.torch_compile:
            self._model.forward = torch.compile(self._model.forward)

    def generate(self, request: GenerationRequest, cancelled: threading.Event) -> Generator[Piece, None, None]:
        import torch
        from transformers import StoppingCriteriaList, TextIteratorStreamer

        assert self._model is not None, "load() first"
        tok = self._tokenizer
        inputs = tok.apply_chat_template(
            request.messages, add_generation_prompt=True, return_tensors="pt", return_dict=True
        ).to(self._model.device)
        prompt_tokens = inputs["input_ids"].shape[-1]
        limit = getattr(self._model.config, "max_position_embeddings", None)
        if limit is not None and prompt_tokens >= limit:
            raise ContextOverflow(f"prompt of {prompt_tokens} tokens fills the {limit}-token context window")
        closed = threading.Event()
        gate = _TokenGate(prompt_tokens, cancelled, closed)
        streamer = TextIteratorStreamer(tok, skip_prompt=True, skip_special_tokens=True)
        kwargs: dict[str, Any] = dict(
            **inputs,
            max_new_tokens=request.max_tokens,
            streamer=streamer,
            stopping_criteria=StoppingCriteriaList([gate]),
            pad_token_id=tok.pad_token_id if tok.pad_token_id is not None else tok.eos_token_id,
        )
        if request.temperature > 0:  # the same sampler settings as llama.cpp's defaults, so backends answer alike
            kwargs.update(do_sample=True, temperature=request.temperature, top_k=40, top_p=0.95, min_p=0.05)
        else:
            kwargs.update(do_sample=False)
        if request.seed is not None:
            torch.manual_seed(request.seed)
        failure: list[BaseException] = []

        def run() -> None:
            try:
                with torch.inference_mode():
                    self._model.generate(**kwargs)
            except BaseException as exc:  # re-raised in the caller's thread; end the stream so it doesn't wait forever
                failure.append(exc)
                streamer.end()

        worker = threading.Thread(target=run, name="llm-transformers-generate", daemon=True)
        worker.start()
        reported = 0
        try:
            for text in streamer:  # whole words: the streamer holds text back until a word ends
                if text:
                    yield Piece(text=text, tokens=gate.generated - reported)
                    reported = gate.generated
                if cancelled.is_set():
                    return
            worker.join()
            if failure:
                raise failure[0]
            if not cancelled.is_set():
                yield Piece(
                    tokens=gate.generated - reported,
                    finish_reason="length" if gate.generated >= request.max_tokens else "stop",
                )
        finally:
            closed.set()
            worker.join()
