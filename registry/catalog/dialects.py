"""The few statements whose spelling differs between SQLite, PostgreSQL and MySQL.

"Insert unless present" and "insert or update" are single atomic statements
on every engine modelshelf supports; doing them as a read followed by a
write would race with other clients. Each statement is built once per
dialect and table and then reused with new parameters. :class:`NullsFirst`
is an ordering each engine spells its own way.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import cache
from typing import Any

from sqlalchemy import ColumnElement, Connection, Table
from sqlalchemy.ext.compiler import compiles
from sqlalchemy.sql.visitors import InternalTraversal


def _dialect_insert(dialect: str, table: Table) -> Any:
    if dialect == "sqlite":
        from sqlalchemy.dialects.sqlite import insert as sqlite_insert

        return sqlite_insert(table)
    elif dialect == "postgresql":
        from sqlalchemy.dialects.postgresql import insert as postgresql_insert

        return postgresql_insert(table)
    elif dialect in ("mysql", "mariadb"):
        from sqlalchemy.dialects.mysql import insert as mysql_insert

        return mysql_insert(table)
    else:
        raise NotImplementedError(
            f"the catalog does not support the {dialect!r} database yet; use SQLite, PostgreSQL or MySQL/MariaDB"
        )


@cache
def _insert_ignore(dialect: str, table: Table, keys: tuple[str, ...]) -> Any:
    statement = _dialect_insert(dialect, table)
    if dialect in ("mysql", "mariadb"):
        return statement.on_duplicate_key_update({keys[0]: statement.inserted[keys[0]]})
    return statement.on_conflict_do_nothing(index_elements=list(keys))


@cache
def _upsert(dialect: str, table: Table, keys: tuple[str, ...], updates: tuple[str, ...]) -> Any:
    statement = _dialect_insert(dialect, table)
    if dialect in ("mysql", "mariadb"):
        return statement.on_duplicate_key_update({column: statement.inserted[column] for column in updates})
    return statement.on_conflict_do_update(
        index_elements=list(keys), set_={column: statement.excluded[column] for column in updates}
    )


def insert_ignore(connection: Connection, table: Table, rows: Sequence[dict[str, Any]], keys: Sequence[str]) -> None:
    """Insert ``rows``, silently skipping those whose ``keys`` already exist."""
    connection.execute(_insert_ignore(connection.dialect.name, table, tuple(keys)), list(rows))


def upsert(
    connection: Connection,
    table: Table,
    rows: Sequence[dict[str, Any]],
    keys: Sequence[str],
    updates: Sequence[str],
) -> None:
    """Insert ``rows``; where ``keys`` already exist, overwrite the ``updates`` columns instead."""
    connection.execute(_upsert(connection.dialect.name, table, tuple(keys), tuple(updates)), list(rows))


class NullsFirst(ColumnElement[Any]):
    """``column`` ascending with ``NULL`` first, spelled so that an index on ``column`` can give that order.

    SQLite and MySQL/MariaDB sort ``NULL`` first in ascending order already
    (and MySQL has no ``NULLS FIRST``); PostgreSQL sorts it last unless told.
    The portable ``column IS NULL DESC, column`` means the same everywhere,
    but no engine reads it from an index: it forces a sort.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(NullsFirst)
def _nulls_first_portably(element: NullsFirst, compiler: Any, **kw: Any) -> str:
    column = compiler.process(element.column, **kw)
    return f"{column} IS NULL DESC, {column}"


@compiles(NullsFirst, "sqlite")
@compiles(NullsFirst, "mysql")
@compiles(NullsFirst, "mariadb")
def _nulls_first_natively(element: NullsFirst, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(NullsFirst, "postgresql")
def _nulls_first_postgresql(element: NullsFirst, compiler: Any, **kw: Any) -> str:
    return f"{compiler.process(element.column, **kw)} NULLS FIRST"


class TypedNull(ColumnElement[Any]):
    """A ``NULL`` of ``type_``: cast on PostgreSQL, which types each column of a ``UNION`` from its first select.

    The other engines take a bare ``NULL`` beside any type (and MySQL cannot
    cast to every type), so only PostgreSQL gets the cast.
    """

    inherit_cache = True
    _traverse_internals = [("type", InternalTraversal.dp_type)]

    def __init__(self, type_: Any) -> None:
        self.type = type_


@compiles(TypedNull)
def _bare_null(element: TypedNull, compiler: Any, **kw: Any) -> str:
    return "NULL"


@compiles(TypedNull, "postgresql")
def _cast_null(element: TypedNull, compiler: Any, **kw: Any) -> str:
    return f"CAST(NULL AS {compiler.dialect.type_compiler_instance.process(element.type)})"


class NotIndexed(ColumnElement[Any]):
    """``column``, spelled so that SQLite does not read an index for it (``+column``): the query then starts elsewhere.

    SQLite chooses a plan without statistics. For one model's versions
    filtered by a selective equality (``params.cohort = 0``: 1,000 of a
    million), it walked the model's whole ``(model_id, version)`` index for
    the order, testing each version, instead of starting from the few
    versions the filter's index names and sorting them. The unary ``+``
    is SQLite's documented way to take one term out of index selection;
    the other engines plan by statistics and get the column as it is.
    """

    inherit_cache = True
    _traverse_internals = [("column", InternalTraversal.dp_clauseelement)]

    def __init__(self, column: Any) -> None:
        self.column = column
        self.type = column.type


@compiles(NotIndexed)
def _indexed_as_usual(element: NotIndexed, compiler: Any, **kw: Any) -> str:
    return str(compiler.process(element.column, **kw))


@compiles(NotIndexed, "sqlite")
def _not_indexed_in_sqlite(element: NotIndexed, compiler: Any, **kw: Any) -> str:
    return f"+{compiler.process(element.column, **kw)}"
