"""Stage and commit N teachers across M schools in one change set, and compare with a bare insert.

``python -m benchmarks.roster [--teachers 100000] [--schools 2000] [--backends sqlite,postgresql]``
starts a real roster server (in process, port 0) per backend, drives it through the client library,
and prints rows/second per phase. The baseline is a bare SQLAlchemy Core bulk insert of the same
rows (schools, teachers, memberships) into another freshly migrated database of the same backend;
the printed ratio is (stage + commit) / baseline, target at most 5x.
"""

from __future__ import annotations

import argparse
import datetime as dt
import os
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from pathlib import Path

from ew.client.roster import RosterClient
from ew.roster.v1 import roster_pb2 as pb
from sqlalchemy import create_engine, insert, text
from sqlalchemy.engine import make_url

from services.common.auth import AuthSettings, ServiceTokenProvider
from services.common.db import make_engine, normalise_url
from services.roster import migrate
from services.roster import repository as repo
from services.roster.ids import new_id
from services.roster.server import create_server
from services.roster.settings import RosterSettings
from services.roster.validation import email_key

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


@contextmanager
def fresh_database(backend: str, server_url: str) -> Iterator[str]:
    """A new, migrated, empty database URL; dropped afterwards."""
    if backend == "sqlite":
        with tempfile.TemporaryDirectory() as folder:
            url = f"sqlite:///{Path(folder) / 'roster.db'}"
            engine = make_engine(url)
            migrate.upgrade(engine)
            engine.dispose()
            yield url
        return
    name = f"ew_bench_roster_{uuid.uuid4().hex[:10]}"
    admin = create_engine(normalise_url(server_url), isolation_level="AUTOCOMMIT")
    with admin.connect() as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    url = make_url(normalise_url(server_url)).set(database=name).render_as_string(hide_password=False)
    try:
        engine = make_engine(url)
        migrate.upgrade(engine)
        engine.dispose()
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def bare_insert(url: str, teachers: int, schools: int) -> float:
    """Seconds for one Core executemany per table of the same rows, in one transaction.

    The engine is the plain shared one (``services.common.db.make_engine``), as any service would use.
    """
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    school_ids = [new_id() for _ in range(schools)]
    teacher_ids = [new_id() for _ in range(teachers)]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(repo.districts).values(id=DISTRICT, display_name="Bench", create_time=now))
        conn.execute(
            insert(repo.schools),
            [
                {
                    "id": sid,
                    "district_id": DISTRICT,
                    "display_name": ref,
                    "create_time": now,
                    "update_time": now,
                }
                for sid, ref in zip(school_ids, school_refs(schools), strict=True)
            ],
        )
        conn.execute(
            insert(repo.teachers),
            [
                {
                    "id": tid,
                    "district_id": DISTRICT,
                    "given_name": f"Given{n}",
                    "family_name": f"Family{n}",
                    "email": email(n),
                    "email_key": email_key(email(n)),
                    "state": "ACTIVE",
                    "create_time": now,
                    "update_time": now,
                    "revision": 1,
                }
                for n, tid in enumerate(teacher_ids)
            ],
        )
        conn.execute(
            insert(repo.teacher_schools),
            [
                {"teacher_id": tid, "school_id": school_ids[s]}
                for n, tid in enumerate(teacher_ids)
                for s in memberships(n, schools)
            ],
        )
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


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


def run(backend: str, server_url: str, teachers: int, schools: int) -> float:
    """Benchmark one backend; returns the ratio."""
    rows = teachers + schools + sum(len(memberships(n, schools)) for n in range(teachers))
    with fresh_database(backend, server_url) as url:
        baseline = bare_insert(url if backend == "sqlite" else url, teachers, schools)
    with fresh_database(backend, server_url) as url:
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
    server_url = os.environ.get("EW_BENCH_DATABASE_URL", "postgresql://postgres@127.0.0.1:5432/test")
    for backend in args.backends.split(","):
        run(backend.strip(), server_url, args.teachers, args.schools)


if __name__ == "__main__":
    main()
