from __future__ import annotations

from pydantic import Field, field_validator
from pydantic_settings import SettingsConfigDict

from services.common.settings import ServiceSettings
from services.gateway.pool import PoolSpecError, parse_stage_urls


class GatewaySettings(ServiceSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_GATEWAY_", extra="ignore")

    port: int = 8000
    token: str | None = Field(default=None, description="Bearer token clients must send; required off loopback.")
    vad_url: str = Field(default="ws://127.0.0.1:8001/v1/vad", description="VAD service WebSocket (a pool: see STT).")
    stt_url: str = Field(
        default="ws://127.0.0.1:8002/v1/stt",
        description="STT service WebSocket, or a pool of replicas: comma-separated URLs and/or dns+ws://NAME:PORT/PATH "
        "(one replica per address NAME resolves to, re-resolved; Swarm: dns+ws://tasks.stt:8002/v1/stt). docs/scaling.md.",
    )
    llm_url: str = Field(default="ws://127.0.0.1:8003/v1/llm", description="LLM service WebSocket (a pool: see STT).")
    tts_url: str = Field(default="ws://127.0.0.1:8004/v1/tts", description="TTS service WebSocket (a pool: see STT).")
    connect_timeout_s: float = Field(default=5.0, description="Time allowed to reach a stage service.")
    stage_timeout_s: float = Field(default=30.0, description="Time a stage may take to answer before the turn fails.")
    health_interval_s: float = Field(
        default=2.0, gt=0, description="How often every stage replica's /healthz is polled (readiness and load)."
    )
    resolve_interval_s: float = Field(default=5.0, gt=0, description="How often dns+ stage names are resolved again.")
    connect_attempts: int = Field(
        default=3, ge=1, le=10, description="Replicas a stage link tries, one after another, before it gives up."
    )
    replica_retry_s: float = Field(
        default=10.0,
        ge=0,
        description="A replica a connect failed on gets no new link for this long, unless its health check passes again.",
    )
    history_messages: int = Field(default=12, description="Past user/assistant messages sent to the LLM.")
    max_sessions: int = Field(
        default=16, description="Concurrent conversations; more are refused (session_limit_reached)."
    )
    speculative_pause_ms: int = Field(
        default=150,
        description="Start the STT final decode after this much silence, before the turn is confirmed; reused if the user stays silent (0: off).",
    )
    # Off by default for now, until a second interruption in the echo-loop test (tests/test_mic_client.py) is
    # understood: seen in 3 of 4 runs with it on, and in 1 CI run with it off too.
    speculative_reply: bool = Field(
        default=False,
        description="Start the reply on the transcript decoded at a pause, before the turn is confirmed; the client gets it only once the turn ends.",
    )
    # Measured with Whisper base on 22 English espeak clips (3 voices): detection took 2 for Latin ("Why is the sky
    # blue?", "Set a timer for five minutes." -> "4-5 min") and cost a median ~140 ms more per decode (186 -> 328 ms,
    # noisy shared CPU). So English stays the default; a session turns detection on or pins another language.
    language: str | None = Field(
        default="en",
        description="The STT language (empty: detect per turn, and answer in the language heard); a session may pin "
        "another with session.audio.input.transcription.language.",
    )

    @field_validator("language", mode="before")
    @classmethod
    def _empty_is_detect(cls, value: object) -> object:
        return None if value == "" else value  # S2S_GATEWAY_LANGUAGE= (empty) means detect

    # Measured with Whisper base on 80 clear espeak questions (5 voices): below -0.85 only 3 of 3+ words, all three
    # misheard ("Thanks, my soul."), and "Okay." (-0.89: one word, few tokens, a noisier mean). Muffled (low-passed),
    # noisy (SNR -5 dB) and reversed speech: -0.76 to -1.31, 14 of 18 below the two thresholds.
    unclear_logprob: float = Field(
        default=-0.85,
        description="Ask the user to repeat when the transcript (3+ words) has a mean token log-probability below this.",
    )
    unclear_logprob_short: float = Field(
        default=-1.0, description="The same for transcripts of one or two words (their mean is noisier)."
    )
    unclear_no_speech: float = Field(
        default=0.6,
        description="Ask the user to repeat when Whisper's no-speech probability is above this, yet it wrote text.",
    )
    repeat_request: str = Field(
        default="Sorry, I didn't catch that. Could you say it again?",
        description="What the assistant says instead of answering a transcript nobody is likely to have said.",
    )
    idle_shutdown_s: float = Field(
        default=0.0,
        ge=0,
        description="On a RunPod pod: terminate the pod after this many seconds without a session (0: never; the deploy sets it).",
    )
    idle_check_interval_s: float = Field(default=5.0, gt=0, description="How often the idle shutdown checks.")
    runpod_api_url: str = Field(
        default="https://api.runpod.io", description="RunPod API the idle shutdown calls (REST v2)."
    )
    runpod_api_key: str | None = Field(
        default=None, description="Key for the idle shutdown (None: RUNPOD_API_KEY, the key RunPod puts in the pod)."
    )
    runpod_pod_id: str | None = Field(
        default=None, description="Pod the idle shutdown terminates (None: RUNPOD_POD_ID, which RunPod sets)."
    )

    @field_validator("vad_url", "stt_url", "llm_url", "tts_url")
    @classmethod
    def _stage_pool(cls, value: str) -> str:
        try:
            parse_stage_urls(value)
        except PoolSpecError as err:
            raise ValueError(str(err)) from None
        return value
