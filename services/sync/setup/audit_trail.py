"""ListAuditEvents and the audit trail's retention (the events themselves are written by ``api.audited``)."""

from __future__ import annotations

import datetime as dt
import logging
from collections.abc import Sequence

from sqlalchemy.orm import Session

from services.common.errors import bad_field
from services.common.pagetokens import SyncPageTokens
from services.sync.app import App
from services.sync.store import audit
from services.sync.store.models import AuditEvent

logger = logging.getLogger(__name__)

RESTART_HINT = "omit page_token (or keep the same filters) to list from the newest event"


def _kind(filters: audit.AuditFilter) -> str:
    """The list a token belongs to: the same filters, so a token cannot page a different query."""
    parts = [
        filters.action.value if filters.action else "",
        filters.actor or "",
        filters.start_time.isoformat() if filters.start_time else "",
        filters.end_time.isoformat() if filters.end_time else "",
    ]
    return "auditEvents:" + "|".join(parts)


def _listed(
    session: Session,
    district_id: str,
    filters: audit.AuditFilter,
    before: tuple[dt.datetime, str] | None,
    limit: int,
) -> Sequence[AuditEvent]:
    events = audit.list_events(session, district_id, filters, before, limit)
    session.expunge_all()
    return events


class AuditTrail:
    """The audit trail of one sync service: read it, and prune what is past its retention."""

    def __init__(self, app: App, tokens: SyncPageTokens) -> None:
        self._app = app
        self._tokens = tokens

    async def list(
        self, district_id: str, filters: audit.AuditFilter, *, page_size: int, page_token: str
    ) -> tuple[Sequence[AuditEvent], str]:
        """One page of the district's events, newest first, and the next page's token ("" at the end)."""
        kind = _kind(filters)
        before: tuple[dt.datetime, str] | None = None
        if page_token:
            time, event_id = self._tokens.decode(
                kind, district_id, page_token, restart_hint=RESTART_HINT, types=[str, str]
            )
            try:
                before = (dt.datetime.fromisoformat(time), event_id)
            except ValueError:
                raise bad_field("page_token", f"not a page token of this list; {RESTART_HINT}") from None
        events = await self._app.transaction(
            lambda session: _listed(session, district_id, filters, before, page_size + 1)
        )
        if len(events) <= page_size:
            return events, ""
        page = events[:page_size]
        return page, self._tokens.encode(kind, district_id, [page[-1].time.isoformat(), page[-1].id])


async def prune_audit(app: App, now: dt.datetime | None = None) -> int:
    """Delete the audit events older than ``audit_retention_days`` as of ``now`` (default: the app's clock).

    Called by every recovery pass.
    """
    cutoff = (now or app.clock()) - dt.timedelta(days=app.settings.audit_retention_days)
    pruned = await app.transaction(lambda session: audit.prune(session, cutoff))
    if pruned:
        logger.info("pruned %d audit events older than %s", pruned, cutoff.isoformat())
    return pruned
