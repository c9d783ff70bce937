"""Every RPC of both services × every kind of caller: the status the rules give; refusals change nothing.

The RPC lists come from the service descriptors, so a new RPC without a row in ``RPCS`` fails here
until someone decides who may call it. Callers whose token fails verification get UNAUTHENTICATED;
callers the rules do not allow get PERMISSION_DENIED (and both databases stay exactly as they were);
the callers the rules allow get through to the use case (OK, or the one non-auth status the row names).
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import grpc
import pytest
from ew.client.roster import RosterClient
from ew.roster.v1 import roster_pb2, roster_service_pb2
from ew.sync.v1 import sync_pb2, sync_service_pb2
from google.protobuf import message_factory
from google.protobuf.descriptor import MethodDescriptor, ServiceDescriptor
from google.protobuf.message import Message
from pydantic import SecretStr

from services.common.auth import AuthSettings, Role, ServiceTokenProvider, mint_token
from services.common.devtoken import mint_dev_token
from services.roster.audit import AUDITED_RPCS as ROSTER_AUDITED_RPCS
from services.sync.api.audited import AUDITED_RPCS
from tests.support.db_dump import Dump, TableDump
from tests.support.sandbox import REDIRECT_URI, sso_settings, start_sandbox
from tests.support.sync_stack import DISTRICT, PREMIUM, SyncStack, sync_stack

pytestmark = pytest.mark.timeout(300)

SYNC = sync_service_pb2.DESCRIPTOR.services_by_name["SyncService"]
ROSTER = roster_service_pb2.DESCRIPTOR.services_by_name["RosterService"]
OTHER = "d-other"
GHOST = "d-ghost"
"""A district nobody created: another district's caller must not be able to tell it from a real one."""
OK = grpc.StatusCode.OK
# The audit table's columns, in the order TableDump reads them.
AUDIT_COLUMNS = ("id", "district_id", "time", "actor", "action", "target", "outcome", "message")


class Caller(enum.Enum):
    """Who calls; the premium administrator of the district comes last, after every refusal."""

    NO_TOKEN = "no token"
    EXPIRED = "expired token"
    BAD_SIGNATURE = "bad signature"
    WRONG_AUDIENCE = "wrong audience"
    TEACHER = "teacher"
    SCHOOL_ADMIN = "school admin"
    BASIC_PLAN = "basic-plan district admin"
    OTHER_DISTRICT = "other district's premium admin"
    SERVICE = "service identity"
    PREMIUM_ADMIN = "premium district admin"


UNVERIFIABLE = frozenset({Caller.NO_TOKEN, Caller.EXPIRED, Caller.BAD_SIGNATURE, Caller.WRONG_AUDIENCE})
SYNC_ADMINS = frozenset({Caller.PREMIUM_ADMIN})
ROSTER_READERS = frozenset(
    {Caller.TEACHER, Caller.SCHOOL_ADMIN, Caller.BASIC_PLAN, Caller.SERVICE, Caller.PREMIUM_ADMIN}
)
ROSTER_WRITERS = frozenset({Caller.BASIC_PLAN, Caller.SERVICE, Caller.PREMIUM_ADMIN})
UNARCHIVERS = ROSTER_WRITERS
DISTRICT_CREATORS = frozenset({Caller.SERVICE})


# Token subjects of the callers a person would be, so the audit trail tells them apart.
SUBJECTS = {
    caller: f"{caller.name.lower()}@example.org"
    for caller in (
        Caller.TEACHER,
        Caller.SCHOOL_ADMIN,
        Caller.BASIC_PLAN,
        Caller.OTHER_DISTRICT,
        Caller.PREMIUM_ADMIN,
    )
}


def expected(allowed: frozenset[Caller], caller: Caller, granted: grpc.StatusCode) -> grpc.StatusCode:
    """The status ``caller`` gets from an RPC that ``allowed`` may call."""
    if caller in UNVERIFIABLE:
        return grpc.StatusCode.UNAUTHENTICATED
    return granted if caller in allowed else grpc.StatusCode.PERMISSION_DENIED


