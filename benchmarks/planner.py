"""``python -m benchmarks.planner``: the planner alone, at 20,000 and 100,000 teachers.

The planner is pure, so its cost must grow with the district and no faster: a quadratic step hides
in small tests and costs minutes at 100,000 teachers. Prints the time of an initial plan (empty EW)
and of a no-change re-plan (every teacher linked and up to date) at both sizes, and the ratio of
the times to the ratio of the sizes (target: within 10%, linear). A tenth of the teachers have
two rows (one per school, as Ed-Fi's server sends them) and every fiftieth belongs to an EW-only
school, so the rules for several rows and unowned memberships are on the measured path.
"""

from __future__ import annotations

import argparse
import time
from dataclasses import dataclass

from services.sync.planning.planner import (
    EwRoster,
    EwSchool,
    EwTeacher,
    MappingOrigin,
    MappingState,
    SourceRoster,
    SourceSchool,
    SourceTeacher,
    SyncState,
    plan_sync,
)

SCHOOLS = 2_000


@dataclass(frozen=True)
class District:
    """One district for the planner: ClassLink's roster, EW empty and after a sync, and that sync's state."""

    source: SourceRoster
    empty: EwRoster
    synced: EwRoster
    mappings: dict[str, MappingState]
    links: dict[str, str]


def district(teachers: int) -> District:
    """A district of ``teachers`` people as ClassLink lists them and as EW holds them after a sync."""
    schools = [SourceSchool(f"s{n}", f"School {n}", "active") for n in range(SCHOOLS)]
    ew_schools = [EwSchool(f"e{n}", f"School {n}") for n in range(SCHOOLS)] + [EwSchool("office", "Office")]
    mappings = {f"s{n}": MappingState(f"e{n}", MappingOrigin.CREATED) for n in range(SCHOOLS)}
    rows: list[SourceTeacher] = []
    ew_teachers: list[EwTeacher] = []
    links: dict[str, str] = {}
    for n in range(teachers):
        first, second = n % SCHOOLS, (n * 7 + 1) % SCHOOLS
        email = f"teacher{n}@district.example"
        split = n % 10 == 0
        orgs = [(f"s{first}",), (f"s{second}",)] if split else [(f"s{first}", f"s{second}")]
        for index, org_ids in enumerate(orgs):
            sourced_id = f"t{n}-{index}"
            rows.append(SourceTeacher(sourced_id, f"Given{n}", f"Family{n}", email, "active", True, org_ids))
            links[sourced_id] = f"ew{n}"
        schools_in_ew = {f"e{first}", f"e{second}"} | ({"office"} if n % 50 == 0 else set())
        ew_teachers.append(
            EwTeacher(f"ew{n}", f"Given{n}", f"Family{n}", email, frozenset(schools_in_ew), True)
        )
    return District(
        SourceRoster(schools, rows),
        EwRoster(ew_schools, []),
        EwRoster(ew_schools, ew_teachers),
        mappings,
        links,
    )


def best(runs: int, job: District, *, synced: bool) -> float:
    """The fastest of ``runs`` plans in seconds: an initial plan, or a no-change re-plan when ``synced``."""
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        if synced:
            plan = plan_sync(job.source, job.synced, SyncState(job.mappings, job.links))
            assert not plan.has_changes, "the no-change re-plan found changes"
        else:
            plan = plan_sync(job.source, job.empty, SyncState(job.mappings, {}))
            assert plan.summary.teachers_added == len(job.synced.teachers)
        times.append(time.perf_counter() - started)
    return min(times)


def main() -> None:
    """Times both plans at both sizes and prints each time ratio against the size ratio."""
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--small", type=int, default=20_000)
    parser.add_argument("--large", type=int, default=100_000)
    parser.add_argument("--runs", type=int, default=3)
    args = parser.parse_args()
    figures: dict[tuple[str, int], float] = {}
    for size in (args.small, args.large):
        job = district(size)
        for label, synced in (("initial plan", False), ("no-change re-plan", True)):
            figures[label, size] = best(args.runs, job, synced=synced)
            print(f"{label:<18} {size:>7,} teachers: {figures[label, size]:6.2f} s (best of {args.runs})")
    size_ratio = args.large / args.small
    for label in ("initial plan", "no-change re-plan"):
        time_ratio = figures[label, args.large] / figures[label, args.small]
        print(
            f"{label:<18} time ratio {time_ratio:5.2f} for size ratio {size_ratio:.2f}: "
            f"{time_ratio / size_ratio:4.2f}x linear (target <= 1.10x)"
        )


if __name__ == "__main__":
    main()
