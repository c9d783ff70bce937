"""AutoSync use cases behind GetAutoSync and SetAutoSync, and the one place AutoSync turns on or off.

``AutoSyncs`` is built once with the App, like every use-case class of the service. Requests are
validated here into a ``Schedule`` (every bad field reported at once); turning AutoSync on needs a
connection and a successful sync. ``record_switch`` is the single point where an on/off change is
recorded (SetAutoSync and disconnecting ClassLink both go through it), so anything that must hear
of it — the log line and the ``autosync.enabled`` / ``autosync.disabled`` webhook event — is called
from there, inside the transaction that made the change.
"""

from __future__ import annotations

import datetime as dt
import logging
import re
from collections.abc import Sequence
from dataclasses import dataclass
from dataclasses import replace as dataclasses_replace
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from sqlalchemy.orm import Session

from services.common.errors import FailedPrecondition, FieldViolation, InvalidArgument
from services.sync.app import App
from services.sync.autosync.schedule import (
    MAX_PAUSE_DAYS,
    MAX_PAUSE_WINDOWS,
    PauseWindow,
    Schedule,
    next_run_time,
)
from services.sync.runs import repository
from services.sync.store import autosync as store
from services.sync.store import outbox
from services.sync.store.models import AutoSyncPause, AutoSyncSettings, Connection, SyncRun
from services.sync.vocabulary import AutoSyncCadence, WebhookEventType

logger = logging.getLogger(__name__)

DEFAULT_HOUR = 3
"""03:00 local: outside school hours, and outside the hour daylight saving skips or repeats in the US."""

NO_SUCCESSFUL_SYNC = (
    "Run a first successful sync before turning on AutoSync, so you have seen what a sync does to "
    "this district; then turn AutoSync on."
)
NOT_CONNECTED = (
    "ClassLink is not connected for this district; connect it and sync once before turning on AutoSync."
)

_ISO_DATE = re.compile(r"^\d{4}-\d{2}-\d{2}$")
_FIELD = "auto_sync"


@dataclass(frozen=True)
class AutoSyncRequest:
    """What SetAutoSync asked for, before validation (zeros and empties mean "default")."""

    district_id: str
    enabled: bool
    cadence: AutoSyncCadence | None
    day: int
    hour: int | None
    time_zone: str
    pauses: Sequence[tuple[str, str]]


@dataclass(frozen=True)
class AutoSyncView:
    """A district's AutoSync as GetAutoSync shows it; defaults when it never set it."""

    district_id: str
    enabled: bool
    cadence: AutoSyncCadence
    day: int
    hour: int
    time_zone: str
    pauses: Sequence[PauseWindow]
    next_run_time: dt.datetime | None
    last_auto_run: SyncRun | None
    update_time: dt.datetime | None


def _day(cadence: AutoSyncCadence, day: int, violations: list[FieldViolation]) -> int:
    if cadence is AutoSyncCadence.DAILY:
        return 0
    highest = 7 if cadence is AutoSyncCadence.WEEKLY else 31
    if day == 0:
        return 1
    if not 1 <= day <= highest:
        what = "an ISO weekday, 1 (Monday) to 7 (Sunday)" if highest == 7 else "a day of the month, 1 to 31"
        violations.append(FieldViolation(f"{_FIELD}.day", f"must be {what}, got {day}"))
    return day


def _zone(name: str, enabled: bool, violations: list[FieldViolation]) -> ZoneInfo | None:
    field = f"{_FIELD}.time_zone"
    if not name:
        if enabled:
            violations.append(
                FieldViolation(
                    field, "required to turn AutoSync on: an IANA time zone such as America/New_York"
                )
            )
        return None
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError):
        violations.append(
            FieldViolation(
                field, f"{name[:64]!r} is not an IANA time zone; use a name such as America/New_York"
            )
        )
        return None


def _date(value: str, field: str, violations: list[FieldViolation]) -> dt.date | None:
    if _ISO_DATE.match(value):
        try:
            return dt.date.fromisoformat(value)
        except ValueError:
            pass
    violations.append(FieldViolation(field, f"expected a date as YYYY-MM-DD, got {value[:40]!r}"))
    return None


def _pauses(given: Sequence[tuple[str, str]], violations: list[FieldViolation]) -> list[PauseWindow]:
    if len(given) > MAX_PAUSE_WINDOWS:
        violations.append(
            FieldViolation(
                f"{_FIELD}.pause_windows", f"at most {MAX_PAUSE_WINDOWS} windows, got {len(given)}"
            )
        )
        return []
    windows = []
    for index, (start_text, end_text) in enumerate(given):
        field = f"{_FIELD}.pause_windows[{index}]"
        start = _date(start_text, f"{field}.start_date", violations)
        end = _date(end_text, f"{field}.end_date", violations)
        if start is None or end is None:
            continue
        if end < start:
            violations.append(FieldViolation(f"{field}.end_date", f"{end} is before start_date {start}"))
        elif (end - start).days + 1 > MAX_PAUSE_DAYS:
            violations.append(
                FieldViolation(f"{field}.end_date", f"a window lasts at most {MAX_PAUSE_DAYS} days")
            )
        else:
            windows.append(PauseWindow(start, end))
    return windows


