"""Run the LLM service: ``python -m services.llm`` (settings: S2S_LLM_* environment variables)."""

from services.common.service import run_service
from services.llm.app import create_app
from services.llm.settings import LlmSettings

if __name__ == "__main__":
    run_service("llm", LlmSettings, create_app)
