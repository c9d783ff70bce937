"""RosterService over gRPC: proto <-> domain translation only (logic lives in the use cases)."""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterator
from itertools import islice

import grpc
from ew.roster.v1 import roster_pb2 as pb
from ew.roster.v1 import roster_service_pb2 as rpc
from ew.roster.v1 import roster_service_pb2_grpc
from google.protobuf.timestamp_pb2 import Timestamp

from services.common.errors import bad_field
from services.roster import domain, names
from services.roster.access import Action, authorize
from services.roster.audit import AuditLog
from services.roster.changesets import ChangeSetUseCases
from services.roster.usecases import RosterUseCases
from services.roster.validation import check_district_id, check_optional_uuid, check_text

EXPORT_CHUNK = 1000
"""Schools or teachers per ExportDistrictRoster message: a few hundred KB, far below the size limit."""
_TEACHER_STATES = {
    domain.TeacherState.ACTIVE: pb.TEACHER_STATE_ACTIVE,
    domain.TeacherState.ARCHIVED: pb.TEACHER_STATE_ARCHIVED,
}
_SCHOOL_STATES = {
    domain.SchoolState.ACTIVE: pb.SCHOOL_STATE_ACTIVE,
    domain.SchoolState.ARCHIVED: pb.SCHOOL_STATE_ARCHIVED,
}
_CHANGE_SET_STATES = {
    domain.ChangeSetState.OPEN: pb.CHANGE_SET_STATE_OPEN,
    domain.ChangeSetState.COMMITTED: pb.CHANGE_SET_STATE_COMMITTED,
    domain.ChangeSetState.ABANDONED: pb.CHANGE_SET_STATE_ABANDONED,
    domain.ChangeSetState.EXPIRED: pb.CHANGE_SET_STATE_EXPIRED,
}
_KINDS = {
    domain.ChangeKind.CREATE_SCHOOL: pb.CHANGE_KIND_CREATE_SCHOOL,
    domain.ChangeKind.UPSERT_TEACHER: pb.CHANGE_KIND_UPSERT_TEACHER,
}
_OUTCOMES = {
    domain.Outcome.CREATED: pb.CHANGE_OUTCOME_CREATED,
    domain.Outcome.UPDATED: pb.CHANGE_OUTCOME_UPDATED,
    domain.Outcome.UNCHANGED: pb.CHANGE_OUTCOME_UNCHANGED,
}


def _timestamp(value: dt.datetime | None) -> Timestamp | None:
    if value is None:
        return None
    stamp = Timestamp()
    stamp.FromDatetime(value)
    return stamp


def _district(value: domain.District) -> pb.District:
    return pb.District(
        name=f"districts/{value.district_id}",
        district_id=value.district_id,
        display_name=value.display_name,
        create_time=_timestamp(value.create_time),
    )


def _school(value: domain.School) -> pb.School:
    return pb.School(
        name=f"districts/{value.district_id}/schools/{value.school_id}",
        school_id=value.school_id,
        district_id=value.district_id,
        display_name=value.display_name,
        create_time=_timestamp(value.create_time),
        update_time=_timestamp(value.update_time),
        state=_SCHOOL_STATES[value.state],
        merged_into_school_id=value.merged_into or "",
        revision=value.revision,
    )


def _teacher(value: domain.Teacher) -> pb.Teacher:
    return pb.Teacher(
        name=f"districts/{value.district_id}/teachers/{value.teacher_id}",
        teacher_id=value.teacher_id,
        district_id=value.district_id,
        given_name=value.given_name,
        family_name=value.family_name,
        email=value.email,
        school_ids=value.school_ids,
        state=_TEACHER_STATES[value.state],
        archive_time=_timestamp(value.archive_time),
        archive_reason=value.archive_reason or "",
        create_time=_timestamp(value.create_time),
        update_time=_timestamp(value.update_time),
        revision=value.revision,
    )


