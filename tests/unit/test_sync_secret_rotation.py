"""Key rotation of stored ClassLink secrets: re-encrypt under the new key, then the old key can go."""

from __future__ import annotations

import datetime as dt
from collections.abc import Callable, Iterator

import pytest
from cryptography.fernet import Fernet
from sqlalchemy import Engine, select
from sqlalchemy.orm import Session, sessionmaker

from services.common.db import make_engine
from services.common.secrets import SecretBox, UndecryptableSecret
from services.sync import rotate_secrets
from services.sync.migrate import upgrade
from services.sync.store import connections
from services.sync.store.models import Connection
from services.sync.vocabulary import AuthMethod, ConnectMethod, OneRosterVersion

NOW = dt.datetime(2026, 11, 28, 12, 0, tzinfo=dt.UTC)
OLD, NEW, LOST = (Fernet.generate_key().decode() for _ in range(3))
SECRETS = {"d-1": "first-district-secret-0001", "d-2": "second-district-secret-0002"}


@pytest.fixture
def url(database_url: Callable[[str], str]) -> str:
    return database_url("sync")


@pytest.fixture
def engine(url: str) -> Iterator[Engine]:
    engine = make_engine(url)
    upgrade(engine)
    yield engine
    engine.dispose()


@pytest.fixture
def sessions(engine: Engine) -> sessionmaker[Session]:
    return sessionmaker(engine, expire_on_commit=False)


def store(sessions: sessionmaker[Session], district_id: str, ciphertext: str) -> None:
    values = connections.ConnectionValues(
        district_id=district_id,
        server_url="https://oneroster.example.test",
        auth_method=AuthMethod.OAUTH1,
        oneroster_version=OneRosterVersion.V1P1,
        client_id="key",
        secret_ciphertext=ciphertext,
        secret_hint="…0001",
        tenant_id=None,
        connect_method=ConnectMethod.MANUAL,
    )
    with sessions.begin() as session:
        connections.save_connection(session, values, NOW)


def stored(sessions: sessionmaker[Session]) -> dict[str, str]:
    with sessions() as session:
        return {c.district_id: c.secret_ciphertext for c in session.scalars(select(Connection))}


def test_rotation_moves_every_secret_to_the_new_key_so_the_old_key_can_be_dropped(
    sessions: sessionmaker[Session],
) -> None:
    old = SecretBox([OLD])
    for district_id, secret in SECRETS.items():
        store(sessions, district_id, old.encrypt(secret))
    both = SecretBox([NEW, OLD])

    first = rotate_secrets.rotate_connection_secrets(sessions, both)
    again = rotate_secrets.rotate_connection_secrets(sessions, both)

    assert (first.rotated, first.current, first.undecryptable) == (2, 0, [])
    assert (again.rotated, again.current, again.undecryptable) == (0, 2, [])
    only_new = SecretBox([NEW])
    assert {d: only_new.decrypt(c).get_secret_value() for d, c in stored(sessions).items()} == SECRETS
    with pytest.raises(UndecryptableSecret):
        old.decrypt(stored(sessions)["d-1"])


def test_a_secret_no_key_decrypts_is_named_and_left_alone(sessions: sessionmaker[Session]) -> None:
    store(sessions, "d-1", SecretBox([OLD]).encrypt(SECRETS["d-1"]))
    lost = SecretBox([LOST]).encrypt(SECRETS["d-2"])
    store(sessions, "d-2", lost)

    result = rotate_secrets.rotate_connection_secrets(sessions, SecretBox([NEW, OLD]))

    assert (result.rotated, result.undecryptable) == (1, ["d-2"])
    assert stored(sessions)["d-2"] == lost


def test_the_command_reports_and_fails_on_an_undecryptable_secret(
    url: str,
    sessions: sessionmaker[Session],
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    store(sessions, "d-1", SecretBox([OLD]).encrypt(SECRETS["d-1"]))
    store(sessions, "d-2", SecretBox([LOST]).encrypt(SECRETS["d-2"]))
    monkeypatch.setenv("EW_SYNC_DATABASE_URL", url)
    monkeypatch.setenv("EW_SECRET_KEYS", f"{NEW},{OLD}")

    assert rotate_secrets.main() == 1

    out, err = capsys.readouterr()
    assert "re-encrypted 1 connection secrets; 0 were already under the newest key" in out
    assert "d-2" in err and "restore the key" in err
    assert SECRETS["d-2"] not in out + err
