"""``python -m services.gateway``: serve the HTTP/JSON gateway with uvicorn."""

from __future__ import annotations

import logging
import sys

import uvicorn
from pydantic import ValidationError

from services.common.redaction import install_redaction
from services.gateway.app import create_app
from services.gateway.settings import GatewayTlsSettings, load_settings


def main() -> None:
    """Entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction()
    settings = load_settings()
    try:
        tls = GatewayTlsSettings()
    except ValidationError as error:
        sys.exit(f"Invalid gateway TLS settings:\n{error}")
    host, _, port = settings.listen_address.rpartition(":")
    uvicorn.run(create_app(settings, tls), host=host, port=int(port), log_level="info", access_log=False)


if __name__ == "__main__":
    main()