def _counts(value: domain.ChangeCounts) -> pb.ChangeCounts:
    return pb.ChangeCounts(
        schools_created=value.schools_created,
        teachers_created=value.teachers_created,
        teachers_updated=value.teachers_updated,
        teachers_unchanged=value.teachers_unchanged,
        teachers_archived=value.teachers_archived,
        teachers_reactivated=value.teachers_reactivated,
        schools_renamed=value.schools_renamed,
        schools_archived=value.schools_archived,
        schools_merged=value.schools_merged,
        teachers_restored=value.teachers_restored,
        teachers_removed=value.teachers_removed,
        schools_removed=value.schools_removed,
    )


def _change_set(value: domain.ChangeSet) -> pb.ChangeSet:
    return pb.ChangeSet(
        name=f"districts/{value.district_id}/changeSets/{value.change_set_id}",
        change_set_id=value.change_set_id,
        district_id=value.district_id,
        state=_CHANGE_SET_STATES[value.state],
        staged=_counts(value.staged),
        applied=_counts(value.applied),
        create_time=_timestamp(value.create_time),
        expire_time=_timestamp(value.expire_time),
        end_time=_timestamp(value.end_time),
        abandon_reason=value.abandon_reason or "",
    )


def _teacher_state(value: int) -> domain.TeacherState | None:
    if value == pb.TEACHER_STATE_UNSPECIFIED:
        return None
    for state, number in _TEACHER_STATES.items():
        if number == value:
            return state
    raise bad_field("state", f"unknown teacher state {value}")


def _change(index: int, change: pb.Change) -> domain.Change:
    kind = change.WhichOneof("kind")
    if kind == "create_school":
        school = change.create_school
        return domain.CreateSchoolChange(ref=school.ref, display_name=school.display_name)
    if kind == "upsert_teacher":
        upsert = change.upsert_teacher
        return domain.UpsertTeacherChange(
            ref=upsert.ref,
            teacher_id=upsert.teacher_id or None,
            given_name=upsert.given_name,
            family_name=upsert.family_name,
            email=upsert.email,
            schools=tuple(
                domain.SchoolRef(school_id=s.school_id or None, school_ref=s.school_ref or None)
                for s in upsert.schools
            ),
            reactivate=upsert.reactivate,
        )
    if kind == "archive_teacher":
        return domain.ArchiveTeacherChange(
            teacher_id=change.archive_teacher.teacher_id, reason=change.archive_teacher.reason
        )
    if kind == "reactivate_teacher":
        return domain.ReactivateTeacherChange(teacher_id=change.reactivate_teacher.teacher_id)
    return _school_change(index, change)


def _school_change(index: int, change: pb.Change) -> domain.Change:
    kind = change.WhichOneof("kind")
    if kind == "rename_school":
        rename = change.rename_school
        return domain.RenameSchoolChange(school_id=rename.school_id, display_name=rename.display_name)
    if kind == "archive_school":
        return domain.ArchiveSchoolChange(school_id=change.archive_school.school_id)
    if kind == "merge_school":
        merge = change.merge_school
        return domain.MergeSchoolChange(school_id=merge.school_id, into_school_id=merge.into_school_id)
    if kind == "remove_school":
        return domain.RemoveSchoolChange(school_id=change.remove_school.school_id)
    return _undo_change(index, change)


def _undo_change(index: int, change: pb.Change) -> domain.RestoreTeacherChange | domain.RemoveTeacherChange:
    kind = change.WhichOneof("kind")
    if kind == "restore_teacher":
        restore = change.restore_teacher
        return domain.RestoreTeacherChange(
            teacher_id=restore.teacher_id,
            given_name=restore.given_name,
            family_name=restore.family_name,
            email=restore.email,
            school_ids=tuple(restore.school_ids),
            archived=restore.archived,
            archive_reason=restore.archive_reason,
        )
    if kind == "remove_teacher":
        return domain.RemoveTeacherChange(teacher_id=change.remove_teacher.teacher_id)
    raise bad_field(
        f"changes[{index}]",
        "set one of create_school, upsert_teacher, archive_teacher, reactivate_teacher, rename_school, "
        "archive_school, merge_school, remove_school, restore_teacher, remove_teacher",
    )


