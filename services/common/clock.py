"""The one wall clock of both services: ``utc_now``, and the ``Clock`` type a test can replace it with."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable

Clock = Callable[[], dt.datetime]
"""What tells the time: ``utc_now`` in production, a function the test moves in tests."""


def utc_now() -> dt.datetime:
    """The current time, timezone-aware (UTC)."""
    return dt.datetime.now(dt.UTC)
