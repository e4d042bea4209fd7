"""Gateway metrics: per-turn stage timings (names as LiveKit/pipecat users expect) and session counts."""

from __future__ import annotations

from services.common.metrics import Metrics

TURN_HISTOGRAMS = {
    "end_of_turn_ms": ("end_of_turn_delay_seconds", "Last voiced sample to end of turn detected."),
    "stt_final_ms": ("stt_final_seconds", "STT commit to final transcript."),
    "llm_ttft_ms": ("llm_ttft_seconds", "LLM request to first token."),
    "tts_first_audio_ms": ("tts_first_audio_seconds", "First text piece sent to TTS to its first audio."),
    "voice_to_voice_ms": (
        "voice_to_voice_seconds",
        "Last voiced sample reaching the gateway to first reply audio sent.",
    ),
}


class GatewayMetrics:
    def __init__(self) -> None:
        self.metrics = Metrics()
        self.sessions = self.metrics.gauge("gateway_sessions", "Open conversations.")
        self.errors = self.metrics.counter("gateway_errors_total", "Error events sent to clients.", ("code",))
        self.responses = self.metrics.counter("gateway_responses_total", "Replies by final status.", ("status",))
        self.turn = {key: self.metrics.histogram(name, doc) for key, (name, doc) in TURN_HISTOGRAMS.items()}

    def observe_turn(self, timings: dict[str, float], status: str) -> None:
        self.responses.labels(status).inc()
        if status != "completed":
            return
        for key, histogram in self.turn.items():
            if key in timings:
                histogram.observe(timings[key] / 1000.0)

    def render(self) -> bytes:
        return self.metrics.render()
