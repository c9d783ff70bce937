"""Cadence arithmetic of AutoSync: when a district's next automatic sync is due. Pure functions.

A schedule names a cadence (monthly, weekly, daily), a day (of the month 1–31, or ISO weekday
1 = Monday … 7 = Sunday), a local hour and an IANA time zone, plus pause windows (inclusive local
date ranges). The rules, each chosen so one answer is always right:

- **Day 31 (or 29, 30)** in a shorter month means the month's last day (30 April, 28 or 29 February).
- **Daylight saving.** A local hour that does not exist that day (02:00 when New York springs
  forward) runs at the first instant after the gap, 03:00 daylight time: the wall time is read
  with the offset in force before the change (``fold=0``). A local hour that happens twice (01:00
  when New York falls back) runs once, at its first occurrence (daylight time, ``fold=0``).
- **Pause windows.** A due time whose local date falls inside a window moves to the first day
  after the window (after every window it chains into), at the same hour; however many due times
  the window covered, that is one run, whenever the question is asked. Force Sync Now is not
  subject to windows.
- **Missed times collapse.** ``next_due`` answers the first due time strictly after ``after``, so a
  scheduler that was down across several due times asks once with ``after`` = now and gets one.
- **Spread.** ``next_run_time`` adds a deterministic per-district offset in ``[0, spread)``, so
  thousands of districts due at the same local hour do not start together; the offset never makes
  a district skip or repeat a due time. Pause windows apply to the start with its offset: a late
  hour carried into a paused day moves past the window too.
"""

from __future__ import annotations

import calendar
import datetime as dt
import hashlib
from collections.abc import Sequence
from dataclasses import dataclass
from zoneinfo import ZoneInfo

from services.sync.vocabulary import AutoSyncCadence

MAX_PAUSE_DAYS = 366
"""Longest pause window, in days (a window spans at most a school year)."""

MAX_PAUSE_WINDOWS = 12
"""Most pause windows one district may have."""

_SEARCH_DAYS = 31 + MAX_PAUSE_WINDOWS * (MAX_PAUSE_DAYS + 1)
"""No valid schedule has its next due date further away than this many days."""


@dataclass(frozen=True)
class PauseWindow:
    """Local dates, both inclusive, during which AutoSync does not run."""

    start: dt.date
    end: dt.date

    def covers(self, day: dt.date) -> bool:
        """True when ``day`` is inside the window."""
        return self.start <= day <= self.end


@dataclass(frozen=True)
class Schedule:
    """When a district's AutoSync is due (already validated; see ``services.sync.autosync.usecases``)."""

    cadence: AutoSyncCadence
    day: int
    hour: int
    zone: ZoneInfo
    pauses: Sequence[PauseWindow] = ()

    def falls_on(self, day: dt.date) -> bool:
        """True when the cadence is due on this local date (ignoring pause windows)."""
        if self.cadence is AutoSyncCadence.DAILY:
            return True
        if self.cadence is AutoSyncCadence.WEEKLY:
            return day.isoweekday() == self.day
        last = calendar.monthrange(day.year, day.month)[1]
        return day.day == min(self.day, last)

    def at(self, day: dt.date) -> dt.datetime:
        """The UTC instant of the schedule's local hour on ``day`` (DST gaps and repeats: fold=0)."""
        local = dt.datetime.combine(day, dt.time(self.hour), tzinfo=self.zone)
        return local.astimezone(dt.UTC)

    def after_pauses(self, day: dt.date) -> dt.date:
        """``day``, or the first day after the pause windows it falls in."""
        moved = True
        while moved:
            moved = False
            for window in self.pauses:
                if window.covers(day):
                    day = window.end + dt.timedelta(days=1)
                    moved = True
        return day


def next_due(schedule: Schedule, after: dt.datetime, offset: dt.timedelta = dt.timedelta(0)) -> dt.datetime:
    """The first start strictly after ``after`` (UTC): a due time plus ``offset``, pause windows applied.

    A due date inside a pause window stands for the day after the window, so the search starts the
    day before any window that ends just before ``after`` or contains it (a due date the day before
    a window may have been moved past it by its offset, see ``_start``).
    """
    day = _search_start(schedule, after.astimezone(schedule.zone).date() - dt.timedelta(days=1))
    for _ in range(_SEARCH_DAYS):
        if schedule.falls_on(day):
            start = _start(schedule, day, offset)
            if start > after:
                return start
        day += dt.timedelta(days=1)
    raise ValueError("the schedule is never due; its pause windows should have been refused")


def _start(schedule: Schedule, day: dt.date, offset: dt.timedelta) -> dt.datetime:
    """When the run due on ``day`` starts: the hour plus ``offset``, never on a paused local date.

    The offset can carry a late hour into the next day; when that day is paused, the run moves past
    the window like a due date inside it.
    """
    start = schedule.at(schedule.after_pauses(day)) + offset
    while any(window.covers(paused := start.astimezone(schedule.zone).date()) for window in schedule.pauses):
        start = schedule.at(schedule.after_pauses(paused)) + offset
    return start


def _search_start(schedule: Schedule, day: dt.date) -> dt.date:
    """``day``, or the day before the pause windows whose moved due times may still lie after it."""
    moved = True
    while moved:
        moved = False
        for window in schedule.pauses:
            if window.start <= day <= window.end + dt.timedelta(days=1):
                day = window.start - dt.timedelta(days=1)
                moved = True
    return day


def spread_offset(district_id: str, spread: dt.timedelta) -> dt.timedelta:
    """The district's fixed place in ``[0, spread)``: a hash of its id, whole seconds."""
    seconds = int(spread.total_seconds())
    if seconds <= 0:
        return dt.timedelta(0)
    digest = hashlib.sha256(district_id.encode()).digest()
    return dt.timedelta(seconds=int.from_bytes(digest[:8], "big") % seconds)


def next_run_time(
    schedule: Schedule, district_id: str, spread: dt.timedelta, now: dt.datetime
) -> dt.datetime:
    """When the scheduler should next start the district: its next due time plus its offset, after ``now``.

    Pause windows apply to that start, not only to the due date (see ``_start``).
    """
    return next_due(schedule, now, spread_offset(district_id, spread))
