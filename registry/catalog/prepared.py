"""The lookup statements compiled once per engine and run on the driver's own cursor.

``get``, ``latest`` and an alias lookup run two small indexed queries. On
SQLite each takes about 7 µs in the driver, and about 35 µs through
``Connection.execute``, which builds a cache key, an execution context and
a result object for every call: the framework, not the database, was most
of a lookup's time. A :class:`Prepared` statement is a Core ``select``
compiled once for the engine's dialect; each call binds its parameters in
the compiled order and fetches plain tuples from a cursor of the
connection's own driver connection, inside the caller's transaction.

It is only for statements whose parameters and columns need no
conversion by SQLAlchemy (checked when the statement is compiled), and a
driver error comes out as SQLAlchemy's ``DBAPIError``, with a lost
connection invalidated, so :mod:`registry.catalog.engine` handles it as
any other. An engine someone watches (``echo``, or execute and cursor
event listeners: SQL logging, tracing, the fault injection of the tests)
gets every statement through ``Connection.execute`` as before, so they
still see each one.
"""

from __future__ import annotations

from collections.abc import Mapping
from contextlib import suppress
from typing import Any

from sqlalchemy import Connection, Select
from sqlalchemy.engine import Dialect
from sqlalchemy.exc import DBAPIError
from sqlalchemy.sql.compiler import SQLCompiler


class Prepared:
    """A ``select`` that runs on the driver's cursor: its rows as the driver returns them (see the module)."""

    def __init__(self, statement: Select[Any] | Any) -> None:
        self.statement = statement
        self._by_dialect: dict[tuple[Any, ...], tuple[str, tuple[str, ...] | None, dict[str, Any]]] = {}

    def _compiled(self, dialect: Dialect) -> tuple[str, tuple[str, ...] | None, dict[str, Any]]:
        # what SQLAlchemy's compilation can depend on: the dialect, its parameter style, the server it talks to
        key = (dialect.name, dialect.paramstyle, dialect.server_version_info, getattr(dialect, "is_mariadb", False))
        found = self._by_dialect.get(key)
        if found is None:
            compiled = self.statement.compile(dialect=dialect)
            assert isinstance(compiled, SQLCompiler)
            for name, bind in compiled.binds.items():
                if bind.expanding or bind.type.dialect_impl(dialect).bind_processor(dialect) is not None:
                    raise TypeError(
                        f"parameter {name!r} needs SQLAlchemy to bind it: run this statement with execute()"
                    )
            order = tuple(compiled.positiontup or ()) if compiled.positional else None
            literals = {name: bind.effective_value for bind, name in compiled.bind_names.items() if not bind.required}
            found = (compiled.string, order, literals)
            self._by_dialect[key] = found
        return found

    def rows(self, connection: Connection, params: Mapping[str, Any]) -> list[tuple[Any, ...]]:
        """Every row, as plain tuples, for ``params`` (a value for each bound name of the statement)."""
        if watched(connection):
            return [tuple(row) for row in connection.execute(self.statement, dict(params))]
        sql, order, defaults = self._compiled(connection.dialect)
        values = {**defaults, **params}
        arguments: Any = values if order is None else tuple(values[name] for name in order)
        return run_on_driver(connection, sql, arguments)

    def first(self, connection: Connection, params: Mapping[str, Any]) -> tuple[Any, ...] | None:
        """The first row, or ``None``."""
        rows = self.rows(connection, params)
        return rows[0] if rows else None


def watched(connection: Connection) -> bool:
    """Whether anyone watches the statements of ``connection``'s engine: ``echo``, or execute or cursor listeners."""
    engine = connection.engine
    dispatch = engine.dispatch
    return bool(
        engine.echo
        or dispatch.before_cursor_execute
        or dispatch.after_cursor_execute
        or dispatch.before_execute
        or dispatch.after_execute
    )


def run_on_driver(connection: Connection, sql: str, arguments: Any = ()) -> list[tuple[Any, ...]]:
    """Run ``sql`` on a cursor of ``connection``'s driver connection; its rows (none for a statement without).

    Driver errors are raised as SQLAlchemy raises them from ``execute``: a
    ``DBAPIError`` wrapping the driver's, with a lost connection invalidated.
    On a :func:`watched` connection the statement goes through ``exec_driver_sql``.
    """
    if watched(connection):
        result = connection.exec_driver_sql(sql, arguments)
        return [tuple(row) for row in result] if result.returns_rows else []
    driver_connection = connection.connection
    cursor = driver_connection.cursor()
    try:
        cursor.execute(sql, arguments)
        rows = list(cursor.fetchall()) if cursor.description is not None else []
    except connection.dialect.loaded_dbapi.Error as exc:
        lost = connection.dialect.is_disconnect(exc, driver_connection.dbapi_connection, cursor)
        with suppress(Exception):  # a cursor of a dead connection may not close
            cursor.close()
        if lost:
            connection.invalidate(exc)
        raise DBAPIError.instance(
            sql, arguments, exc, connection.dialect.loaded_dbapi.Error, connection_invalidated=lost
        ) from exc
    cursor.close()
    return rows
