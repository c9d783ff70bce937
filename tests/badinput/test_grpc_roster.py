"""Malformed RosterService requests, every method: the right status and message, nothing stored."""

from __future__ import annotations

import uuid

import grpc
import pytest
from ew.roster.v1 import roster_pb2 as pb
from ew.roster.v1 import roster_service_pb2 as rpc

from services.common.auth import Role
from tests.badinput.grpc_rows import KB10, MB, OVERSIZED, Row, judge, string_field
from tests.badinput.world import FOREIGN, World

SERVICE = "ew.roster.v1.RosterService"
TABLE = "gRPC RosterService"
Code = grpc.StatusCode
INVALID = Code.INVALID_ARGUMENT
PRECONDITION = Code.FAILED_PRECONDITION
INVALID_UTF8 = b"caf\xc3\x28\xff"
DENIED = "use a token issued for that district"


def last(name: str) -> str:
    return name.rsplit("/", 1)[1]


def teacher(
    email: str, given: str = "Ann", family: str = "Lee", schools: tuple[str, ...] = ()
) -> pb.TeacherInput:
    return pb.TeacherInput(given_name=given, family_name=family, email=email, school_ids=schools)


def upsert(w: World, *teachers: pb.TeacherInput) -> rpc.BatchUpsertTeachersRequest:
    return rpc.BatchUpsertTeachersRequest(parent=w.parent, teachers=teachers)


def create_school(ref: str, name: str = "Annex") -> pb.Change:
    return pb.Change(create_school=pb.CreateSchoolChange(ref=ref, display_name=name))


def stage(name: str, *changes: pb.Change, batch: int = 1) -> rpc.StageChangesRequest:
    return rpc.StageChangesRequest(name=name, batch_number=batch, changes=changes)


def as_admin(w: World) -> tuple[tuple[str, str], ...]:
    return w.admin()


