"""The asyncio roster client (what the sync service uses) against a real roster server."""

from __future__ import annotations

from collections.abc import Callable, Iterator

import grpc
import pytest
from ew.client.errors import FailedPreconditionError, InvalidArgumentError, NotFoundError
from ew.client.roster import AsyncRosterClient
from ew.roster.v1 import roster_pb2 as pb

from services.sync.planning.ew_roster import read_ew_roster
from tests.support.roster import Roster, running_roster


@pytest.fixture
def roster(database_url: Callable[[str], str]) -> Iterator[Roster]:
    with running_roster(database_url("roster")) as running:
        running.client.create_district("d1", "District One")
        yield running


async def test_a_sync_as_the_sync_service_runs_it(roster: Roster) -> None:
    async with AsyncRosterClient(
        roster.address, timeout=30, metadata=roster.service_tokens.metadata
    ) as client:
        assert (await client.get_district("d1")).display_name == "District One"
        existing = await client.batch_create_schools("d1", [f"School {n:04d}" for n in range(1000)])
        await client.batch_create_schools("d1", ["School 1000"])
        assert [s.display_name async for s in client.list_schools("d1")][-2:] == [
            "School 0999",
            "School 1000",
        ]

        change_set = await client.create_change_set("d1", request_id="0b7a4c9e-3f5d-4c59-9d1e-8f1a2b3c4d5e")
        await client.stage_changes(
            change_set.name,
            1,
            [pb.Change(create_school=pb.CreateSchoolChange(ref="cl-1", display_name="New"))],
        )
        await client.stage_changes(
            change_set.name,
            2,
            [
                pb.Change(
                    upsert_teacher=pb.UpsertTeacherChange(
                        ref=f"t{n}",
                        given_name=f"Given{n}",
                        family_name="Byron",
                        email=f"t{n}@example.org",
                        schools=[
                            pb.SchoolRef(school_ref="cl-1"),
                            pb.SchoolRef(school_id=existing[n].school_id),
                        ],
                    )
                )
                for n in range(3)
            ],
        )
        committed = await client.commit_change_set(change_set.name, timeout=60)
        assert committed.applied == pb.ChangeCounts(schools_created=1, teachers_created=3)
        assert (await client.get_change_set(change_set.name)).state == pb.CHANGE_SET_STATE_COMMITTED
        results = [r async for r in client.list_change_set_results(change_set.name)]
        assert [r.ref for r in results] == ["cl-1", "t0", "t1", "t2"]
        teachers = [t async for t in client.list_teachers("d1", email="T1@example.org")]
        assert [t.teacher_id for t in teachers] == [results[2].resource_id]
        assert len([t async for t in client.list_teachers("d1", state=pb.TEACHER_STATE_ACTIVE)]) == 3


async def test_async_errors_are_mapped(roster: Roster) -> None:
    async with AsyncRosterClient(roster.address, metadata=roster.service_tokens.metadata) as client:
        with pytest.raises(NotFoundError) as missing:
            await client.get_district("nope")
        assert missing.value.code == grpc.StatusCode.NOT_FOUND and "'nope'" in missing.value.message
        with pytest.raises(InvalidArgumentError) as invalid:
            await client.batch_create_schools("d1", ["ok", "x" * 300])
        assert [v.field for v in invalid.value.violations] == ["schools[1].display_name"]
        change_set = await client.create_change_set("d1")
        await client.abandon_change_set(change_set.name, "not needed")
        with pytest.raises(FailedPreconditionError) as ended:
            await client.commit_change_set(change_set.name)
        assert ended.value.reason == "CHANGE_SET_ABANDONED"


async def test_the_syncs_read_of_ew_counts_teachers_against_the_snapshots_total(roster: Roster) -> None:
    school = roster.client.batch_create_schools("d1", ["Elm"])[0]
    for start in (0, 1000, 2000):
        roster.client.batch_upsert_teachers(
            "d1",
            [
                pb.TeacherInput(
                    given_name="Given",
                    family_name="Family",
                    email=f"t{n}@d1.example",
                    school_ids=[school.school_id],
                )
                for n in range(start, start + 1000)
            ],
        )
    heard: list[tuple[int, int]] = []

    async with AsyncRosterClient(roster.address, metadata=roster.service_tokens.metadata) as client:
        ew = await read_ew_roster(client, "d1", lambda read, total: heard.append((read, total)))

    assert len(ew.teachers) == 3000
    assert {total for _, total in heard} == {3000}
    counts = [read for read, _ in heard]
    assert counts == sorted(counts) and counts[-1] == 3000 and len(set(counts)) >= 3
