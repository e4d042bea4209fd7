"""Run the TTS service: ``python -m services.tts`` (settings: S2S_TTS_* environment variables)."""

from services.common.service import run_service
from services.tts.app import create_app
from services.tts.settings import TtsSettings

if __name__ == "__main__":
    run_service("tts", TtsSettings, create_app)
