"""Every row of every table of a database, for "nothing changed" and "no secret in clear text" checks."""

from __future__ import annotations

from sqlalchemy import Engine, MetaData, select

Dump = dict[str, list[tuple[str, ...]]]


class TableDump:
    """Reads every table of ``engine``; tables are reflected once, so tables added later are covered too."""

    def __init__(self, engine: Engine) -> None:
        self._engine = engine
        self._metadata = MetaData()
        self._metadata.reflect(engine)

    def rows(self) -> Dump:
        """Each table as sorted rows of text values."""
        with self._engine.connect() as conn:
            return {
                name: sorted(
                    tuple("" if v is None else str(v) for v in row) for row in conn.execute(select(table))
                )
                for name, table in sorted(self._metadata.tables.items())
            }

    def text(self) -> str:
        """The whole database as one string, one line per row."""
        return "\n".join(f"{name}: {' | '.join(row)}" for name, rows in self.rows().items() for row in rows)
