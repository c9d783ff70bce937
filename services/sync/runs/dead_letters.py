"""The dead-letter path: a run message the broker gives up on ends its run FAILED, with the reason.

Dramatiq fails a message for good when its retries are exhausted, when it raises an exception its
actor ``throws``, or when it is too old (``AgeLimit``); the broker then moves it to its dead-letter
queue (Redis ``<queue>.XQ``, RabbitMQ ``<queue>.XQ``). ``DeadLetters`` hears each such failure on
the worker that gave up and calls ``on_dead(message, reason)``; ``fail_queued_run`` is what the sync
worker does: a run still QUEUED is marked FAILED, so its district is free and the administrator sees
why. A run already RUNNING is left to recovery, which fails it once its heartbeat goes stale (its
worker may still be alive). A message too broken to decode never reaches an actor or names a run:
Dramatiq dead-letters it and logs it.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dramatiq
from dramatiq.broker import Broker, MessageProxy

from services.common.errors import clip
from services.sync.runs import repository

if TYPE_CHECKING:
    from services.sync.app import App

DEAD_LETTER = (
    "The job queue gave up on this sync ({reason}); nothing was changed. Run the sync again, and "
    "contact support if it keeps failing."
)
TOO_OLD = "it waited in the queue too long"


def reason_of(exception: BaseException) -> str:
    """A short reason naming the exception (its first line, clipped)."""
    first_line = str(exception).strip().splitlines()[0] if str(exception).strip() else ""
    return clip(f"{type(exception).__name__}: {first_line}" if first_line else type(exception).__name__, 200)


class DeadLetters(dramatiq.Middleware):
    """Calls ``on_dead(message, reason)`` for each message that failed for good.

    Add it before ``Retries`` (``broker.add_middleware(DeadLetters(...), before=Retries)``): ``after_*``
    hooks run in reverse order, so it runs once ``Retries`` has decided the message failed.
    """

    def __init__(self, on_dead: Callable[[MessageProxy, str], None]) -> None:
        self._on_dead = on_dead

    def after_process_message(
        self,
        broker: Broker,
        message: MessageProxy,
        *,
        result: Any = None,
        exception: BaseException | None = None,
    ) -> None:
        """A message that raised and will not be retried is dead."""
        if exception is not None and message.failed:
            self._on_dead(message, reason_of(exception))

    def after_skip_message(self, broker: Broker, message: MessageProxy) -> None:
        """A message skipped as failed (too old) is dead."""
        if message.failed:
            self._on_dead(message, TOO_OLD)


def fail_queued_run(app: App, run_id: str, reason: str) -> bool:
    """Mark a QUEUED run FAILED with the dead-letter message; False when it is not QUEUED."""
    with app.sessions.begin() as session:
        failed = repository.fail_queued(session, run_id, DEAD_LETTER.format(reason=reason), app.clock())
    if failed:
        app.notifier.notify(run_id)
    return failed
