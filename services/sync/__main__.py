"""``python -m services.sync``: run the sync service (migrating an embedded SQLite database first)."""

from __future__ import annotations

import asyncio
import sys
from pathlib import Path

from prometheus_client import REGISTRY
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from services.common.db import make_engine
from services.common.logs import configure_logging
from services.common.metrics import start_metrics_server
from services.common.secret_files import apply_secret_files
from services.common.tracing import configure_tracing
from services.sync.api.server import serve
from services.sync.app import create_app
from services.sync.metrics import RunQueueCollector
from services.sync.migrate import upgrade
from services.sync.settings import load_settings


def main() -> None:
    """Read the settings, migrate when configured to, serve until SIGTERM."""
    apply_secret_files()
    configure_logging()
    configure_tracing("ew-sync")
    settings = load_settings()
    url = make_url(settings.database_url)
    if url.get_backend_name() == "sqlite" and url.database:
        Path(url.database).parent.mkdir(parents=True, exist_ok=True)
    if settings.auto_migrate:
        engine = make_engine(settings.database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    try:
        app = create_app(settings)
    except ValidationError as error:
        sys.exit(f"Invalid sync service configuration:\n{error}")
    start_metrics_server()
    REGISTRY.register(RunQueueCollector(app.sessions, app.broker, app.clock))
    try:
        asyncio.run(serve(app))
    finally:
        app.close()


if __name__ == "__main__":
    main()
