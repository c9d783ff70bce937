"""Re-encrypt every stored ClassLink secret under the newest key of ``EW_SECRET_KEYS``.

Rotation, with no downtime:

1. Generate a key and put it first: ``EW_SECRET_KEYS=<new>,<old>``. Roll that out to every sync
   server and worker; new secrets are then encrypted with the new key and old ones still decrypt.
2. Run ``python -m services.sync.rotate_secrets`` once: it re-encrypts what the old keys hold.
3. When it reports nothing left under an old key, remove the old key from ``EW_SECRET_KEYS``.

All rows are rewritten in one transaction with row locks, so a district connecting at the same
moment is never overwritten with its previous secret. A row no configured key decrypts is left as
it is and named (by district) in the report; the command then exits 1.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass

from pydantic import ValidationError
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import make_engine
from services.common.secret_files import apply_secret_files
from services.common.secrets import SecretBox, SecretSettings, UndecryptableSecret
from services.sync.settings import load_settings
from services.sync.store.models import Connection


@dataclass(frozen=True)
class Rotation:
    """What one pass did."""

    rotated: int
    current: int
    undecryptable: list[str]


def rotate_connection_secrets(sessions: sessionmaker[Session], box: SecretBox) -> Rotation:
    """Re-encrypt under the newest key every connection secret an older key encrypted."""
    rotated = current = 0
    undecryptable: list[str] = []
    with sessions.begin() as session:
        for connection in session.scalars(
            select(Connection).order_by(Connection.district_id).with_for_update()
        ):
            try:
                if not box.needs_rotation(connection.secret_ciphertext):
                    current += 1
                    continue
                connection.secret_ciphertext = box.rotate(connection.secret_ciphertext)
            except UndecryptableSecret:
                undecryptable.append(connection.district_id)
                continue
            rotated += 1
    return Rotation(rotated, current, undecryptable)


def main() -> int:
    """Rotate the database of ``EW_SYNC_DATABASE_URL`` with the keys of ``EW_SECRET_KEYS``."""
    apply_secret_files()
    settings = load_settings()
    try:
        box = SecretBox.from_settings(SecretSettings())
    except ValidationError as error:
        print(f"rotate_secrets: invalid EW_SECRET_* settings: {error.errors()[0]['msg']}", file=sys.stderr)
        return 2
    engine = make_engine(settings.database_url)
    try:
        result = rotate_connection_secrets(sessionmaker(engine), box)
    finally:
        engine.dispose()
    already = f"{result.current} were already under the newest key"
    print(f"re-encrypted {result.rotated} connection secrets; {already}")
    if result.undecryptable:
        print(
            "no key in EW_SECRET_KEYS decrypts the secret of: "
            f"{', '.join(result.undecryptable)}; restore the key it was encrypted with, or connect again",
            file=sys.stderr,
        )
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
