"""LLM WebSocket app: ``WS /v1/llm``. Stateless between requests: the gateway sends the whole conversation each time."""

from __future__ import annotations

import asyncio
import threading

from fastapi import FastAPI, WebSocket

from services.common.messages import (
    LLM_CLIENT,
    ErrorMessage,
    LlmCancel,
    LlmGenerate,
    Message,
)
from services.common.metrics import Metrics
from services.common.service import create_stage_app, frames, send
from services.llm.backends import backends
from services.llm.backends.base import GenerationRequest
from services.llm.generation import Generation, ModelRunner, Outcome
from services.llm.prompt import default_prefix, with_default_prompt
from services.llm.settings import LlmSettings


def build_request(item: LlmGenerate, settings: LlmSettings) -> GenerationRequest:
    messages = [m.model_dump(exclude_none=True) for m in item.messages]
    return GenerationRequest(
        messages=with_default_prompt(messages, settings.system_prompt, settings.spoken_examples),
        max_tokens=item.max_tokens if item.max_tokens is not None else settings.max_tokens,
        temperature=item.temperature if item.temperature is not None else settings.temperature,
        seed=settings.seed,
        tools=[tool.model_dump() for tool in item.tools] if item.tools else None,
        tool_choice=item.tool_choice,
    )


def create_app(settings: LlmSettings | None = None) -> FastAPI:
    settings = settings or LlmSettings()
    build_backend = backends.get(settings.backend)  # an unknown name stops the service now, with one line
    metrics = Metrics()
    ttft = metrics.histogram(
        "llm_ttft_seconds", "Request received to first token sent (includes waiting for the model)."
    )
    tokens_total = metrics.counter("llm_tokens_total", "Tokens generated.")
    requests_total = metrics.counter(
        "llm_requests_total", "Generations finished, by finish reason.", ("finish_reason",)
    )

    def on_done(outcome: Outcome) -> None:
        tokens_total.inc(outcome.tokens)
        requests_total.labels(outcome.finish_reason).inc()

    def load() -> ModelRunner:
        backend = build_backend(settings)
        if settings.warmup:  # pays the first-call costs (allocations, prompt cache, kernels) before the first user turn
            warmup = GenerationRequest(
                # The default prompt's prefix, so that llama.cpp has it cached when the first turn comes.
                [*default_prefix(settings.system_prompt, settings.spoken_examples), {"role": "user", "content": "Hi"}],
                4,
                0.0,
                settings.seed,
            )
            for _ in backend.generate(warmup, threading.Event()):
                pass
        return ModelRunner(backend, ttft.observe, on_done)

    async def handle(ws: WebSocket, runner: ModelRunner) -> None:
        current: tuple[Generation, asyncio.Task[Outcome]] | None = None

        async def reply(message: Message) -> bool:
            return await send(ws, message)

        async def run_after(previous: asyncio.Task[Outcome] | None, gen: Generation) -> Outcome:
            if previous is not None:
                await asyncio.wait([previous])  # the replaced reply's llm.done goes out before anything of this one
            return await runner.run(gen, reply)

        try:
            async for item in frames(ws, LLM_CLIENT, settings.max_message_bytes):
                if isinstance(item, ErrorMessage):
                    await send(ws, item)
                elif isinstance(item, bytes):
                    await send(
                        ws,
                        ErrorMessage(code="unexpected_binary", message="the LLM service takes JSON text frames only"),
                    )
                elif isinstance(item, LlmGenerate):
                    previous = current[1] if current else None
                    if current:
                        current[0].cancel()  # one reply per connection: a new request replaces the running one
                    gen = Generation(item.request_id, build_request(item, settings))
                    current = (gen, asyncio.create_task(run_after(previous, gen)))
                elif isinstance(item, LlmCancel) and current and current[0].request_id == item.request_id:
                    current[0].cancel()  # an unknown or finished id is a no-op: the reply may have just ended
        finally:
            if current:  # the client left: stop its reply so the model is free for others
                current[0].cancel()
                await current[1]

    return create_stage_app("llm", settings, load, "/v1/llm", handle, metrics)