@dataclass
class World:
    """The district's resources every request names, and a roster client acting as the service."""

    stack: SyncStack
    roster: RosterClient
    tokens: dict[Caller, str | None]
    school_id: str
    teacher_id: str
    change_set_id: str
    committed_change_set_id: str
    run_id: str
    classlink_school_id: str
    dumps: tuple[TableDump, TableDump] = field(init=False)

    def __post_init__(self) -> None:
        self.dumps = (TableDump(self.stack.roster.engine), TableDump(self.stack.app.engine))

    def snapshot(self) -> tuple[Dump, Dump]:
        """Every row of the roster and the sync databases, but the audit trails (``audit_rows``)."""
        roster, sync = self.dumps[0].rows(), self.dumps[1].rows()
        roster.pop("audit_events")
        sync.pop("audit_events")
        return roster, sync

    def audit_rows(self, service: ServiceDescriptor) -> list[tuple[str, ...]]:
        """The rows of the service's audit trail."""
        return self.dumps[0 if service is ROSTER else 1].rows()["audit_events"]

    def active_teacher(self) -> str:
        """A new active teacher of the district."""
        email = f"t-{uuid.uuid4().hex[:10]}@example.org"
        teacher = self.roster.batch_upsert_teachers(
            DISTRICT, [roster_pb2.TeacherInput(given_name="Ada", family_name="Byron", email=email)]
        )[0]
        return teacher.teacher_id

    def archived_teacher(self) -> str:
        """A new archived teacher of the district."""
        teacher_id = self.active_teacher()
        self.roster.batch_archive_teachers(DISTRICT, [teacher_id], "left the district")
        return teacher_id

    def school_pair(self) -> tuple[str, str]:
        """Two new active EW schools of the district (neither mapped to a ClassLink school)."""
        first, second = self.roster.batch_create_schools(
            DISTRICT, [f"Merge {uuid.uuid4().hex[:8]}", f"Into {uuid.uuid4().hex[:8]}"]
        )
        return first.school_id, second.school_id

    def open_change_set(self) -> str:
        """A new open change set of the district."""
        return self.roster.create_change_set(DISTRICT).change_set_id

    def staged_change_set(self) -> str:
        """A new open change set holding one staged teacher."""
        change_set_id = self.open_change_set()
        self.roster.stage_changes(change_set_name(DISTRICT, change_set_id), 1, [new_teacher_change()])
        return change_set_id


def change_set_name(district: str, change_set_id: str) -> str:
    return f"districts/{district}/changeSets/{change_set_id}"


def new_teacher_change() -> roster_pb2.Change:
    email = f"staged-{uuid.uuid4().hex[:10]}@example.org"
    return roster_pb2.Change(
        upsert_teacher=roster_pb2.UpsertTeacherChange(
            ref=email, given_name="Grace", family_name="Hopper", email=email
        )
    )


Request = Callable[[World, str], Message]


@dataclass(frozen=True)
class Rpc:
    """Who may call an RPC, a valid request naming a district, and how to undo an allowed call."""

    allowed: frozenset[Caller]
    request: Request
    granted: grpc.StatusCode = OK
    restore: Callable[[World], None] | None = None


def parent(district: str) -> str:
    return f"districts/{district}"


def run_name(world: World, district: str) -> str:
    return f"districts/{district}/syncRuns/{world.run_id}"


def manual_connect(world: World, district: str) -> Message:
    tenant = world.stack.sandbox.tenant()
    return sync_service_pb2.ConnectClassLinkRequest(
        parent=parent(district),
        manual=sync_pb2.ManualCredentials(
            server_url=tenant.server_url,
            auth_method=sync_pb2.AUTH_METHOD_OAUTH1,
            client_id=tenant.client_id,
            client_secret=tenant.client_secret,
        ),
    )


def map_back(world: World) -> None:
    world.stack.client.map_schools(DISTRICT, [(world.classlink_school_id, world.school_id)])


def finish_run(world: World) -> None:
    """Follow the run (or preview job) a start left going, so the next row's snapshot holds still."""
    for run in world.stack.client.list_runs(DISTRICT, page_size=1).runs:
        list(world.stack.client.watch_run(run.name))


def school_name(district: str, school_id: str) -> str:
    return f"{parent(district)}/schools/{school_id}"


def merge_request(district: str, school_id: str, into_school_id: str) -> Message:
    return sync_service_pb2.MergeSchoolRequest(
        parent=parent(district), ew_school_id=school_id, into_ew_school_id=into_school_id
    )


