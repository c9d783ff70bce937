"""``python -m services.gateway``: serve the HTTP/JSON gateway with uvicorn."""

from __future__ import annotations

import logging

import uvicorn

from services.common.redaction import install_redaction
from services.gateway.app import create_app
from services.gateway.settings import load_settings


def main() -> None:
    """Entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    install_redaction()
    settings = load_settings()
    host, _, port = settings.listen_address.rpartition(":")
    uvicorn.run(create_app(settings), host=host, port=int(port), log_level="info", access_log=False)


if __name__ == "__main__":
    main()
