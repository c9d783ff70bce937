"""Rich renderings of sync resources for people: tables for connections, mappings, plans and runs.

The ``ew-sync`` CLI and the demo print the same views, so an administrator sees one vocabulary.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Iterable
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

from ew.roster.v1 import roster_pb2
from ew.sync.v1 import sync_pb2, sync_service_pb2
from google.protobuf.timestamp_pb2 import Timestamp
from rich.table import Table
from rich.text import Text

_STATE_STYLES = {
    sync_pb2.SYNC_RUN_STATE_SUCCEEDED: "green",
    sync_pb2.SYNC_RUN_STATE_NEEDS_REVIEW: "yellow",
    sync_pb2.SYNC_RUN_STATE_FAILED: "red",
    sync_pb2.SYNC_RUN_STATE_CANCELLED: "magenta",
    sync_pb2.SYNC_RUN_STATE_PREVIEWED: "cyan",
}


def _label(name: str, prefix: str) -> str:
    return name.removeprefix(prefix).replace("_", " ").lower()


def state_label(state: sync_pb2.SyncRunState.ValueType) -> str:
    """``SYNC_RUN_STATE_NEEDS_REVIEW`` → ``needs review``."""
    return _label(sync_pb2.SyncRunState.Name(state), "SYNC_RUN_STATE_")


def styled_state(state: sync_pb2.SyncRunState.ValueType) -> Text:
    """The state label, coloured by outcome."""
    return Text(state_label(state), style=_STATE_STYLES.get(state, ""))


def phase_label(phase: sync_pb2.SyncPhase.ValueType) -> str:
    """``SYNC_PHASE_READING_TEACHERS`` → ``reading teachers``."""
    return _label(sync_pb2.SyncPhase.Name(phase), "SYNC_PHASE_")


def trigger_label(trigger: sync_pb2.SyncTrigger.ValueType) -> str:
    """``SYNC_TRIGGER_MANUAL`` → ``manual``."""
    return _label(sync_pb2.SyncTrigger.Name(trigger), "SYNC_TRIGGER_")


def origin_label(origin: sync_pb2.MappingOrigin.ValueType) -> str:
    """How a ClassLink school is mapped; unmapped schools are created by the next sync."""
    if origin in (sync_pb2.MAPPING_ORIGIN_NONE, sync_pb2.MAPPING_ORIGIN_UNSPECIFIED):
        return "unmapped (will be created)"
    return _label(sync_pb2.MappingOrigin.Name(origin), "MAPPING_ORIGIN_")


def kind_label(kind: sync_pb2.PlanItemKind.ValueType) -> str:
    """``PLAN_ITEM_KIND_ADD_TEACHER`` → ``add teacher``."""
    return _label(sync_pb2.PlanItemKind.Name(kind), "PLAN_ITEM_KIND_")


def skip_label(reason: sync_pb2.SkipReason.ValueType) -> str:
    """``SKIP_REASON_MISSING_EMAIL`` → ``missing email``."""
    return _label(sync_pb2.SkipReason.Name(reason), "SKIP_REASON_")


def time_label(timestamp: Timestamp) -> str:
    """A UTC time to the second (tables say UTC in their headings), or an empty string when unset."""
    if not timestamp.seconds and not timestamp.nanos:
        return ""
    return timestamp.ToDatetime().strftime("%Y-%m-%d %H:%M:%S")


def connection_table(connection: sync_pb2.Connection) -> Table:
    """The connection's fields; the secret appears only as its masked hint."""
    table = Table(title="ClassLink connection", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    rows = [
        ("District", connection.district_id),
        ("Server", connection.server_url),
        ("Auth method", _label(sync_pb2.AuthMethod.Name(connection.auth_method), "AUTH_METHOD_")),
        (
            "OneRoster",
            _label(sync_pb2.OneRosterVersion.Name(connection.oneroster_version), "ONE_ROSTER_VERSION_"),
        ),
        ("Client id", connection.client_id),
        ("Secret", connection.secret_hint),
        ("Tenant", connection.tenant_id),
        ("Connected by", _label(sync_pb2.ConnectMethod.Name(connection.connect_method), "CONNECT_METHOD_")),
        ("Connected at (UTC)", time_label(connection.create_time)),
        ("Last successful sync (UTC)", time_label(connection.last_success_time) or "never"),
    ]
    for field, value in rows:
        table.add_row(field, value)
    return table


def mapping_table(entries: Iterable[sync_pb2.SchoolMapping], *, title: str = "School mapping") -> Table:
    """ClassLink schools beside their EW school, or the best suggestions when unmapped."""
    table = Table(title=title)
    table.add_column("ClassLink school")
    table.add_column("ClassLink id", style="dim")
    table.add_column("Mapping")
    table.add_column("EW school")
    table.add_column("Suggestions (score)")
    for entry in entries:
        mapped = entry.origin not in (sync_pb2.MAPPING_ORIGIN_NONE, sync_pb2.MAPPING_ORIGIN_UNSPECIFIED)
        ew_school = f"{entry.ew_school_name} [dim]({entry.ew_school_id})[/]" if mapped else ""
        suggestions = "\n".join(
            f"{s.score:3.0f}  {s.ew_school_name} [dim]({s.ew_school_id})[/]" for s in entry.suggestions[:3]
        )
        table.add_row(
            entry.classlink_school_name,
            entry.classlink_school_id,
            Text(origin_label(entry.origin), style="green" if mapped else "yellow"),
            ew_school,
            suggestions,
        )
    return table


def ew_only_table(schools: Iterable[sync_pb2.EwSchool]) -> Table:
    """EW schools no ClassLink school maps to."""
    table = Table(title="EW schools without a ClassLink school")
    table.add_column("EW school")
    table.add_column("EW id", style="dim")
    for school in schools:
        table.add_row(school.ew_school_name, school.ew_school_id)
    return table


def summary_table(summary: sync_pb2.SyncSummary, *, title: str = "Summary") -> Table:
    """Counts by kind of change, with skipped rows by reason."""
    table = Table(title=title, show_header=False)
    table.add_column("what", style="bold")
    table.add_column("count", justify="right")
    rows = [
        ("Schools created", summary.schools_created),
        ("Teachers added", summary.teachers_added),
        ("Teachers updated", summary.teachers_updated),
        ("  of which school changes", summary.membership_changes),
        ("Teachers archived", summary.teachers_archived),
        ("Teachers reactivated", summary.teachers_reactivated),
        ("Teachers unchanged", summary.teachers_unchanged),
    ]
    rows += [(f"Skipped: {skip_label(skip.reason)}", skip.count) for skip in summary.skipped]
    for what, count in rows:
        table.add_row(what, f"{count:,}")
    return table


def guard_text(guard: sync_pb2.GuardVerdict) -> Text:
    """The safety guard's verdict as one coloured sentence."""
    sentence = guard.message or (
        f"{guard.archive_count:,} to archive of {guard.active_count:,} active teachers; "
        f"at most {guard.threshold:,} without review."
    )
    if guard.needs_review:
        return Text(f"Needs review: {sentence}", style="bold yellow")
    return Text(f"Safety guard: {sentence}", style="green")


def items_table(items: Iterable[sync_pb2.PlanItem], *, title: str = "Changes") -> Table:
    """Plan items: what changes for whom, and why rows were skipped or archived."""
    table = Table(title=title)
    table.add_column("Kind")
    table.add_column("Name")
    table.add_column("Email")
    table.add_column("Details")
    for item in items:
        details = [f"{c.field}: {c.old_value!r} → {c.new_value!r}" for c in item.field_changes]
        details += [f"+ {name}" for name in item.schools_added]
        details += [f"- {name}" for name in item.schools_removed]
        if item.reason:
            details.append(item.reason)
        elif item.skip_reason != sync_pb2.SKIP_REASON_UNSPECIFIED:
            details.append(skip_label(item.skip_reason))
        table.add_row(kind_label(item.kind), item.display_name, item.email, "\n".join(details))
    return table


def duration_label(run: sync_pb2.SyncRun) -> str:
    """How long a finished run took, e.g. ``3.2 s``; empty while it runs."""
    if not run.HasField("start_time") or not run.HasField("end_time"):
        return ""
    seconds = (run.end_time.ToDatetime() - run.start_time.ToDatetime()).total_seconds()
    return f"{seconds:.1f} s"


def runs_table(runs: Iterable[sync_pb2.SyncRun]) -> Table:
    """Run history: one row per run with its outcome and counts."""
    table = Table(title="Sync runs")
    table.add_column("Run", no_wrap=True)
    table.add_column("Trigger")
    table.add_column("State")
    table.add_column("Queued (UTC)", no_wrap=True)
    table.add_column("Took", justify="right")
    table.add_column("Added", justify="right")
    table.add_column("Updated", justify="right")
    table.add_column("Archived", justify="right")
    table.add_column("Skipped", justify="right")
    for run in runs:
        summary = run.summary
        table.add_row(
            run.run_id,
            trigger_label(run.trigger),
            styled_state(run.state),
            time_label(run.create_time),
            duration_label(run),
            f"{summary.teachers_added:,}",
            f"{summary.teachers_updated:,}",
            f"{summary.teachers_archived:,}",
            f"{sum(skip.count for skip in summary.skipped):,}",
        )
    return table


def run_table(run: sync_pb2.SyncRun) -> Table:
    """One run's details."""
    table = Table(title=f"Sync run {run.run_id}", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("Name", run.name)
    table.add_row("Trigger", trigger_label(run.trigger))
    table.add_row("State", styled_state(run.state))
    table.add_row("Phase", f"{phase_label(run.phase)} ({run.percent}%)")
    table.add_row("Requested by", run.requested_by)
    table.add_row("Queued (UTC)", time_label(run.create_time))
    table.add_row("Started (UTC)", time_label(run.start_time))
    table.add_row("Ended (UTC)", time_label(run.end_time))
    if run.approved_run:
        table.add_row("Approves", run.approved_run)
    if run.error_message:
        table.add_row("Error", Text(run.error_message, style="red"))
    return table


def ew_schools_table(schools: Iterable[roster_pb2.School]) -> Table:
    """The district's schools as EW has them."""
    table = Table(title="EW schools")
    table.add_column("EW school")
    table.add_column("EW id", style="dim")
    for school in schools:
        table.add_row(school.display_name, school.school_id)
    return table


def teachers_table(
    teachers: Iterable[roster_pb2.Teacher], school_names: dict[str, str], *, title: str = "EW teachers"
) -> Table:
    """Teachers as EW has them: name, email, state and schools."""
    table = Table(title=title)
    table.add_column("Name")
    table.add_column("Email")
    table.add_column("State")
    table.add_column("Schools")
    for teacher in teachers:
        archived = teacher.state == roster_pb2.TEACHER_STATE_ARCHIVED
        state = Text(
            f"archived ({teacher.archive_reason})" if archived else "active", style="dim" if archived else ""
        )
        schools = ", ".join(school_names.get(school_id, school_id) for school_id in teacher.school_ids)
        table.add_row(f"{teacher.given_name} {teacher.family_name}", teacher.email, state, schools)
    return table


_WEEKDAYS = ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]


def cadence_label(settings: sync_pb2.AutoSync) -> str:
    """``monthly on day 31 (the last day in shorter months)``, ``weekly on Sunday``, ``daily``."""
    if settings.cadence == sync_pb2.AUTO_SYNC_CADENCE_DAILY:
        return "daily"
    if settings.cadence == sync_pb2.AUTO_SYNC_CADENCE_WEEKLY:
        return f"weekly on {_WEEKDAYS[settings.day - 1]}" if 1 <= settings.day <= 7 else "weekly"
    shorter = " (the last day in shorter months)" if settings.day > 28 else ""
    return f"monthly on day {settings.day}{shorter}"


def _next_run_label(settings: sync_pb2.AutoSync) -> str:
    """The next run in UTC, and in the district's time zone when it is a known one."""
    if not settings.HasField("next_run_time"):
        return "none (AutoSync is off)"
    label = time_label(settings.next_run_time)
    try:
        zone = ZoneInfo(settings.time_zone)
    except (ZoneInfoNotFoundError, ValueError):
        return label
    local = settings.next_run_time.ToDatetime(dt.UTC).astimezone(zone)
    return f"{label} ({local:%Y-%m-%d %H:%M} {settings.time_zone})"


def autosync_table(settings: sync_pb2.AutoSync) -> Table:
    """A district's AutoSync: on or off, when, pauses, the next run and the last automatic one."""
    table = Table(title="AutoSync", show_header=False)
    table.add_column("field", style="bold")
    table.add_column("value")
    table.add_row("AutoSync", Text("on", style="green") if settings.enabled else Text("off", style="dim"))
    table.add_row("Cadence", cadence_label(settings))
    table.add_row("At", f"{settings.hour:02d}:00 {settings.time_zone or '(time zone not set)'}")
    pauses = ", ".join(f"{window.start_date} → {window.end_date}" for window in settings.pause_windows)
    table.add_row("Paused", pauses or "never")
    table.add_row("Next run (UTC)", _next_run_label(settings))
    if settings.HasField("last_auto_run"):
        run = settings.last_auto_run
        last = Text(f"{run.run_id} ")
        last.append_text(styled_state(run.state))
        table.add_row("Last automatic run", last)
    else:
        table.add_row("Last automatic run", "none yet")
    return table


def action_label(action: sync_pb2.ChangeAction.ValueType) -> str:
    """``CHANGE_ACTION_ARCHIVED`` → ``archived``."""
    return _label(sync_pb2.ChangeAction.Name(action), "CHANGE_ACTION_")


def subject_label(subject: sync_pb2.ChangeSubject.ValueType) -> str:
    """``CHANGE_SUBJECT_TEACHER`` → ``teacher``."""
    return _label(sync_pb2.ChangeSubject.Name(subject), "CHANGE_SUBJECT_")


def revert_table(response: sync_service_pb2.RevertSyncRunResponse, *, title: str) -> Table:
    """What a revert undoes (or would undo), then the rows it leaves because they changed since."""
    table = Table(title=title)
    table.add_column("What")
    table.add_column("Who")
    table.add_column("Undoes")
    table.add_column("Left as it is because")
    for item in response.items:
        table.add_row(
            subject_label(item.subject),
            item.display_name or item.subject_id,
            action_label(item.undone),
            "",
        )
    for conflict in response.conflicts:
        who = (
            f"run {conflict.later_run.rpartition('/')[2]}"
            if conflict.later_run
            else "someone outside the sync"
        )
        table.add_row(
            subject_label(conflict.subject),
            conflict.display_name or conflict.subject_id,
            "",
            Text(f"changed since by {who}", style="yellow"),
        )
    return table


def _audit_rows(
    table: Table, events: Iterable[sync_pb2.AuditEvent | roster_pb2.AuditEvent], actions: Any
) -> Table:
    for column in ("When", "Who", "Action", "Target", "Outcome"):
        table.add_column(column)
    for event in events:
        outcome = Text(
            event.outcome.lower().replace("_", " "), style="green" if event.outcome == "OK" else "red"
        )
        if event.message:
            outcome.append(f": {event.message}", style="dim")
        action = _label(actions.Name(event.action), "AUDIT_ACTION_")
        table.add_row(time_label(event.time), event.actor, action, event.target, outcome)
    return table


def audit_table(events: Iterable[sync_pb2.AuditEvent]) -> Table:
    """The sync's audit trail, newest first: when, who, what, target and outcome."""
    return _audit_rows(Table(title="Audit trail (UTC)"), events, sync_pb2.AuditAction)


def roster_audit_table(events: Iterable[roster_pb2.AuditEvent]) -> Table:
    """The roster's audit trail (unarchives, archives, change sets by people), newest first."""
    return _audit_rows(Table(title="Roster audit trail (UTC)"), events, roster_pb2.AuditAction)


def history_table(entries: Iterable[sync_pb2.TeacherHistoryEntry], school_names: dict[str, str]) -> Table:
    """Every change runs made to one teacher, oldest first, with the run and why."""
    table = Table(title="Teacher history (UTC)")
    table.add_column("When")
    table.add_column("Change")
    table.add_column("Details")
    table.add_column("Why")
    table.add_column("Run")
    for entry in entries:
        details = [f"{c.field}: {c.old_value or '-'} → {c.new_value or '-'}" for c in entry.field_changes]
        details += [f"+ {school_names.get(s, s)}" for s in entry.schools_added]
        details += [f"- {school_names.get(s, s)}" for s in entry.schools_removed]
        table.add_row(
            time_label(entry.time),
            action_label(entry.action),
            "\n".join(details),
            entry.reason,
            f"{entry.run.rpartition('/')[2]} ({trigger_label(entry.trigger)}, {entry.requested_by})",
        )
    return table