ROWS = [
    # CreateDistrict
    Row(
        "create-district-empty-id",
        "CreateDistrict",
        lambda w: rpc.CreateDistrictRequest(display_name="X"),
        INVALID,
        "district_id",
    ),
    Row(
        "create-district-garbage-id",
        "CreateDistrict",
        lambda w: rpc.CreateDistrictRequest(district_id="../etc/passwd", display_name="X"),
        INVALID,
        "district_id",
    ),
    Row(
        "create-district-taken-id",
        "CreateDistrict",
        lambda w: rpc.CreateDistrictRequest(district_id=w.district, display_name="Again"),
        Code.ALREADY_EXISTS,
        "d-runs",
    ),
    Row(
        "create-district-1mb-name",
        "CreateDistrict",
        lambda w: rpc.CreateDistrictRequest(district_id="d-new", display_name="x" * MB),
        INVALID,
        "display_name",
    ),
    Row(
        "create-district-control-chars",
        "CreateDistrict",
        lambda w: rpc.CreateDistrictRequest(district_id="d-new", display_name="Bad\x00\x07Name"),
        INVALID,
        "display_name",
    ),
    # GetDistrict
    Row("get-district-empty-name", "GetDistrict", lambda w: rpc.GetDistrictRequest(), INVALID, "name"),
    Row(
        "get-district-no-id",
        "GetDistrict",
        lambda w: rpc.GetDistrictRequest(name="districts/"),
        INVALID,
        "name",
    ),
    Row(
        "get-district-unknown",
        "GetDistrict",
        lambda w: rpc.GetDistrictRequest(name="districts/d-nowhere"),
        Code.NOT_FOUND,
        "d-nowhere",
    ),
    Row(
        "get-district-foreign",
        "GetDistrict",
        lambda w: rpc.GetDistrictRequest(name=f"districts/{FOREIGN}"),
        Code.PERMISSION_DENIED,
        DENIED,
        metadata=as_admin,
    ),
    Row(
        "get-district-invalid-utf8",
        "GetDistrict",
        lambda w: string_field(1, b"districts/" + INVALID_UTF8),
        INVALID,
        "utf-8",
    ),
    Row(
        "get-district-no-token",
        "GetDistrict",
        lambda w: rpc.GetDistrictRequest(name=w.parent),
        Code.UNAUTHENTICATED,
        "token",
        metadata=lambda w: (),
    ),
    Row(
        "get-district-forged-token",
        "GetDistrict",
        lambda w: rpc.GetDistrictRequest(name=w.parent),
        Code.UNAUTHENTICATED,
        "token",
        metadata=lambda w: (("authorization", "Bearer eyJhbGciOiJub25lIn0.e30."),),
    ),
    # GetSchool
    Row(
        "get-school-garbage-id",
        "GetSchool",
        lambda w: rpc.GetSchoolRequest(name=f"{w.parent}/schools/not-a-uuid"),
        INVALID,
        "name",
    ),
    Row(
        "get-school-foreign-id",
        "GetSchool",
        lambda w: rpc.GetSchoolRequest(name=f"{w.parent}/schools/{last(w.foreign_school)}"),
        Code.NOT_FOUND,
        "school",
    ),
    Row(
        "get-school-10kb-name",
        "GetSchool",
        lambda w: rpc.GetSchoolRequest(name="districts/" + "x" * KB10),
        INVALID,
        "name",
    ),
    # ListSchools
    Row(
        "list-schools-negative-page-size",
        "ListSchools",
        lambda w: rpc.ListSchoolsRequest(parent=w.parent, page_size=-1),
        INVALID,
        "page_size",
    ),
    Row(
        "list-schools-forged-token",
        "ListSchools",
        lambda w: rpc.ListSchoolsRequest(parent=w.parent, page_token="bm90LWEtdG9rZW4"),
        INVALID,
        "page_token",
    ),
    Row(
        "list-schools-teachers-token",
        "ListSchools",
        lambda w: rpc.ListSchoolsRequest(parent=w.parent, page_token=w.teachers_token),
        INVALID,
        "page_token",
    ),
    Row(
        "list-schools-token-of-other-district",
        "ListSchools",
        lambda w: rpc.ListSchoolsRequest(parent=f"districts/{FOREIGN}", page_token=w.teachers_token),
        INVALID,
        "page_token",
    ),
    # BatchCreateSchools
    Row(
        "create-schools-none",
        "BatchCreateSchools",
        lambda w: rpc.BatchCreateSchoolsRequest(parent=w.parent),
        INVALID,
        "schools",
    ),
    Row(
        "create-schools-over-cap",
        "BatchCreateSchools",
        lambda w: rpc.BatchCreateSchoolsRequest(
            parent=w.parent, schools=[pb.School(display_name=f"S{i}") for i in range(1001)]
        ),
        INVALID,
        "1000",
    ),
    Row(
        "create-schools-empty-name",
        "BatchCreateSchools",
        lambda w: rpc.BatchCreateSchoolsRequest(parent=w.parent, schools=[pb.School(display_name="  ")]),
        INVALID,
        "display_name",
    ),
    Row(
        "create-schools-10kb-name",
        "BatchCreateSchools",
        lambda w: rpc.BatchCreateSchoolsRequest(
            parent=w.parent, schools=[pb.School(display_name="x" * KB10)]
        ),
        INVALID,
        "display_name",
    ),
    Row(
        "create-schools-escape-sequence",
        "BatchCreateSchools",
        lambda w: rpc.BatchCreateSchoolsRequest(
            parent=w.parent, schools=[pb.School(display_name="Evil\x1b[31m High")]
        ),
        INVALID,
        "display_name",
    ),
    Row(
        "create-schools-garbage-request-id",
        "BatchCreateSchools",
        lambda w: rpc.BatchCreateSchoolsRequest(
            parent=w.parent, schools=[pb.School(display_name="Ok")], request_id="not-a-uuid"
        ),
        INVALID,
        "request_id",
    ),
    Row(
        "create-schools-foreign-district",
        "BatchCreateSchools",
        lambda w: rpc.BatchCreateSchoolsRequest(
            parent=f"districts/{FOREIGN}", schools=[pb.School(display_name="Ok")]
        ),
        Code.PERMISSION_DENIED,
        DENIED,
        metadata=as_admin,
    ),
    # GetTeacher
    Row(
        "get-teacher-foreign",
        "GetTeacher",
        lambda w: rpc.GetTeacherRequest(name=w.foreign_teacher),
        Code.PERMISSION_DENIED,
        DENIED,
        metadata=as_admin,
    ),
    Row(
        "get-teacher-foreign-id-here",
        "GetTeacher",
        lambda w: rpc.GetTeacherRequest(name=f"{w.parent}/teachers/{last(w.foreign_teacher)}"),
        Code.NOT_FOUND,
        "teacher",
    ),
    Row(
        "get-teacher-wrong-collection",
        "GetTeacher",
        lambda w: rpc.GetTeacherRequest(name=w.school),
        INVALID,
        "name",
    ),
    # ListTeachers
    Row(
        "list-teachers-garbage-school",
        "ListTeachers",
        lambda w: rpc.ListTeachersRequest(parent=w.parent, school_id="garbage"),
        INVALID,
        "school_id",
    ),
    Row(
        "list-teachers-unknown-state",
        "ListTeachers",
        lambda w: rpc.ListTeachersRequest(parent=w.parent, state=pb.TeacherState.ValueType(99)),
        INVALID,
        "state",
    ),
    Row(
        "list-teachers-token-other-filter",
        "ListTeachers",
        lambda w: rpc.ListTeachersRequest(
            parent=w.parent, page_token=w.teachers_token, state=pb.TEACHER_STATE_ARCHIVED
        ),
        INVALID,
        "page_token",
    ),
    Row(
        "list-teachers-page-size-min-int",
        "ListTeachers",
        lambda w: rpc.ListTeachersRequest(parent=w.parent, page_size=-(2**31)),
        INVALID,
        "page_size",
    ),
    Row(
        "list-teachers-invalid-utf8-email",
        "ListTeachers",
        lambda w: string_field(1, w.parent.encode()) + string_field(6, INVALID_UTF8),
        INVALID,
        "utf-8",
    ),
    Row(
        "list-teachers-nul-in-email",
        "ListTeachers",
        lambda w: rpc.ListTeachersRequest(parent=w.parent, email="ann\x00@x.test"),
        INVALID,
        "email: contains the control character U+0000",
    ),
    # BatchUpsertTeachers
    Row("upsert-none", "BatchUpsertTeachers", lambda w: upsert(w), INVALID, "teachers"),
    Row("upsert-email-a-at", "BatchUpsertTeachers", lambda w: upsert(w, teacher("a@")), INVALID, "email"),
    Row(
        "upsert-email-inner-space",
        "BatchUpsertTeachers",
        lambda w: upsert(w, teacher("ann lee@x.test")),
        INVALID,
        "email",
    ),
    Row(
        "upsert-email-padded-duplicate",
        "BatchUpsertTeachers",
        lambda w: upsert(w, teacher("dup@x.test"), teacher("  DUP@x.test  ")),
        INVALID,
        "dup@x.test",
    ),
    Row(
        "upsert-over-cap",
        "BatchUpsertTeachers",
        lambda w: upsert(w, *(teacher(f"t{i}@x.test") for i in range(1001))),
        INVALID,
        "1000",
    ),
    Row(
        "upsert-foreign-school",
        "BatchUpsertTeachers",
        lambda w: upsert(w, teacher("new@x.test", schools=(last(w.foreign_school),))),
        Code.NOT_FOUND,
        "not found in district",
    ),
    Row(
        "upsert-1mb-given-name",
        "BatchUpsertTeachers",
        lambda w: upsert(w, teacher("new@x.test", given="x" * MB)),
        INVALID,
        "given_name",
    ),
    Row(
        "upsert-nul-in-family-name",
        "BatchUpsertTeachers",
        lambda w: upsert(w, teacher("new@x.test", family="Le\x00e")),
        INVALID,
        "family_name",
    ),
    Row(
        "upsert-invalid-utf8-email",
        "BatchUpsertTeachers",
        lambda w: (
            string_field(1, w.parent.encode())
            + string_field(
                2,
                string_field(1, b"Ann")
                + string_field(2, b"Lee")
                + string_field(3, b"ann" + INVALID_UTF8 + b"@x.test"),
            )
        ),
        INVALID,
        "utf-8",
    ),
    Row(
        "upsert-oversized",
        "BatchUpsertTeachers",
        lambda w: upsert(w, teacher("big@x.test", given="x" * OVERSIZED)),
        Code.RESOURCE_EXHAUSTED,
        "larger than max",
    ),
    # BatchArchiveTeachers
    Row(
        "archive-garbage-id",
        "BatchArchiveTeachers",
        lambda w: rpc.BatchArchiveTeachersRequest(parent=w.parent, teacher_ids=["garbage"], reason="left"),
        INVALID,
        "teacher_ids",
    ),
    Row(
        "archive-no-reason",
        "BatchArchiveTeachers",
        lambda w: rpc.BatchArchiveTeachersRequest(parent=w.parent, teacher_ids=[last(w.teacher)]),
        INVALID,
        "reason",
    ),
    Row(
        "archive-reason-nul",
        "BatchArchiveTeachers",
        lambda w: rpc.BatchArchiveTeachersRequest(
            parent=w.parent, teacher_ids=[last(w.teacher)], reason="left\x00"
        ),
        INVALID,
        "reason: contains the control character U+0000",
    ),
    Row(
        "archive-reason-too-long",
        "BatchArchiveTeachers",
        lambda w: rpc.BatchArchiveTeachersRequest(
            parent=w.parent, teacher_ids=[last(w.teacher)], reason="r" * 501
        ),
        INVALID,
        "reason",
    ),
    Row(
        "archive-already-archived",
        "BatchArchiveTeachers",
        lambda w: rpc.BatchArchiveTeachersRequest(
            parent=w.parent, teacher_ids=[last(w.archived_teacher)], reason="again"
        ),
        PRECONDITION,
        "archived",
    ),
    Row(
        "archive-duplicate-ids",
        "BatchArchiveTeachers",
        lambda w: rpc.BatchArchiveTeachersRequest(
            parent=w.parent, teacher_ids=[last(w.teacher)] * 2, reason="left"
        ),
        INVALID,
        "teacher_ids",
    ),
    Row(
        "archive-foreign-teacher",
        "BatchArchiveTeachers",
        lambda w: rpc.BatchArchiveTeachersRequest(
            parent=w.parent, teacher_ids=[last(w.foreign_teacher)], reason="left"
        ),
        Code.NOT_FOUND,
        "teacher",
    ),
    # UnarchiveTeacher
    Row(
        "unarchive-active-teacher",
        "UnarchiveTeacher",
        lambda w: rpc.UnarchiveTeacherRequest(name=w.teacher),
        PRECONDITION,
        "active",
        metadata=as_admin,
    ),
    Row(
        "unarchive-garbage-name",
        "UnarchiveTeacher",
        lambda w: rpc.UnarchiveTeacherRequest(name="teachers/1"),
        INVALID,
        "name",
        metadata=as_admin,
    ),
    Row(
        "unarchive-as-teacher-role",
        "UnarchiveTeacher",
        lambda w: rpc.UnarchiveTeacherRequest(name=w.archived_teacher),
        Code.PERMISSION_DENIED,
        "administrator",
        metadata=lambda w: w.caller(Role.TEACHER),
    ),
    # CreateChangeSet
    Row(
        "create-change-set-empty-parent",
        "CreateChangeSet",
        lambda w: rpc.CreateChangeSetRequest(),
        INVALID,
        "parent",
    ),
    Row(
        "create-change-set-garbage-request-id",
        "CreateChangeSet",
        lambda w: rpc.CreateChangeSetRequest(parent=w.parent, request_id="nope"),
        INVALID,
        "request_id",
    ),
    Row(
        "create-change-set-unknown-district",
        "CreateChangeSet",
        lambda w: rpc.CreateChangeSetRequest(parent="districts/d-nowhere"),
        Code.NOT_FOUND,
        "d-nowhere",
    ),
    # GetChangeSet
    Row(
        "get-change-set-garbage-id",
        "GetChangeSet",
        lambda w: rpc.GetChangeSetRequest(name=f"{w.parent}/changeSets/xyz"),
        INVALID,
        "name",
    ),
    Row(
        "get-change-set-unknown",
        "GetChangeSet",
        lambda w: rpc.GetChangeSetRequest(name=f"{w.parent}/changeSets/{uuid.uuid4()}"),
        Code.NOT_FOUND,
        "change set",
    ),
    # StageChanges
    Row(
        "stage-into-committed",
        "StageChanges",
        lambda w: stage(w.committed_change_set, create_school("late"), batch=2),
        PRECONDITION,
        "committed",
    ),
    Row(
        "stage-into-abandoned",
        "StageChanges",
        lambda w: stage(w.abandoned_change_set, create_school("late")),
        PRECONDITION,
        "abandoned",
    ),
    Row(
        "stage-batch-zero",
        "StageChanges",
        lambda w: stage(w.open_change_set, create_school("z"), batch=0),
        INVALID,
        "batch_number",
    ),
    Row("stage-no-changes", "StageChanges", lambda w: stage(w.open_change_set), INVALID, "changes"),
    Row(
        "stage-empty-change",
        "StageChanges",
        lambda w: stage(w.open_change_set, pb.Change()),
        INVALID,
        "changes[0]",
    ),
    Row(
        "stage-over-cap",
        "StageChanges",
        lambda w: stage(w.open_change_set, *(create_school(f"r{i}") for i in range(1001))),
        INVALID,
        "1000",
    ),
    Row(
        "stage-duplicate-refs",
        "StageChanges",
        lambda w: stage(w.open_change_set, create_school("same"), create_school("same")),
        INVALID,
        "same",
    ),
    Row(
        "stage-email-a-at",
        "StageChanges",
        lambda w: stage(
            w.open_change_set,
            pb.Change(
                upsert_teacher=pb.UpsertTeacherChange(ref="t", given_name="A", family_name="B", email="a@")
            ),
        ),
        INVALID,
        "email",
    ),
    Row(
        "stage-unknown-oneof-field",
        "StageChanges",
        lambda w: (
            string_field(1, w.open_change_set.encode())
            + bytes([0x10, 1])
            + string_field(3, string_field(99, b"mystery"))
        ),
        INVALID,
        "changes[0]",
    ),
    # CommitChangeSet
    # A repeated commit returns the committed change set (a caller retries a commit whose answer it lost).
    Row(
        "commit-twice",
        "CommitChangeSet",
        lambda w: rpc.CommitChangeSetRequest(name=w.committed_change_set),
        Code.OK,
        "",
    ),
    Row(
        "commit-abandoned",
        "CommitChangeSet",
        lambda w: rpc.CommitChangeSetRequest(name=w.abandoned_change_set),
        PRECONDITION,
        "abandoned",
    ),
    # AbandonChangeSet
    Row(
        "abandon-committed",
        "AbandonChangeSet",
        lambda w: rpc.AbandonChangeSetRequest(name=w.committed_change_set),
        PRECONDITION,
        "committed",
    ),
    Row(
        "abandon-1mb-reason",
        "AbandonChangeSet",
        lambda w: rpc.AbandonChangeSetRequest(name=w.open_change_set, reason="r" * MB),
        INVALID,
        "reason",
    ),
    Row(
        "abandon-nul-reason",
        "AbandonChangeSet",
        lambda w: rpc.AbandonChangeSetRequest(name=w.open_change_set, reason="why\x00"),
        INVALID,
        "reason: contains the control character U+0000",
    ),
    # ListChangeSetResults
    Row(
        "results-of-open-change-set",
        "ListChangeSetResults",
        lambda w: rpc.ListChangeSetResultsRequest(parent=w.open_change_set),
        PRECONDITION,
        "committed",
    ),
    Row(
        "results-negative-page-size",
        "ListChangeSetResults",
        lambda w: rpc.ListChangeSetResultsRequest(parent=w.committed_change_set, page_size=-1),
        INVALID,
        "page_size",
    ),
    # ListAuditEvents
    Row(
        "audit-forged-token",
        "ListAuditEvents",
        lambda w: rpc.ListAuditEventsRequest(parent=w.parent, page_token="AAAA"),
        INVALID,
        "page_token",
        metadata=as_admin,
    ),
    Row(
        "audit-as-teacher-role",
        "ListAuditEvents",
        lambda w: rpc.ListAuditEventsRequest(parent=w.parent),
        Code.PERMISSION_DENIED,
        "administrator",
        metadata=lambda w: w.caller(Role.TEACHER),
    ),
    # RenameSchool
    Row(
        "rename-school-empty-name",
        "RenameSchool",
        lambda w: rpc.RenameSchoolRequest(name=w.school),
        INVALID,
        "display_name",
    ),
    Row(
        "rename-school-10kb-name",
        "RenameSchool",
        lambda w: rpc.RenameSchoolRequest(name=w.school, display_name="x" * KB10),
        INVALID,
        "display_name",
    ),
    Row(
        "rename-school-foreign",
        "RenameSchool",
        lambda w: rpc.RenameSchoolRequest(name=w.foreign_school, display_name="Mine"),
        Code.PERMISSION_DENIED,
        DENIED,
        metadata=as_admin,
    ),
    # ArchiveSchool
    Row(
        "archive-school-garbage",
        "ArchiveSchool",
        lambda w: rpc.ArchiveSchoolRequest(name=f"{w.parent}/schools/../../x"),
        INVALID,
        "name",
    ),
    # The roster refuses it inside its one-change change set, which it records as abandoned.
    Row(
        "archive-school-unknown",
        "ArchiveSchool",
        lambda w: rpc.ArchiveSchoolRequest(name=f"{w.parent}/schools/{uuid.uuid4()}"),
        Code.NOT_FOUND,
        "school",
        records=frozenset({"change_sets"}),
    ),
    # MergeSchools
    Row(
        "merge-school-into-itself",
        "MergeSchools",
        lambda w: rpc.MergeSchoolsRequest(name=w.school, into_school=w.school),
        INVALID,
        "into_school",
    ),
    Row(
        "merge-school-into-foreign",
        "MergeSchools",
        lambda w: rpc.MergeSchoolsRequest(name=w.school, into_school=w.foreign_school),
        INVALID,
        "into_school",
    ),
]


@pytest.mark.parametrize("row", ROWS, ids=[row.id for row in ROWS])
def test_roster_refuses(world: World, row: Row) -> None:
    judge(TABLE, world, world.roster_channel, SERVICE, row, world.service())
