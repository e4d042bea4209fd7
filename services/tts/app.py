"""TTS WebSocket app: ``WS /v1/tts``. Each connection queues text pieces and gets their audio streamed back in order."""

from __future__ import annotations

import asyncio

from fastapi import FastAPI, WebSocket

from services.common.messages import TTS_CLIENT, ErrorMessage, TtsCancel, TtsSpeak
from services.common.metrics import Metrics
from services.common.service import create_stage_app, frames
from services.tts.backends import backends
from services.tts.session import TtsConnection, TtsMetrics
from services.tts.settings import TtsSettings
from services.tts.voices import Voices, build_voices


def create_app(settings: TtsSettings | None = None) -> FastAPI:
    settings = settings or TtsSettings()
    build_backend = backends.get(settings.backend)  # an unknown name stops the service now, with one line
    metrics = Metrics()
    tts_metrics = TtsMetrics(
        first_audio=metrics.histogram(
            "tts_first_audio_seconds", "From a piece's turn to speak to its first audio frame."
        ),
        audio_seconds=metrics.counter(
            "tts_audio_seconds_total", "Seconds of audio sent (cancelled pieces count what was sent)."
        ),
    )

    def load() -> Voices:
        backend = build_backend(settings)
        backend.warm_up()
        return build_voices(backend, settings)

    async def handle(ws: WebSocket, voices: Voices) -> None:
        connection = TtsConnection(ws, voices, settings.frame_ms, tts_metrics)
        speaker = asyncio.create_task(connection.run())
        try:
            async for item in frames(ws, TTS_CLIENT, settings.max_message_bytes):
                if isinstance(item, ErrorMessage):
                    await connection.send(item)
                elif isinstance(item, bytes):
                    message = "the TTS service takes JSON text messages only (tts.speak, tts.cancel)"
                    await connection.send(ErrorMessage(code="unexpected_binary", message=message))
                elif isinstance(item, TtsSpeak):
                    connection.speak(item)
                elif isinstance(item, TtsCancel):
                    await connection.cancel(item.request_id)
        finally:
            await connection.close(speaker)

    return create_stage_app("tts", settings, load, "/v1/tts", handle, metrics)