S = sync_service_pb2
R = roster_service_pb2
RPCS: dict[tuple[str, str], Rpc] = {
    ("SyncService", "StartClassLinkSignIn"): Rpc(
        SYNC_ADMINS, lambda w, d: S.StartClassLinkSignInRequest(parent=parent(d), redirect_uri=REDIRECT_URI)
    ),
    ("SyncService", "ConnectClassLink"): Rpc(SYNC_ADMINS, manual_connect),
    ("SyncService", "GetConnection"): Rpc(
        SYNC_ADMINS, lambda w, d: S.GetConnectionRequest(name=f"{parent(d)}/connection")
    ),
    ("SyncService", "DeleteConnection"): Rpc(
        SYNC_ADMINS,
        lambda w, d: S.DeleteConnectionRequest(name=f"{parent(d)}/connection"),
        restore=lambda w: w.stack.connect(),
    ),
    ("SyncService", "ListSchoolMappings"): Rpc(
        SYNC_ADMINS, lambda w, d: S.ListSchoolMappingsRequest(parent=parent(d))
    ),
    ("SyncService", "MapSchools"): Rpc(
        SYNC_ADMINS,
        lambda w, d: S.MapSchoolsRequest(
            parent=parent(d),
            pairs=[sync_pb2.SchoolPair(classlink_school_id=w.classlink_school_id, ew_school_id=w.school_id)],
        ),
    ),
    ("SyncService", "UnmapSchool"): Rpc(
        SYNC_ADMINS,
        lambda w, d: S.UnmapSchoolRequest(name=f"{parent(d)}/schoolMappings/{w.classlink_school_id}"),
        restore=map_back,
    ),
    ("SyncService", "PreviewSync"): Rpc(SYNC_ADMINS, lambda w, d: S.PreviewSyncRequest(parent=parent(d))),
    ("SyncService", "StartSyncPreview"): Rpc(
        SYNC_ADMINS, lambda w, d: S.StartSyncPreviewRequest(parent=parent(d)), restore=finish_run
    ),
    ("SyncService", "StartSyncRun"): Rpc(
        SYNC_ADMINS, lambda w, d: S.StartSyncRunRequest(parent=parent(d)), restore=finish_run
    ),
    ("SyncService", "SyncRosters"): Rpc(SYNC_ADMINS, lambda w, d: S.SyncRostersRequest(parent=parent(d))),
    ("SyncService", "WatchSyncRun"): Rpc(
        SYNC_ADMINS, lambda w, d: S.WatchSyncRunRequest(name=run_name(w, d))
    ),
    ("SyncService", "GetSyncRun"): Rpc(SYNC_ADMINS, lambda w, d: S.GetSyncRunRequest(name=run_name(w, d))),
    ("SyncService", "ListSyncRuns"): Rpc(SYNC_ADMINS, lambda w, d: S.ListSyncRunsRequest(parent=parent(d))),
    ("SyncService", "ListSyncRunItems"): Rpc(
        SYNC_ADMINS, lambda w, d: S.ListSyncRunItemsRequest(parent=run_name(w, d))
    ),
    ("SyncService", "ForceSyncNow"): Rpc(
        SYNC_ADMINS, lambda w, d: S.ForceSyncNowRequest(parent=parent(d)), restore=finish_run
    ),
    ("SyncService", "GetAutoSync"): Rpc(
        SYNC_ADMINS, lambda w, d: S.GetAutoSyncRequest(name=f"{parent(d)}/autoSync")
    ),
    ("SyncService", "SetAutoSync"): Rpc(
        SYNC_ADMINS,
        lambda w, d: S.SetAutoSyncRequest(
            auto_sync=sync_pb2.AutoSync(
                name=f"{parent(d)}/autoSync", enabled=True, time_zone="America/New_York"
            )
        ),
    ),
    # The world's run has ended, so the administrator gets as far as FAILED_PRECONDITION.
    ("SyncService", "CancelSyncRun"): Rpc(
        SYNC_ADMINS,
        lambda w, d: S.CancelSyncRunRequest(name=run_name(w, d)),
        granted=grpc.StatusCode.FAILED_PRECONDITION,
    ),
    ("SyncService", "MergeSchool"): Rpc(SYNC_ADMINS, lambda w, d: merge_request(d, *w.school_pair())),
    # A preview: the allowed caller sees the revert of the module's run without changing the world.
    ("SyncService", "RevertSyncRun"): Rpc(
        SYNC_ADMINS, lambda w, d: S.RevertSyncRunRequest(name=run_name(w, d), validate_only=True)
    ),
    ("SyncService", "ListAuditEvents"): Rpc(
        SYNC_ADMINS, lambda w, d: S.ListAuditEventsRequest(parent=parent(d))
    ),
    ("SyncService", "ListTeacherHistory"): Rpc(
        SYNC_ADMINS, lambda w, d: S.ListTeacherHistoryRequest(parent=parent(d), teacher_id=w.teacher_id)
    ),
    # Naming an existing district, so the service identity gets as far as ALREADY_EXISTS.
    ("RosterService", "CreateDistrict"): Rpc(
        DISTRICT_CREATORS,
        lambda w, d: R.CreateDistrictRequest(district_id=d, display_name="New District"),
        granted=grpc.StatusCode.ALREADY_EXISTS,
    ),
    ("RosterService", "GetDistrict"): Rpc(ROSTER_READERS, lambda w, d: R.GetDistrictRequest(name=parent(d))),
    ("RosterService", "GetSchool"): Rpc(
        ROSTER_READERS, lambda w, d: R.GetSchoolRequest(name=f"{parent(d)}/schools/{w.school_id}")
    ),
    ("RosterService", "ListSchools"): Rpc(
        ROSTER_READERS, lambda w, d: R.ListSchoolsRequest(parent=parent(d))
    ),
    ("RosterService", "BatchCreateSchools"): Rpc(
        ROSTER_WRITERS,
        lambda w, d: R.BatchCreateSchoolsRequest(
            parent=parent(d), schools=[roster_pb2.School(display_name=f"School {uuid.uuid4().hex[:8]}")]
        ),
    ),
    ("RosterService", "GetTeacher"): Rpc(
        ROSTER_READERS, lambda w, d: R.GetTeacherRequest(name=f"{parent(d)}/teachers/{w.teacher_id}")
    ),
    ("RosterService", "ListTeachers"): Rpc(
        ROSTER_READERS, lambda w, d: R.ListTeachersRequest(parent=parent(d))
    ),
    ("RosterService", "ExportDistrictRoster"): Rpc(
        ROSTER_READERS, lambda w, d: R.ExportDistrictRosterRequest(parent=parent(d))
    ),
    ("RosterService", "BatchUpsertTeachers"): Rpc(
        ROSTER_WRITERS,
        lambda w, d: R.BatchUpsertTeachersRequest(
            parent=parent(d),
            teachers=[
                roster_pb2.TeacherInput(
                    given_name="Alan", family_name="Turing", email=f"u-{uuid.uuid4().hex[:10]}@example.org"
                )
            ],
        ),
    ),
    ("RosterService", "BatchArchiveTeachers"): Rpc(
        ROSTER_WRITERS,
        lambda w, d: R.BatchArchiveTeachersRequest(
            parent=parent(d), teacher_ids=[w.active_teacher()], reason="left the district"
        ),
    ),
    ("RosterService", "UnarchiveTeacher"): Rpc(
        UNARCHIVERS,
        lambda w, d: R.UnarchiveTeacherRequest(name=f"{parent(d)}/teachers/{w.archived_teacher()}"),
    ),
    ("RosterService", "CreateChangeSet"): Rpc(
        ROSTER_WRITERS, lambda w, d: R.CreateChangeSetRequest(parent=parent(d))
    ),
    ("RosterService", "GetChangeSet"): Rpc(
        ROSTER_READERS, lambda w, d: R.GetChangeSetRequest(name=change_set_name(d, w.change_set_id))
    ),
    ("RosterService", "StageChanges"): Rpc(
        ROSTER_WRITERS,
        lambda w, d: R.StageChangesRequest(
            name=change_set_name(d, w.open_change_set()), batch_number=1, changes=[new_teacher_change()]
        ),
    ),
    ("RosterService", "CommitChangeSet"): Rpc(
        ROSTER_WRITERS,
        lambda w, d: R.CommitChangeSetRequest(name=change_set_name(d, w.staged_change_set())),
    ),
    ("RosterService", "AbandonChangeSet"): Rpc(
        ROSTER_WRITERS,
        lambda w, d: R.AbandonChangeSetRequest(
            name=change_set_name(d, w.open_change_set()), reason="not needed"
        ),
    ),
    ("RosterService", "RenameSchool"): Rpc(
        ROSTER_WRITERS,
        lambda w, d: R.RenameSchoolRequest(name=school_name(d, w.school_pair()[0]), display_name="Renamed"),
    ),
    ("RosterService", "ArchiveSchool"): Rpc(
        ROSTER_WRITERS, lambda w, d: R.ArchiveSchoolRequest(name=school_name(d, w.school_pair()[0]))
    ),
    ("RosterService", "MergeSchools"): Rpc(
        ROSTER_WRITERS,
        lambda w, d: R.MergeSchoolsRequest(
            name=school_name(d, (pair := w.school_pair())[0]), into_school=school_name(d, pair[1])
        ),
    ),
    ("RosterService", "ListAuditEvents"): Rpc(
        ROSTER_WRITERS, lambda w, d: R.ListAuditEventsRequest(parent=parent(d))
    ),
    ("RosterService", "ListChangeSetResults"): Rpc(
        ROSTER_READERS,
        lambda w, d: R.ListChangeSetResultsRequest(parent=change_set_name(d, w.committed_change_set_id)),
    ),
}

