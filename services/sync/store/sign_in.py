"""SQL for pending ClassLink sign-ins (hashed, single-use states). The caller owns the transaction."""

from __future__ import annotations

import datetime as dt

from sqlalchemy import delete, update
from sqlalchemy.orm import Session

from services.sync.store.models import SignInState


def add_state(
    session: Session,
    *,
    state_hash: str,
    district_id: str,
    redirect_uri: str,
    requested_by: str,
    now: dt.datetime,
    expire_time: dt.datetime,
) -> None:
    """Remember a new sign-in state by its hash."""
    session.add(
        SignInState(
            state_hash=state_hash,
            district_id=district_id,
            redirect_uri=redirect_uri,
            requested_by=requested_by,
            create_time=now,
            expire_time=expire_time,
            used_time=None,
        )
    )


def get_state(session: Session, state_hash: str) -> SignInState | None:
    """The pending or used sign-in with this state hash."""
    return session.get(SignInState, state_hash)


def use_state(session: Session, state_hash: str, now: dt.datetime) -> bool:
    """Mark the state used; False when it was used already (by a concurrent call too)."""
    result = session.execute(
        update(SignInState)
        .where(SignInState.state_hash == state_hash, SignInState.used_time.is_(None))
        .values(used_time=now)
    )
    return bool(result.rowcount)  # type: ignore[attr-defined]


def purge_states(session: Session, older_than: dt.datetime) -> None:
    """Forget sign-ins that expired before ``older_than``."""
    session.execute(delete(SignInState).where(SignInState.expire_time < older_than))
