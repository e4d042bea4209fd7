"""Run the gateway: ``python -m services.gateway`` (settings: S2S_GATEWAY_* environment variables)."""

from services.common.service import run_service
from services.gateway.app import create_app
from services.gateway.settings import GatewaySettings

if __name__ == "__main__":
    run_service("gateway", GatewaySettings, create_app)
