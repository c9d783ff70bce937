"""The sync service's own records for a district, as the planner takes them."""

from __future__ import annotations

from sqlalchemy.orm import Session

from services.sync.planning import planner
from services.sync.settings import SyncSettings
from services.sync.store import links, mappings


def guard_config(settings: SyncSettings) -> planner.GuardConfig:
    """The safety guard's limits from the settings."""
    return planner.GuardConfig(max_fraction=settings.guard_fraction, minimum=settings.guard_minimum)


def sync_state(
    session: Session,
    district_id: str,
    settings: SyncSettings,
    approval: planner.Approval | None = None,
) -> planner.SyncState:
    """Stored mappings (UNMAPPED included) and teacher links of the district, with the guard's limits."""
    return planner.SyncState(
        mappings={
            mapping.classlink_school_id: planner.MappingState(
                ew_school_id=mapping.ew_school_id, origin=mapping.origin
            )
            for mapping in mappings.list_mappings(session, district_id)
        },
        links=links.list_links(session, district_id),
        guard=guard_config(settings),
        approval=approval,
    )
