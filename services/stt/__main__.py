"""Run the STT service: ``python -m services.stt`` (settings: S2S_STT_* environment variables)."""

from services.common.service import run_service
from services.stt.app import create_app
from services.stt.settings import SttSettings

if __name__ == "__main__":
    run_service("stt", SttSettings, create_app)
