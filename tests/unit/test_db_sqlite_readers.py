"""SQLite transactions: writers take the write lock up front, readers never wait for a writer."""

from __future__ import annotations

from pathlib import Path

import pytest
from sqlalchemy import text
from sqlalchemy.exc import OperationalError

from services.common.db import READ_ONLY, make_engine


def test_a_read_only_transaction_reads_while_a_writer_holds_the_lock(tmp_path: Path) -> None:
    # No busy wait: a transaction that needs the lock fails at once instead of waiting for it.
    engine = make_engine(
        f"sqlite:///{tmp_path / 'db.sqlite'}", connect_args={"check_same_thread": False, "timeout": 0}
    )
    with engine.begin() as setup:
        setup.execute(text("CREATE TABLE t (v INTEGER)"))
        setup.execute(text("INSERT INTO t VALUES (1)"))
    readers = engine.execution_options(**READ_ONLY)
    with engine.begin() as writer:
        writer.execute(text("INSERT INTO t VALUES (2)"))
        with readers.begin() as reader:
            # The snapshot before the writer's uncommitted row.
            assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 1
        with pytest.raises(OperationalError, match="locked"), engine.begin() as other_writer:
            other_writer.execute(text("SELECT count(*) FROM t"))
    with readers.begin() as reader:
        assert reader.execute(text("SELECT count(*) FROM t")).scalar_one() == 2
    engine.dispose()
