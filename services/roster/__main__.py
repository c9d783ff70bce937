"""``python -m services.roster``: migrate the embedded database when asked to, then serve."""

from __future__ import annotations

import sys

from pydantic import ValidationError

from services.common.auth import AuthSettings
from services.common.logs import configure_logging
from services.common.metrics import start_metrics_server
from services.common.migrations import ensure_sqlite_folder
from services.common.secret_files import apply_secret_files
from services.common.tls import TlsSettings
from services.common.tracing import configure_tracing
from services.roster.db import roster_engine
from services.roster.migrate import upgrade
from services.roster.server import serve
from services.roster.settings import load_settings


def main() -> None:
    """Entry point."""
    apply_secret_files()
    configure_logging()
    configure_tracing("ew-roster")
    start_metrics_server()
    settings = load_settings()
    try:
        auth, tls = AuthSettings(), TlsSettings()
    except ValidationError as error:
        sys.exit(f"Invalid roster security settings:\n{error}")
    if settings.auto_migrate:
        ensure_sqlite_folder(settings.database_url)
        engine = roster_engine(settings.database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    serve(settings, auth=auth, tls=tls)


if __name__ == "__main__":
    main()
