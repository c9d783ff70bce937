"""``python -m services.roster``: migrate the embedded database when asked to, then serve."""

from __future__ import annotations

import logging
from pathlib import Path

from sqlalchemy.engine import make_url

from services.common.db import make_engine
from services.roster.migrate import upgrade
from services.roster.server import serve
from services.roster.settings import load_settings


def main() -> None:
    """Entry point."""
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    settings = load_settings()
    if settings.auto_migrate:
        url = make_url(settings.database_url)
        if url.get_backend_name() == "sqlite" and url.database and url.database != ":memory:":
            Path(url.database).parent.mkdir(parents=True, exist_ok=True)
        engine = make_engine(settings.database_url)
        try:
            upgrade(engine)
        finally:
            engine.dispose()
    serve(settings)


if __name__ == "__main__":
    main()
