"""Run the VAD service: ``python -m services.vad`` (settings: S2S_VAD_* environment variables)."""

from services.common.service import run_service
from services.vad.app import create_app
from services.vad.settings import VadSettings

if __name__ == "__main__":
    run_service("vad", VadSettings, create_app)