METHODS: list[tuple[ServiceDescriptor, MethodDescriptor]] = [
    (service, method) for service in (SYNC, ROSTER) for method in service.methods
]


def call(
    world: World, service: ServiceDescriptor, method: MethodDescriptor, request: Message, token: str | None
) -> tuple[grpc.StatusCode, str]:
    """The status (and message) of one call, a stream read to its end."""
    target = world.stack.server.target if service is SYNC else world.stack.roster.address
    path = f"/{service.full_name}/{method.name}"
    response = message_factory.GetMessageClass(method.output_type)
    metadata = (("authorization", f"Bearer {token}"),) if token is not None else ()
    options: dict[str, Any] = {
        "request_serializer": type(request).SerializeToString,
        "response_deserializer": response.FromString,
    }
    with grpc.insecure_channel(target) as channel:
        try:
            if method.server_streaming:
                for _ in channel.unary_stream(path, **options)(request, metadata=metadata, timeout=60):
                    pass
            else:
                channel.unary_unary(path, **options)(request, metadata=metadata, timeout=60)
        except grpc.RpcError as error:
            return error.code(), error.details() or ""
    return OK, ""


def tokens(auth: AuthSettings) -> dict[Caller, str | None]:
    """One token per caller, each for the district unless the caller is about another one."""

    def dev(
        role: Role = Role.DISTRICT_ADMIN, *, district: str = DISTRICT, plan: str = PREMIUM, subject: str = ""
    ) -> str:
        return mint_dev_token(auth, district_id=district, role=role, plan=plan, subject=subject or None)

    admin = ("admin@d-runs", DISTRICT, Role.DISTRICT_ADMIN, PREMIUM)
    stranger = AuthSettings(secret=SecretStr("a-different-key-that-is-long-enough-for-hs256"))
    elsewhere = AuthSettings(allow_dev_key=True, audience="another-product")
    return {
        Caller.NO_TOKEN: None,
        Caller.EXPIRED: mint_token(auth, *admin, 60, issued_at=datetime.now(UTC) - timedelta(hours=1)),
        Caller.BAD_SIGNATURE: mint_token(stranger, *admin, 600),
        Caller.WRONG_AUDIENCE: mint_token(elsewhere, *admin, 600),
        Caller.TEACHER: dev(Role.TEACHER, subject=SUBJECTS[Caller.TEACHER]),
        Caller.SCHOOL_ADMIN: dev(Role.SCHOOL_ADMIN, subject=SUBJECTS[Caller.SCHOOL_ADMIN]),
        Caller.BASIC_PLAN: dev(plan="district_basic", subject=SUBJECTS[Caller.BASIC_PLAN]),
        Caller.OTHER_DISTRICT: dev(district=OTHER, subject=SUBJECTS[Caller.OTHER_DISTRICT]),
        Caller.SERVICE: ServiceTokenProvider(auth).token(),
        Caller.PREMIUM_ADMIN: dev(subject=SUBJECTS[Caller.PREMIUM_ADMIN]),
    }


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    # One small stack for the module: each refused call is checked against a fresh snapshot.
    base = tmp_path_factory.mktemp("security-matrix")
    with (
        start_sandbox(schools=3, teachers=12) as sandbox,
        sync_stack(
            f"sqlite:///{base / 'roster.db'}",
            f"sqlite:///{base / 'sync.db'}",
            sandbox=sandbox,
            settings=sso_settings(sandbox),
        ) as stack,
    ):
        last = list(stack.client.sync_rosters(DISTRICT))[-1]
        assert last.state == sync_pb2.SYNC_RUN_STATE_SUCCEEDED, last.message
        roster = RosterClient(stack.roster.address, metadata=ServiceTokenProvider(stack.app.auth).metadata)
        roster.create_district(OTHER, "Other District")
        roster.batch_create_schools(OTHER, ["Other School"])
        mapped = next(
            e for e in stack.client.list_school_mappings(DISTRICT).school_mappings if e.ew_school_id
        )
        teacher = next(iter(roster.list_teachers(DISTRICT)))
        change_set = roster.create_change_set(DISTRICT)
        committed = roster.create_change_set(DISTRICT)
        roster.stage_changes(committed.name, 1, [new_teacher_change()])
        roster.commit_change_set(committed.name)
        try:
            yield World(
                stack=stack,
                roster=roster,
                tokens=tokens(stack.app.auth),
                school_id=mapped.ew_school_id,
                teacher_id=teacher.teacher_id,
                change_set_id=change_set.change_set_id,
                committed_change_set_id=committed.change_set_id,
                run_id=last.run.rpartition("/")[2],
                classlink_school_id=mapped.classlink_school_id,
            )
        finally:
            roster.close()


