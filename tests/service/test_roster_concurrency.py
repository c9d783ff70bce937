"""Concurrent writers of one email end with one teacher (the database constraint, not luck)."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator

import pytest
from ew.client.roster import RosterClient
from ew.roster.v1 import roster_pb2 as pb

from tests.support.roster import Roster, running_roster

ROUNDS = 10


@pytest.fixture
def roster(database_url: Callable[[str], str]) -> Iterator[Roster]:
    with running_roster(database_url("roster")) as running:
        running.client.create_district("d1", "District One")
        yield running


def test_two_clients_upserting_the_same_email_at_once_make_one_teacher(roster: Roster) -> None:
    clients = [
        RosterClient(roster.address, timeout=60, metadata=roster.service_tokens.metadata) for _ in range(2)
    ]
    start = threading.Barrier(2)
    stored: list[list[str]] = [[], []]
    errors: list[BaseException] = []

    def write(index: int) -> None:
        try:
            for round_number in range(ROUNDS):
                start.wait(timeout=30)
                email = f"  Same.{round_number}@Example.org" if index else f"same.{round_number}@example.org"
                teacher = pb.TeacherInput(given_name=f"Writer{index}", family_name="Byron", email=email)
                stored[index].append(clients[index].batch_upsert_teachers("d1", [teacher])[0].teacher_id)
        except BaseException as error:
            errors.append(error)
            start.abort()

    threads = [threading.Thread(target=write, args=(i,)) for i in range(2)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(timeout=120)
    for client in clients:
        client.close()
    assert not errors
    assert stored[0] == stored[1]
    teachers = list(roster.client.list_teachers("d1"))
    assert len(teachers) == ROUNDS
    assert {t.teacher_id for t in teachers} == set(stored[0])
