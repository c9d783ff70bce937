"""Stage and commit N teachers across M schools in one change set, and compare with a bare insert.

``python -m benchmarks.roster [--teachers 100000] [--schools 2000] [--backends sqlite,postgresql]``
starts a real roster server (in process, port 0) per backend, drives it through the client library,
and prints rows/second per phase. The baseline is a bare SQLAlchemy Core bulk insert of the same
rows (schools, teachers, memberships) into another freshly migrated database of the same backend;
the printed ratio is (stage + commit) / baseline, target at most 5x.
"""

from __future__ import annotations

import argparse
import time
from collections.abc import Iterator, Sequence

from ew.client.roster import RosterClient
from ew.roster.v1 import roster_pb2 as pb

from benchmarks.databases import fresh_roster_database
from benchmarks.floors import DistrictRows, Teacher, write_floor
from services.common.auth import AuthSettings, ServiceTokenProvider
from services.roster.server import create_server
from services.roster.settings import RosterSettings

BATCH = 1000
DISTRICT = "bench"


def school_refs(count: int) -> list[str]:
    """Refs of the schools, like ClassLink sourcedIds."""
    return [f"school-{n:05d}" for n in range(count)]


def memberships(teacher: int, schools: int) -> list[int]:
    """Every teacher teaches in one school, every fourth in a second one too."""
    first = teacher % schools
    return [first, (first + 1) % schools] if teacher % 4 == 0 and schools > 1 else [first]


def email(teacher: int) -> str:
    """A teacher's email."""
    return f"Teacher.{teacher:06d}@Bench.Example.org"


def district_rows(teachers: int, schools: int) -> DistrictRows:
    """The same schools, teachers and memberships as the change set, for the bare insert."""
    return DistrictRows(
        school_refs(schools),
        [
            Teacher(f"Given{n}", f"Family{n}", email(n), tuple(memberships(n, schools)))
            for n in range(teachers)
        ],
    )


def batches(teachers: int, schools: int) -> Iterator[list[pb.Change]]:
    """The change set's batches: schools first, then teachers naming them by ref."""
    refs = school_refs(schools)
    for start in range(0, schools, BATCH):
        yield [
            pb.Change(create_school=pb.CreateSchoolChange(ref=ref, display_name=ref))
            for ref in refs[start : start + BATCH]
        ]
    for start in range(0, teachers, BATCH):
        yield [
            pb.Change(
                upsert_teacher=pb.UpsertTeacherChange(
                    ref=f"teacher-{n:06d}",
                    given_name=f"Given{n}",
                    family_name=f"Family{n}",
                    email=email(n),
                    schools=[pb.SchoolRef(school_ref=refs[s]) for s in memberships(n, schools)],
                )
            )
            for n in range(start, min(start + BATCH, teachers))
        ]


def rate(rows: int, seconds: float) -> str:
    """Rows per second, readable."""
    return f"{rows / seconds:>10,.0f} rows/s  ({seconds:7.2f} s)"


def run(backend: str, teachers: int, schools: int) -> float:
    """Benchmark one backend; returns the ratio."""
    rows = teachers + schools + sum(len(memberships(n, schools)) for n in range(teachers))
    with fresh_roster_database(backend) as url:
        baseline = write_floor(url, district_rows(teachers, schools))
    with fresh_roster_database(backend) as url:
        settings = RosterSettings(database_url=url, listen_address="127.0.0.1:0")
        auth = AuthSettings(allow_dev_key=True)
        roster = create_server(settings, auth=auth)
        roster.server.start()
        client = RosterClient(
            f"127.0.0.1:{roster.port}", timeout=600, metadata=ServiceTokenProvider(auth).metadata
        )
        try:
            client.create_district(DISTRICT, "Bench")
            started = time.perf_counter()
            change_set = client.create_change_set(DISTRICT)
            for number, changes in enumerate(batches(teachers, schools), start=1):
                client.stage_changes(change_set.name, number, changes)
            staged = time.perf_counter()
            committed_set = client.commit_change_set(change_set.name)
            committed = time.perf_counter()
            listed = sum(1 for _ in client.list_teachers(DISTRICT))
            done = time.perf_counter()
        finally:
            client.close()
            roster.stop(None)
    assert committed_set.applied.teachers_created == teachers and listed == teachers
    whole = committed - started
    ratio = whole / baseline
    print(f"\n{backend}: {teachers:,} teachers, {schools:,} schools, {rows:,} rows with memberships")
    print(
        f"  stage ({-(-(teachers + schools) // BATCH)} batches)  {rate(teachers + schools, staged - started)}"
    )
    print(f"  commit                 {rate(rows, committed - staged)}")
    print(f"  stage + commit         {rate(rows, whole)}")
    print(f"  list teachers          {rate(listed, done - committed)}")
    print(f"  bare Core insert       {rate(rows, baseline)}")
    print(f"  ratio (stage + commit) / bare insert: {ratio:.2f}x (target <= 5x)")
    return ratio


def main(argv: Sequence[str] | None = None) -> None:
    """Entry point of ``python -m benchmarks.roster``."""
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    parser.add_argument("--teachers", type=int, default=100_000)
    parser.add_argument("--schools", type=int, default=2_000)
    parser.add_argument("--backends", default="sqlite,postgresql", help="comma-separated: sqlite,postgresql")
    args = parser.parse_args(argv)
    for backend in args.backends.split(","):
        run(backend.strip(), args.teachers, args.schools)


if __name__ == "__main__":
    main()
