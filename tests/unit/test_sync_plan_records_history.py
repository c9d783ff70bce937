"""Stored summaries and guard verdicts are proto JSON: rows written under an older field set still read."""

from __future__ import annotations

from ew.sync.v1 import sync_pb2

from services.sync.store.plan_records import guard_from_json, summary_from_json, to_json

# As an older release stored them: `teachers_moved` and `archive_limit` were later renamed or dropped,
# and `SKIP_REASON_NO_ORG` is an enum value the current proto does not have.
OLD_SUMMARY = (
    '{"schools_created": "2", "teachers_added": "40", "teachers_moved": "3", '
    '"skipped": [{"reason": "SKIP_REASON_MISSING_EMAIL", "count": "1"}, '
    '{"reason": "SKIP_REASON_NO_ORG", "count": "4", "sample": ["u1"]}], '
    '"notes": ["1 ClassLink teacher row had no email."]}'
)
OLD_GUARD = (
    '{"needs_review": true, "archive_count": "12", "archive_limit": "5", "active_count": "40", '
    '"threshold": "5", "message": "12 teachers would be archived."}'
)


def test_a_summary_stored_with_an_older_field_set_still_reads() -> None:
    summary = summary_from_json(OLD_SUMMARY)

    assert (summary.schools_created, summary.teachers_added) == (2, 40)
    assert [(s.reason, s.count) for s in summary.skipped] == [
        (sync_pb2.SKIP_REASON_MISSING_EMAIL, 1),
        (sync_pb2.SKIP_REASON_UNSPECIFIED, 4),
    ]
    assert list(summary.notes) == ["1 ClassLink teacher row had no email."]


def test_a_guard_verdict_stored_with_an_older_field_set_still_reads() -> None:
    guard = guard_from_json(OLD_GUARD)

    assert guard == sync_pb2.GuardVerdict(
        needs_review=True,
        archive_count=12,
        active_count=40,
        threshold=5,
        message="12 teachers would be archived.",
    )


def test_current_rows_still_round_trip() -> None:
    summary = sync_pb2.SyncSummary(
        teachers_updated=3,
        membership_changes=1,
        skipped=[sync_pb2.SkipCount(reason=sync_pb2.SKIP_REASON_DUPLICATE_EMAIL, count=2)],
    )
    guard = sync_pb2.GuardVerdict(archive_count=1, threshold=5, membership_removal_count=2)

    assert summary_from_json(to_json(summary)) == summary
    assert guard_from_json(to_json(guard)) == guard