class RosterServicer(roster_service_pb2_grpc.RosterServiceServicer):
    """Reads the district from each request, authorises it, then calls one use case."""

    def __init__(self, roster: RosterUseCases, change_sets: ChangeSetUseCases, audit_log: AuditLog) -> None:
        self._roster = roster
        self._change_sets = change_sets
        self._audit_log = audit_log

    def CreateDistrict(
        self, request: rpc.CreateDistrictRequest, context: grpc.ServicerContext
    ) -> rpc.CreateDistrictResponse:
        """Create a district; ALREADY_EXISTS when the id is taken."""
        district_id = check_district_id(request.district_id, "district_id")
        authorize(district_id, Action.CREATE_DISTRICT)
        return rpc.CreateDistrictResponse(
            district=_district(self._roster.create_district(district_id, request.display_name))
        )

    def GetDistrict(
        self, request: rpc.GetDistrictRequest, context: grpc.ServicerContext
    ) -> rpc.GetDistrictResponse:
        """A district, by resource name."""
        district_id = names.district(request.name)
        authorize(district_id, Action.READ)
        return rpc.GetDistrictResponse(district=_district(self._roster.get_district(district_id)))

    def GetSchool(
        self, request: rpc.GetSchoolRequest, context: grpc.ServicerContext
    ) -> rpc.GetSchoolResponse:
        """A school of the district, by resource name."""
        district_id, school_id = names.child(request.name, "schools")
        authorize(district_id, Action.READ)
        return rpc.GetSchoolResponse(school=_school(self._roster.get_school(district_id, school_id)))

    def ListSchools(
        self, request: rpc.ListSchoolsRequest, context: grpc.ServicerContext
    ) -> rpc.ListSchoolsResponse:
        """One page of the district's schools by display name, with their total."""
        district_id = names.district(request.parent, "parent")
        authorize(district_id, Action.READ)
        page = self._roster.list_schools(district_id, request.page_size, request.page_token)
        return rpc.ListSchoolsResponse(
            schools=[_school(s) for s in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    def BatchCreateSchools(
        self, request: rpc.BatchCreateSchoolsRequest, context: grpc.ServicerContext
    ) -> rpc.BatchCreateSchoolsResponse:
        """Create schools, all or none; a repeated request id returns the first call's schools."""
        district_id = names.district(request.parent, "parent")
        authorize(district_id, Action.WRITE)
        request_id = check_optional_uuid(request.request_id, "request_id")
        created = self._roster.batch_create_schools(
            district_id, [s.display_name for s in request.schools], request_id
        )
        return rpc.BatchCreateSchoolsResponse(schools=[_school(s) for s in created])

    def GetTeacher(
        self, request: rpc.GetTeacherRequest, context: grpc.ServicerContext
    ) -> rpc.GetTeacherResponse:
        """A teacher of the district, by resource name."""
        district_id, teacher_id = names.child(request.name, "teachers")
        authorize(district_id, Action.READ)
        return rpc.GetTeacherResponse(teacher=_teacher(self._roster.get_teacher(district_id, teacher_id)))

    def ListTeachers(
        self, request: rpc.ListTeachersRequest, context: grpc.ServicerContext
    ) -> rpc.ListTeachersResponse:
        """One page of the district's teachers matching the filters, by email, with their total."""
        district_id = names.district(request.parent, "parent")
        authorize(district_id, Action.READ)
        filters = domain.TeacherFilter(
            school_id=check_optional_uuid(request.school_id, "school_id"),
            state=_teacher_state(request.state),
            email=check_text(request.email, "email", maximum=254, required=False) or None,
        )
        page = self._roster.list_teachers(district_id, filters, request.page_size, request.page_token)
        return rpc.ListTeachersResponse(
            teachers=[_teacher(t) for t in page.items],
            next_page_token=page.next_page_token,
            total_size=page.total_size,
        )

    def ExportDistrictRoster(
        self, request: rpc.ExportDistrictRosterRequest, context: grpc.ServicerContext
    ) -> Iterator[rpc.ExportDistrictRosterResponse]:
        """The district's whole roster, read in one snapshot and streamed in chunks, totals first."""
        district_id = names.district(request.parent, "parent")
        authorize(district_id, Action.READ)
        with self._roster.export_roster(district_id) as export:
            yield rpc.ExportDistrictRosterResponse(
                total_schools=export.total_schools, total_teachers=export.total_teachers
            )
            # Messages are built one chunk at a time as the rows stream: neither the rows nor the
            # messages of the whole roster are ever held at once.
            while schools := list(islice(export.schools, EXPORT_CHUNK)):
                yield rpc.ExportDistrictRosterResponse(schools=[_school(s) for s in schools])
            while teachers := list(islice(export.teachers, EXPORT_CHUNK)):
                yield rpc.ExportDistrictRosterResponse(teachers=[_teacher(t) for t in teachers])

    def BatchUpsertTeachers(
        self, request: rpc.BatchUpsertTeachersRequest, context: grpc.ServicerContext
    ) -> rpc.BatchUpsertTeachersResponse:
        """Create or update teachers keyed by email, all or none."""
        district_id = names.district(request.parent, "parent")
        authorize(district_id, Action.WRITE)
        request_id = check_optional_uuid(request.request_id, "request_id")
        inputs = [
            domain.TeacherInput(t.given_name, t.family_name, t.email, tuple(t.school_ids))
            for t in request.teachers
        ]
        stored = self._roster.batch_upsert_teachers(district_id, inputs, request_id)
        return rpc.BatchUpsertTeachersResponse(teachers=[_teacher(t) for t in stored])

    def BatchArchiveTeachers(
        self, request: rpc.BatchArchiveTeachersRequest, context: grpc.ServicerContext
    ) -> rpc.BatchArchiveTeachersResponse:
        """Archive active teachers, all or none, with the reason people will read."""
        district_id = names.district(request.parent, "parent")
        authorize(district_id, Action.WRITE)
        archived = self._roster.batch_archive_teachers(district_id, list(request.teacher_ids), request.reason)
        return rpc.BatchArchiveTeachersResponse(teachers=[_teacher(t) for t in archived])

    def UnarchiveTeacher(
        self, request: rpc.UnarchiveTeacherRequest, context: grpc.ServicerContext
    ) -> rpc.UnarchiveTeacherResponse:
        """Make an archived teacher active again; FAILED_PRECONDITION when it is active."""
        district_id, teacher_id = names.child(request.name, "teachers")
        authorize(district_id, Action.UNARCHIVE)
        return rpc.UnarchiveTeacherResponse(
            teacher=_teacher(self._roster.unarchive_teacher(district_id, teacher_id))
        )

    def CreateChangeSet(
        self, request: rpc.CreateChangeSetRequest, context: grpc.ServicerContext
    ) -> rpc.CreateChangeSetResponse:
        """Open a change set for the district; a repeated request id returns the one first opened."""
        district_id = names.district(request.parent, "parent")
        authorize(district_id, Action.WRITE)
        request_id = check_optional_uuid(request.request_id, "request_id")
        return rpc.CreateChangeSetResponse(
            change_set=_change_set(self._change_sets.create(district_id, request_id))
        )

    def GetChangeSet(
        self, request: rpc.GetChangeSetRequest, context: grpc.ServicerContext
    ) -> rpc.GetChangeSetResponse:
        """A change set with its state and counts: how a caller learns a commit's outcome."""
        district_id, change_set_id = names.child(request.name, "changeSets")
        authorize(district_id, Action.READ)
        return rpc.GetChangeSetResponse(
            change_set=_change_set(self._change_sets.get(district_id, change_set_id))
        )

    def StageChanges(
        self, request: rpc.StageChangesRequest, context: grpc.ServicerContext
    ) -> rpc.StageChangesResponse:
        """Stage one batch of changes in an open change set; a batch number staged already is a no-op."""
        district_id, change_set_id = names.child(request.name, "changeSets")
        authorize(district_id, Action.WRITE)
        changes = [_change(i, c) for i, c in enumerate(request.changes)]
        staged = self._change_sets.stage(district_id, change_set_id, request.batch_number, changes)
        return rpc.StageChangesResponse(change_set=_change_set(staged))

    def CommitChangeSet(
        self, request: rpc.CommitChangeSetRequest, context: grpc.ServicerContext
    ) -> rpc.CommitChangeSetResponse:
        """Commit an open change set in one transaction; ABORTED when a touched row changed meanwhile."""
        district_id, change_set_id = names.child(request.name, "changeSets")
        authorize(district_id, Action.WRITE)
        return rpc.CommitChangeSetResponse(
            change_set=_change_set(self._change_sets.commit(district_id, change_set_id))
        )

    def AbandonChangeSet(
        self, request: rpc.AbandonChangeSetRequest, context: grpc.ServicerContext
    ) -> rpc.AbandonChangeSetResponse:
        """Abandon an open change set; nothing it staged lands."""
        district_id, change_set_id = names.child(request.name, "changeSets")
        authorize(district_id, Action.WRITE)
        abandoned = self._change_sets.abandon(district_id, change_set_id, request.reason)
        return rpc.AbandonChangeSetResponse(change_set=_change_set(abandoned))

    def ListChangeSetResults(
        self, request: rpc.ListChangeSetResultsRequest, context: grpc.ServicerContext
    ) -> rpc.ListChangeSetResultsResponse:
        """One page of what a committed change set did per ref: the ids of created schools and teachers."""
        district_id, change_set_id = names.child(request.parent, "changeSets", "parent")
        authorize(district_id, Action.READ)
        page = self._change_sets.list_results(
            district_id, change_set_id, request.page_size, request.page_token
        )
        return rpc.ListChangeSetResultsResponse(
            results=[
                pb.ChangeSetResult(
                    kind=_KINDS[r.kind], ref=r.ref, resource_id=r.resource_id, outcome=_OUTCOMES[r.outcome]
                )
                for r in page.items
            ],
            next_page_token=page.next_page_token,
        )

    def ListAuditEvents(
        self, request: rpc.ListAuditEventsRequest, context: grpc.ServicerContext
    ) -> rpc.ListAuditEventsResponse:
        """One page of the district's roster audit trail, newest first."""
        district_id = names.district(request.parent, "parent")
        authorize(district_id, Action.READ_AUDIT)
        page = self._audit_log.list(district_id, request.page_size, request.page_token)
        return rpc.ListAuditEventsResponse(
            events=[
                pb.AuditEvent(
                    time=_timestamp(e.time),
                    actor=e.actor,
                    district_id=e.district_id,
                    action=pb.AuditAction.Value(f"AUDIT_ACTION_{e.action.value}"),
                    target=e.target,
                    outcome=e.outcome,
                    message=e.message,
                )
                for e in page.items
            ],
            next_page_token=page.next_page_token,
        )

    def RenameSchool(
        self, request: rpc.RenameSchoolRequest, context: grpc.ServicerContext
    ) -> rpc.RenameSchoolResponse:
        """Rename an active school (one change set)."""
        district_id, school_id = names.child(request.name, "schools")
        authorize(district_id, Action.WRITE)
        change = domain.RenameSchoolChange(school_id=school_id, display_name=request.display_name)
        self._change_sets.apply_one(district_id, change)
        return rpc.RenameSchoolResponse(school=_school(self._roster.get_school(district_id, school_id)))

    def ArchiveSchool(
        self, request: rpc.ArchiveSchoolRequest, context: grpc.ServicerContext
    ) -> rpc.ArchiveSchoolResponse:
        """Archive an active school (one change set); its teachers keep it and their other schools."""
        district_id, school_id = names.child(request.name, "schools")
        authorize(district_id, Action.WRITE)
        self._change_sets.apply_one(district_id, domain.ArchiveSchoolChange(school_id=school_id))
        return rpc.ArchiveSchoolResponse(school=_school(self._roster.get_school(district_id, school_id)))

    def MergeSchools(
        self, request: rpc.MergeSchoolsRequest, context: grpc.ServicerContext
    ) -> rpc.MergeSchoolsResponse:
        """Merge a school into another of the same district (one change set)."""
        district_id, school_id = names.child(request.name, "schools")
        into_district, into_id = names.child(request.into_school, "schools", "into_school")
        if into_district != district_id:
            raise bad_field("into_school", "must name a school of the same district as name")
        authorize(district_id, Action.WRITE)
        self._change_sets.apply_one(
            district_id, domain.MergeSchoolChange(school_id=school_id, into_school_id=into_id)
        )
        return rpc.MergeSchoolsResponse(
            merged=_school(self._roster.get_school(district_id, school_id)),
            into_school=_school(self._roster.get_school(district_id, into_id)),
        )
