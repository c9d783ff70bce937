"""The floors every sync figure is divided by, measured on the same district in the same run.

* ``download``: a bare concurrent httpx loop over the pages the client fetches (schools, then teachers
  and each staff role at once; the same page size, concurrency and OAuth 1.0a signing), reading each
  body into memory and parsing nothing. It honours 429 ``Retry-After`` as any client must.
* ``write``: one SQLAlchemy Core ``executemany`` per table of the same schools, teachers and
  memberships into an empty, migrated roster database of the same backend, in one transaction.
* ``read``: a Core select of the district's teachers and of their memberships from that database.
"""

from __future__ import annotations

import asyncio
import datetime as dt
import time
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

import httpx
from sqlalchemy import insert, select

from services.common.db import make_engine
from services.roster import repository as repo
from services.roster.ids import new_id
from services.roster.validation import email_key
from services.sync.oneroster import ServerConfig
from services.sync.oneroster.auth import build_auth
from services.sync.oneroster.client import STAFF_ROLES

FLOOR_DISTRICT = "floor"


@dataclass(frozen=True)
class Teacher:
    """One teacher as the roster stores it, with the indexes of its schools."""

    given_name: str
    family_name: str
    email: str
    schools: tuple[int, ...]


@dataclass(frozen=True)
class DistrictRows:
    """A district's rows for the bare write and read: school names and teachers."""

    schools: list[str]
    teachers: list[Teacher]

    @property
    def memberships(self) -> int:
        """How many teacher-school rows the district has."""
        return sum(len(t.schools) for t in self.teachers)


def rows_from_snapshot(snapshot: Mapping[str, Any]) -> DistrictRows:
    """The active schools and teachers of a sandbox's ground truth, one teacher per email as EW keeps them.

    Generated districts hold what real ones do (a person listed twice, teachers without an email);
    EW stores one teacher per email, so the floors write and read that many.
    """
    schools = [o for o in snapshot["orgs"] if o["type"] == "school" and o["status"] == "active"]
    index = {o["sourcedId"]: n for n, o in enumerate(schools)}
    teachers: dict[str, Teacher] = {}
    for user in snapshot["users"]:
        if user["role"] != "teacher" or user["status"] != "active" or not user["email"]:
            continue
        memberships = tuple(index[org] for org in user["orgs"] if org in index)
        teachers.setdefault(
            email_key(user["email"]),
            Teacher(user["givenName"], user["familyName"], user["email"], memberships),
        )
    return DistrictRows([o["name"] for o in schools], list(teachers.values()))


async def bare_download(config: ServerConfig) -> int:
    """Downloads every page the client reads; returns the number of teachers the server reported."""
    gate = asyncio.Semaphore(config.concurrency)
    limits = httpx.Limits(max_connections=config.concurrency + 1)
    async with httpx.AsyncClient(auth=build_auth(config.credentials), timeout=60, limits=limits) as http:

        async def get(path: str, params: dict[str, str | int]) -> httpx.Response:
            while True:
                async with gate:
                    response = await http.get(config.base_url + path, params=params)
                if response.status_code != 429:
                    response.raise_for_status()
                    return response
                await asyncio.sleep(float(response.headers.get("Retry-After", "1")))

        async def collection(path: str, filter_: str | None = None) -> int:
            params: dict[str, str | int] = {"limit": config.page_size} | (
                {"filter": filter_} if filter_ else {}
            )
            first = await get(path, params | {"offset": 0})
            total, step = int(first.headers["x-total-count"]), int(first.headers["x-count"])
            if step:
                await asyncio.gather(*(get(path, params | {"offset": o}) for o in range(step, total, step)))
            return total

        await collection("/schools")
        staff = [collection("/users", f"role='{role}'") for role in STAFF_ROLES[config.version]]
        teachers, *_ = await asyncio.gather(collection("/teachers"), *staff)
    return teachers


def download_floor(config: ServerConfig) -> float:
    """Seconds of the best of two bare downloads (the first also warms the server's caches)."""
    times = []
    for _ in range(2):
        started = time.perf_counter()
        asyncio.run(bare_download(config))
        times.append(time.perf_counter() - started)
    return min(times)


def write_floor(url: str, district: DistrictRows) -> float:
    """Seconds to insert the district's rows with Core into the empty roster database at ``url``.

    The rows are built before the clock starts: the floor is the database's cost, not Python's.
    """
    engine = make_engine(url)
    now = dt.datetime.now(dt.UTC)
    stamps = {"create_time": now, "update_time": now, "state": "ACTIVE", "revision": 1}
    school_ids = [new_id() for _ in district.schools]
    teacher_ids = [new_id() for _ in district.teachers]
    schools = [
        {"id": sid, "district_id": FLOOR_DISTRICT, "display_name": name} | stamps
        for sid, name in zip(school_ids, district.schools, strict=True)
    ]
    teachers = [
        {
            "id": tid,
            "district_id": FLOOR_DISTRICT,
            "given_name": t.given_name,
            "family_name": t.family_name,
            "email": t.email,
            "email_key": email_key(t.email),
        }
        | stamps
        for tid, t in zip(teacher_ids, district.teachers, strict=True)
    ]
    memberships = [
        {"teacher_id": tid, "school_id": school_ids[s]}
        for tid, t in zip(teacher_ids, district.teachers, strict=True)
        for s in t.schools
    ]
    started = time.perf_counter()
    with engine.begin() as conn:
        conn.execute(insert(repo.districts).values(id=FLOOR_DISTRICT, display_name="Floor", create_time=now))
        conn.execute(insert(repo.schools), schools)
        conn.execute(insert(repo.teachers), teachers)
        conn.execute(insert(repo.teacher_schools), memberships)
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed


def read_floor(url: str) -> tuple[float, int]:
    """Seconds to select the floor district's teachers and memberships, and the rows read."""
    engine = make_engine(url)
    teachers = select(repo.teachers).where(repo.teachers.c.district_id == FLOOR_DISTRICT)
    memberships = (
        select(repo.teacher_schools)
        .join(repo.teachers, repo.teachers.c.id == repo.teacher_schools.c.teacher_id)
        .where(repo.teachers.c.district_id == FLOOR_DISTRICT)
    )
    started = time.perf_counter()
    with engine.connect() as conn:
        rows = len(conn.execute(teachers).all()) + len(conn.execute(memberships).all())
    elapsed = time.perf_counter() - started
    engine.dispose()
    return elapsed, rows
