"""Settings shared by every service; each stage subclasses with its own ``S2S_<STAGE>_`` prefix."""

from __future__ import annotations

from pydantic import Field
from pydantic_settings import BaseSettings, SettingsConfigDict


class ServiceSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="S2S_", extra="ignore")

    host: str = Field(default="127.0.0.1", description="Address to listen on.")
    port: int = Field(default=8000, description="TCP port.")
    log_level: str = Field(default="info", description="uvicorn log level.")
    max_message_bytes: int = Field(
        default=1_048_576, description="Largest WebSocket message accepted; bigger ones get an error event."
    )