def validate(request: AutoSyncRequest) -> tuple[store.AutoSyncValues, Schedule | None]:
    """The values to store and, when AutoSync is on, its schedule; INVALID_ARGUMENT naming every bad field."""
    violations: list[FieldViolation] = []
    cadence = request.cadence or AutoSyncCadence.MONTHLY
    day = _day(cadence, request.day, violations)
    hour = DEFAULT_HOUR if request.hour is None else request.hour
    if not 0 <= hour <= 23:
        violations.append(FieldViolation(f"{_FIELD}.hour", f"must be a local hour, 0 to 23, got {hour}"))
    zone = _zone(request.time_zone, request.enabled, violations)
    windows = _pauses(request.pauses, violations)
    if violations:
        raise InvalidArgument.for_fields(violations)
    values = store.AutoSyncValues(
        district_id=request.district_id,
        enabled=request.enabled,
        cadence=cadence,
        day=day,
        hour=hour,
        time_zone=request.time_zone,
        pauses=[(window.start, window.end) for window in windows],
        next_run_time=None,
    )
    schedule = Schedule(cadence, day, hour, zone, windows) if request.enabled and zone is not None else None
    return values, schedule


def schedule_of(settings: AutoSyncSettings, pauses: Sequence[AutoSyncPause]) -> Schedule:
    """The schedule of stored settings (they were validated when stored)."""
    return Schedule(
        settings.cadence,
        settings.day,
        settings.hour,
        ZoneInfo(settings.time_zone),
        [PauseWindow(pause.start_date, pause.end_date) for pause in pauses],
    )


def record_switch(session: Session, district_id: str, *, enabled: bool, by: str, now: dt.datetime) -> None:
    """Record that the district's AutoSync was turned on or off (by SetAutoSync or a disconnect).

    Runs inside the transaction that made the change, so the webhook event lands with it or not at
    all: whatever must hear of a switch is added here.
    """
    outbox.enqueue(
        session,
        district_id,
        WebhookEventType.AUTOSYNC_ENABLED if enabled else WebhookEventType.AUTOSYNC_DISABLED,
        {"enabled": enabled, "changed_by": by},
        now=now,
    )
    logger.info(
        "AutoSync turned %s for district %s by %s at %s",
        "on" if enabled else "off",
        district_id,
        by,
        now.isoformat(),
    )


def turn_off(session: Session, district_id: str, *, by: str, now: dt.datetime) -> None:
    """Switch the district's AutoSync off, if it was on (disconnecting ClassLink does this)."""
    if store.turn_off(session, district_id, by=by, now=now):
        record_switch(session, district_id, enabled=False, by=by, now=now)


def _view(session: Session, district_id: str) -> AutoSyncView:
    settings = store.get(session, district_id)
    if settings is None:
        return AutoSyncView(
            district_id, False, AutoSyncCadence.MONTHLY, 1, DEFAULT_HOUR, "", [], None, None, None
        )
    last_run = session.get(SyncRun, settings.last_auto_run_id) if settings.last_auto_run_id else None
    view = AutoSyncView(
        district_id=district_id,
        enabled=settings.enabled,
        cadence=settings.cadence,
        day=settings.day,
        hour=settings.hour,
        time_zone=settings.time_zone,
        pauses=[
            PauseWindow(pause.start_date, pause.end_date) for pause in store.pauses(session, district_id)
        ],
        next_run_time=settings.next_run_time,
        last_auto_run=last_run,
        update_time=settings.update_time,
    )
    session.expunge_all()
    return view


def _check_can_turn_on(session: Session, district_id: str) -> None:
    if session.get(Connection, district_id) is None:
        raise FailedPrecondition(NOT_CONNECTED, reason="NOT_CONNECTED")
    if not repository.has_succeeded(session, district_id):
        raise FailedPrecondition(NO_SUCCESSFUL_SYNC, reason="NO_SUCCESSFUL_SYNC")


class AutoSyncs:
    """The AutoSync use cases of one sync service: read and replace a district's settings."""

    def __init__(self, app: App) -> None:
        self._app = app

    async def get(self, district_id: str) -> AutoSyncView:
        """The district's settings, next run time and last automatic run (defaults when never set)."""
        return await self._app.transaction(lambda session: _view(session, district_id))

    async def set(self, request: AutoSyncRequest, *, requested_by: str) -> AutoSyncView:
        """Replace the district's settings; turning AutoSync on needs a connection and a successful sync."""
        values, schedule = validate(request)
        settings = self._app.settings
        district_id = request.district_id

        def save(session: Session) -> AutoSyncView:
            now = self._app.clock()
            before = store.get(session, district_id)
            was_on = before is not None and before.enabled
            stored = values
            if schedule is not None:
                _check_can_turn_on(session, district_id)
                when = next_run_time(schedule, district_id, settings.autosync_spread, now)
                stored = dataclasses_replace(values, next_run_time=when)
            store.save(session, stored, by=requested_by, now=now)
            if was_on != values.enabled:
                record_switch(session, district_id, enabled=values.enabled, by=requested_by, now=now)
            return _view(session, district_id)

        return await self._app.transaction(save)