def audited(service: ServiceDescriptor, method: MethodDescriptor, caller: Caller) -> bool:
    """Whether the call must add one audit event: verified callers of audited RPCs.

    On the roster only people count: the sync service's identity is audited by the sync service.
    """
    if caller in UNVERIFIABLE:
        return False
    if service is SYNC:
        return method.name in AUDITED_RPCS
    return method.name in ROSTER_AUDITED_RPCS and caller is not Caller.SERVICE


def method_id(item: tuple[ServiceDescriptor, MethodDescriptor]) -> str:
    return f"{item[0].name}.{item[1].name}"


def row_of(service: ServiceDescriptor, method: MethodDescriptor) -> Rpc:
    row = RPCS.get((service.name, method.name))
    assert row is not None, f"{service.name}.{method.name} has no row in RPCS: say who may call it"
    return row


def test_the_table_has_no_row_for_an_rpc_that_does_not_exist() -> None:
    assert set(RPCS) == {(service.name, method.name) for service, method in METHODS}
    assert set(AUDITED_RPCS) <= {method.name for method in SYNC.methods}
    assert set(ROSTER_AUDITED_RPCS) <= {method.name for method in ROSTER.methods}


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[method_id(m) for m in METHODS])
def test_each_caller_gets_the_status_the_rules_give_and_a_refusal_changes_nothing(
    world: World, service: ServiceDescriptor, method: MethodDescriptor
) -> None:
    row = row_of(service, method)
    for caller in Caller:
        request = row.request(world, DISTRICT)
        before, audit_before = world.snapshot(), world.audit_rows(service)
        code, details = call(world, service, method, request, world.tokens[caller])
        want = expected(row.allowed, caller, row.granted)
        assert (caller, code) == (caller, want), details
        audit_after = world.audit_rows(service)
        # Nothing changes or removes an audit event; an audited call by a verified caller adds one.
        assert set(audit_before) <= set(audit_after), f"{caller.value}: an audit event changed"
        added = sorted(set(audit_after) - set(audit_before))
        if audited(service, method, caller):
            assert len(added) == 1, f"{caller.value}: {len(added)} audit events for one call"
            event = dict(zip(AUDIT_COLUMNS, added[0], strict=True))
            assert (event["district_id"], event["outcome"]) == (DISTRICT, code.name)
            if caller in SUBJECTS:
                assert event["actor"] == SUBJECTS[caller]
        else:
            assert added == [], f"{caller.value}: {method.name} is not audited but added an event"
        if want in (grpc.StatusCode.UNAUTHENTICATED, grpc.StatusCode.PERMISSION_DENIED):
            assert world.snapshot() == before, f"{caller.value}: a refused call changed data"
        elif row.restore is not None:
            row.restore(world)


@pytest.mark.parametrize(("service", "method"), METHODS, ids=[method_id(m) for m in METHODS])
def test_another_districts_caller_cannot_tell_whether_the_district_or_its_resources_exist(
    world: World, service: ServiceDescriptor, method: MethodDescriptor
) -> None:
    row = row_of(service, method)
    token = world.tokens[Caller.OTHER_DISTRICT]
    answers = {
        district: call(world, service, method, row.request(world, district), token)
        for district in (DISTRICT, GHOST)
    }
    assert answers[DISTRICT][0] == grpc.StatusCode.PERMISSION_DENIED
    assert answers[DISTRICT] == answers[GHOST]
    assert DISTRICT not in answers[DISTRICT][1]
