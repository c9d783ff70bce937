"""Cadence arithmetic of AutoSync with an injected clock: day 31, DST, zones, pause windows, missed times.

Every expectation is a wall-clock fact a district administrator can check on a calendar; the
property tests draw schedules and clocks and check what every due time must satisfy.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import itertools
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from services.sync.autosync.schedule import (
    MAX_PAUSE_WINDOWS,
    PauseWindow,
    Schedule,
    next_due,
    next_run_time,
    spread_offset,
)
from services.sync.vocabulary import AutoSyncCadence

NEW_YORK = ZoneInfo("America/New_York")
UTC = ZoneInfo("UTC")
MONTHLY, WEEKLY, DAILY = AutoSyncCadence.MONTHLY, AutoSyncCadence.WEEKLY, AutoSyncCadence.DAILY


def local(zone: dt.tzinfo, year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return dt.datetime(year, month, day, hour, minute, tzinfo=zone)


def utc(year: int, month: int, day: int, hour: int = 0, minute: int = 0) -> dt.datetime:
    return local(dt.UTC, year, month, day, hour, minute)


def dues(schedule: Schedule, now: dt.datetime, count: int) -> list[dt.datetime]:
    """The next ``count`` due times, each asked for right after the previous one ran."""
    found = []
    for _ in range(count):
        now = next_due(schedule, now)
        found.append(now)
    return found


@pytest.mark.parametrize(
    ("year", "february_day"),
    [(2027, 28), (2028, 29)],
    ids=["february-common-year", "february-leap-year"],
)
def test_day_31_runs_on_the_last_day_of_shorter_months(year: int, february_day: int) -> None:
    schedule = Schedule(MONTHLY, day=31, hour=6, zone=UTC)
    found = dues(schedule, utc(year, 1, 1), 5)
    assert [due.date() for due in found] == [
        dt.date(year, 1, 31),
        dt.date(year, 2, february_day),
        dt.date(year, 3, 31),
        dt.date(year, 4, 30),
        dt.date(year, 5, 31),
    ]
    assert {due.hour for due in found} == {6}


def test_day_30_in_february_is_the_last_day_and_march_is_the_30th() -> None:
    schedule = Schedule(MONTHLY, day=30, hour=0, zone=UTC)
    assert [due.date() for due in dues(schedule, utc(2027, 2, 1), 2)] == [
        dt.date(2027, 2, 28),
        dt.date(2027, 3, 30),
    ]


def test_the_nonexistent_0200_of_spring_forward_runs_at_0300_daylight_time() -> None:
    schedule = Schedule(DAILY, day=1, hour=2, zone=NEW_YORK)
    found = dues(schedule, local(NEW_YORK, 2027, 3, 13, 12), 2)
    # 14 March 2027: clocks jump from 02:00 EST to 03:00 EDT.
    assert found[0] == utc(2027, 3, 14, 7)
    assert found[0].astimezone(NEW_YORK).hour == 3
    assert found[1].astimezone(NEW_YORK) == local(NEW_YORK, 2027, 3, 15, 2)


def test_the_repeated_0100_of_fall_back_runs_once_at_its_first_occurrence() -> None:
    schedule = Schedule(DAILY, day=1, hour=1, zone=NEW_YORK)
    found = dues(schedule, local(NEW_YORK, 2027, 11, 6, 12), 2)
    # 7 November 2027: 01:00 EDT (05:00 UTC), then 01:00 again as EST (06:00 UTC).
    assert found[0] == utc(2027, 11, 7, 5)
    assert found[1] == utc(2027, 11, 8, 6)


def test_asking_between_the_two_0100s_of_fall_back_does_not_run_the_second_one() -> None:
    schedule = Schedule(DAILY, day=1, hour=1, zone=NEW_YORK)
    assert next_due(schedule, utc(2027, 11, 7, 5, 30)) == utc(2027, 11, 8, 6)


@pytest.mark.parametrize(
    ("zone", "expected"),
    [
        (
            "Pacific/Auckland",
            utc(2027, 2, 28, 20),
        ),  # UTC+13 in summer: 1 March 09:00 is the day before in UTC
        ("America/Los_Angeles", utc(2027, 3, 1, 17)),  # UTC-8
        ("Pacific/Honolulu", utc(2027, 3, 1, 19)),  # UTC-10
        ("Asia/Kolkata", utc(2027, 3, 1, 3, 30)),  # UTC+5:30
    ],
)
def test_time_zones_either_side_of_utc(zone: str, expected: dt.datetime) -> None:
    schedule = Schedule(MONTHLY, day=1, hour=9, zone=ZoneInfo(zone))
    assert next_due(schedule, utc(2027, 2, 15)) == expected


def test_weekly_runs_on_the_iso_weekday() -> None:
    schedule = Schedule(WEEKLY, day=7, hour=22, zone=NEW_YORK)
    found = dues(schedule, local(NEW_YORK, 2027, 6, 2), 2)  # a Wednesday
    assert [due.astimezone(NEW_YORK) for due in found] == [
        local(NEW_YORK, 2027, 6, 6, 22),
        local(NEW_YORK, 2027, 6, 13, 22),
    ]


def test_a_pause_window_over_the_due_time_moves_the_run_past_the_window() -> None:
    summer = PauseWindow(dt.date(2027, 6, 15), dt.date(2027, 8, 20))
    schedule = Schedule(MONTHLY, day=1, hour=3, zone=NEW_YORK, pauses=[summer])
    found = dues(schedule, local(NEW_YORK, 2027, 6, 10), 3)
    # 1 July and 1 August are inside the window: one run the day after it, then the cadence resumes.
    assert [due.astimezone(NEW_YORK) for due in found] == [
        local(NEW_YORK, 2027, 8, 21, 3),
        local(NEW_YORK, 2027, 9, 1, 3),
        local(NEW_YORK, 2027, 10, 1, 3),
    ]


def test_the_run_after_a_pause_window_holds_whenever_it_is_asked_for() -> None:
    summer = PauseWindow(dt.date(2027, 6, 15), dt.date(2027, 8, 20))
    schedule = Schedule(MONTHLY, day=1, hour=3, zone=NEW_YORK, pauses=[summer])
    for asked in (local(NEW_YORK, 2027, 7, 2), local(NEW_YORK, 2027, 8, 21, 1)):
        assert next_due(schedule, asked) == local(NEW_YORK, 2027, 8, 21, 3)


def test_chained_pause_windows_move_the_run_past_all_of_them() -> None:
    pauses = [
        PauseWindow(dt.date(2027, 12, 20), dt.date(2027, 12, 31)),
        PauseWindow(dt.date(2028, 1, 1), dt.date(2028, 1, 3)),
    ]
    schedule = Schedule(DAILY, day=1, hour=3, zone=UTC, pauses=pauses)
    assert next_due(schedule, utc(2027, 12, 19, 12)) == utc(2028, 1, 4, 3)


def test_downtime_across_three_due_times_gives_one_due_time_after_now() -> None:
    schedule = Schedule(MONTHLY, day=1, hour=3, zone=NEW_YORK)
    last_run = local(NEW_YORK, 2027, 1, 1, 3)
    back_up = local(NEW_YORK, 2027, 4, 10, 12)  # 1 February, 1 March and 1 April were missed
    assert next_due(schedule, last_run) < back_up
    assert next_due(schedule, back_up) == local(NEW_YORK, 2027, 5, 1, 3)


def test_an_offset_that_carries_a_late_hour_into_a_pause_window_moves_the_run_past_it() -> None:
    summer = PauseWindow(dt.date(2027, 6, 2), dt.date(2027, 6, 30))
    schedule = Schedule(MONTHLY, day=1, hour=23, zone=UTC, pauses=[summer])
    spread = dt.timedelta(hours=6)
    district = next(
        f"d{n}" for n in itertools.count() if spread_offset(f"d{n}", spread) > dt.timedelta(hours=1)
    )
    offset = spread_offset(district, spread)

    # Due 1 June at 23:00, but it would start on 2 June, the first paused day.
    run_time = next_run_time(schedule, district, spread, utc(2027, 5, 15, 0))

    assert run_time == utc(2027, 7, 1, 23) + offset


def test_the_spread_offset_is_fixed_per_district_and_inside_the_window() -> None:
    spread = dt.timedelta(hours=1)
    offsets = {spread_offset(f"district-{n}", spread) for n in range(200)}
    assert all(dt.timedelta(0) <= offset < spread for offset in offsets)
    assert len(offsets) > 150  # districts are spread out, not bunched
    assert spread_offset("d1", spread) == spread_offset("d1", spread)
    assert spread_offset("d1", dt.timedelta(0)) == dt.timedelta(0)


def test_the_run_time_adds_the_offset_to_the_due_time_without_skipping_it() -> None:
    schedule = Schedule(DAILY, day=1, hour=3, zone=UTC)
    spread = dt.timedelta(hours=1)
    offset = spread_offset("d1", spread)
    assert offset > dt.timedelta(0)
    # Asked after the due time but before the district's place in the spread: still today's run.
    now = utc(2027, 5, 5, 3) + offset / 2
    assert next_run_time(schedule, "d1", spread, now) == utc(2027, 5, 5, 3) + offset
    assert next_run_time(schedule, "d1", spread, utc(2027, 5, 5, 3) + offset) == utc(2027, 5, 6, 3) + offset


ZONES = [
    "America/New_York",
    "Europe/London",
    "Australia/Lord_Howe",
    "Pacific/Chatham",
    "Asia/Kathmandu",
    "UTC",
]


@st.composite
def schedules(draw: st.DrawFn) -> Schedule:
    cadence = draw(st.sampled_from(list(AutoSyncCadence)))
    day = draw(st.integers(1, 7 if cadence is WEEKLY else 31))
    windows = []
    for _ in range(draw(st.integers(0, MAX_PAUSE_WINDOWS))):
        start = draw(st.dates(dt.date(2026, 1, 1), dt.date(2030, 12, 31)))
        windows.append(PauseWindow(start, start + dt.timedelta(days=draw(st.integers(0, 365)))))
    return Schedule(cadence, day, draw(st.integers(0, 23)), ZoneInfo(draw(st.sampled_from(ZONES))), windows)


clocks = st.datetimes(dt.datetime(2026, 1, 1), dt.datetime(2030, 12, 31)).map(
    lambda t: t.replace(tzinfo=dt.UTC)
)


def _wall_time_exists(schedule: Schedule, day: dt.date) -> bool:
    wall = dt.datetime.combine(day, dt.time(schedule.hour), tzinfo=schedule.zone)
    return wall.astimezone(dt.UTC).astimezone(schedule.zone).replace(tzinfo=None) == wall.replace(tzinfo=None)


def assert_due_time(schedule: Schedule, due: dt.datetime) -> None:
    """``due`` is at the local hour asked (or just after a DST gap), outside every pause window."""
    wall = due.astimezone(schedule.zone)
    if _wall_time_exists(schedule, wall.date()):
        assert (wall.hour, wall.minute, wall.second) == (schedule.hour, 0, 0)
    else:  # inside a daylight-saving gap: the first instant after it, still that day
        assert wall.hour > schedule.hour
    assert not any(window.covers(wall.date()) for window in schedule.pauses)


@settings(max_examples=300, deadline=None)
@given(schedules(), clocks)
def test_next_due_is_after_now_at_the_hour_asked_and_never_paused(
    schedule: Schedule, now: dt.datetime
) -> None:
    due = next_due(schedule, now)
    assert due > now
    assert_due_time(schedule, due)


@settings(max_examples=300, deadline=None)
@given(schedules(), clocks, st.floats(0, 1))
def test_no_due_time_is_skipped_between_now_and_the_next_one(
    schedule: Schedule, now: dt.datetime, fraction: float
) -> None:
    due = next_due(schedule, now)
    # Asking again from any instant before the due time gives the same due time.
    assert next_due(schedule, now + (due - now) * fraction * 0.999) == due


@settings(max_examples=300, deadline=None)
@given(
    schedules(),
    clocks,
    st.text(min_size=1, max_size=20),
    st.sampled_from([45, 6 * 60]),
    st.none() | st.integers(0, 30),
)
def test_the_run_time_is_after_now_a_due_time_plus_the_district_offset_and_never_paused(
    schedule: Schedule, now: dt.datetime, district: str, spread_minutes: int, pause_after_due: int | None
) -> None:
    spread = dt.timedelta(minutes=spread_minutes)
    offset = spread_offset(district, spread)
    if pause_after_due is not None:
        # A window from the day after the due date this run stands for: where an offset carries a
        # late hour.
        due_day = next_due(schedule, now - offset).astimezone(schedule.zone).date()
        window = PauseWindow(due_day + dt.timedelta(days=1), due_day + dt.timedelta(days=1 + pause_after_due))
        schedule = dataclasses.replace(schedule, pauses=[*schedule.pauses, window])
    run_time = next_run_time(schedule, district, spread, now)
    assert run_time > now
    assert_due_time(schedule, run_time - offset)
    # The run itself starts outside every pause window, offset included.
    assert not any(window.covers(run_time.astimezone(schedule.zone).date()) for window in schedule.pauses)
