"""``python -m services.sync.webhooks``: the webhook sender process.

Reads the sync database from ``EW_SYNC_DATABASE_URL`` and the webhook from ``EW_WEBHOOK_*``; any
number of senders may run against one database. Stops on SIGINT/SIGTERM after the delivery in
progress (an event whose answer was not recorded is delivered again: at least once).
"""

from __future__ import annotations

import asyncio
import logging
import signal
import sys

from pydantic import ValidationError
from sqlalchemy.orm import sessionmaker

from services.common.db import make_engine
from services.common.logs import configure_logging
from services.common.metrics import start_metrics_server
from services.common.secret_files import apply_secret_files
from services.common.tracing import configure_tracing
from services.sync.settings import load_settings
from services.sync.webhooks.sender import WebhookSender
from services.sync.webhooks.settings import WebhookSettings

logger = logging.getLogger("services.sync.webhooks")


async def _serve(sender: WebhookSender) -> None:
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    logger.info("webhook sender started")
    try:
        await sender.run(stop)
    finally:
        await sender.close()
    logger.info("webhook sender stopped")


def main() -> None:
    """Run the sender until a signal stops it."""
    apply_secret_files()
    configure_logging()
    configure_tracing("ew-webhook-sender")
    start_metrics_server()
    try:
        settings = WebhookSettings()
    except ValidationError as error:
        sys.exit("Invalid webhook settings:\n" + "\n".join(f"  {e['msg']}" for e in error.errors()))
    if not settings.configured:
        sys.exit("EW_WEBHOOK_URL is empty: there is nowhere to deliver webhook events.")
    engine = make_engine(load_settings().database_url)
    try:
        asyncio.run(_serve(WebhookSender(sessionmaker(engine, expire_on_commit=False), settings)))
    finally:
        engine.dispose()


if __name__ == "__main__":
    main()
