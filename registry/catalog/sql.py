"""The few statements whose spelling differs between SQLite, PostgreSQL and MySQL.

"Insert unless present" and "insert or update" are single atomic statements
on every engine modelshelf supports; doing them as a read followed by a
write would race with other clients.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, Table


def _dialect_insert(connection: Connection, table: Table) -> Any:
    name = connection.dialect.name
    if name == "sqlite":
        from sqlalchemy.dialects.sqlite import insert
    elif name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    elif name in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert
    else:
        raise NotImplementedError(
            f"the catalog does not support the {name!r} database yet; use SQLite, PostgreSQL or MySQL/MariaDB"
        )
    return insert(table)


def insert_ignore(connection: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """Insert ``rows``, silently skipping those whose ``keys`` already exist."""
    statement = _dialect_insert(connection, table)
    if connection.dialect.name in ("mysql", "mariadb"):
        statement = statement.on_duplicate_key_update({keys[0]: statement.inserted[keys[0]]})
    else:
        statement = statement.on_conflict_do_nothing(index_elements=list(keys))
    connection.execute(statement, list(rows))


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    updates: Sequence[str],
) -> None:
    """Insert ``rows``; where ``keys`` already exist, overwrite the ``updates`` columns instead."""
    statement = _dialect_insert(connection, table)
    if connection.dialect.name in ("mysql", "mariadb"):
        statement = statement.on_duplicate_key_update({column: statement.inserted[column] for column in updates})
    else:
        statement = statement.on_conflict_do_update(
            index_elements=list(keys), set_={column: statement.excluded[column] for column in updates}
        )
    connection.execute(statement, list(rows))
