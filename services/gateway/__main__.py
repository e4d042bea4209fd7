"""Run the gateway: ``python -m services.gateway`` (settings: S2S_GATEWAY_* environment variables)."""

import sys

from services.common.service import serve
from services.gateway.app import InsecureBindError, create_app
from services.gateway.settings import GatewaySettings

if __name__ == "__main__":
    settings = GatewaySettings()
    try:
        app = create_app(settings)
    except InsecureBindError as err:
        sys.exit(f"gateway: {err}")
    serve(app, settings)
