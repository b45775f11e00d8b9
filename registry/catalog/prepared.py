"""A lookup run straight through the SQLite driver: compiled once, one statement, no transaction around it.

A warm load asks the catalog one question (which version does this reference
name, and what does its row say) and then reads a blob that costs less than
the question did through SQLAlchemy's execution path. Measured on the
version lookup: SQLite answers it in about 10 µs, a pooled DBAPI connection
adds 6, and SQLAlchemy's path around it (connect, ``BEGIN`` from the begin
event, the compiled-cache lookup, building a ``Result``, ``ROLLBACK``, reset
on return) about 90 more: more than a small model's ``joblib.load``.

A single ``SELECT`` on SQLite is a transaction of its own, so it reads one
consistent snapshot without ``BEGIN``. :class:`PreparedSelect` compiles its
statement for the engine's dialect once, runs it on a connection from the
engine's own pool (so every pragma and read-only setting applies), and
passes each column through the result processor SQLAlchemy would use for it
(JSON, UTC datetimes, booleans): the row reads the same as one from
``Connection.execute``. Driver errors are raised as SQLAlchemy's
``DBAPIError``, as from every other query.

SQLite only (:func:`supported`): a server catalog pays a network round trip
per statement, beside which this overhead is small, and its connections can
drop mid-call, which SQLAlchemy's path handles (invalidating the pooled
connection) and this one would have to redo.
"""

from __future__ import annotations

from collections.abc import Callable
from types import SimpleNamespace
from typing import Any

from sqlalchemy import Engine, Select
from sqlalchemy.exc import DBAPIError

__all__ = ["PreparedSelect", "supported"]


def supported(engine: Engine) -> bool:
    """Whether :class:`PreparedSelect` may run on ``engine`` (a SQLite catalog, whose paramstyle is positional)."""
    return engine.dialect.name == "sqlite" and engine.dialect.paramstyle == "qmark"


class PreparedSelect:
    """One ``SELECT`` compiled for ``engine`` once; :meth:`first` runs it and returns its first row or ``None``.

    >>> latest = PreparedSelect(select(ModelRow.id).where(ModelRow.name == bindparam("name")), engine)  # doctest: +SKIP
    >>> latest.first(name="iris").id                                                                  # doctest: +SKIP
    1
    """

    def __init__(self, statement: Select[Any], engine: Engine) -> None:
        if not supported(engine):
            raise ValueError(f"a prepared select runs on SQLite only, not on {engine.dialect.name}")
        dialect = engine.dialect
        compiled = statement.compile(dialect=dialect)
        self._engine = engine
        self._sql = compiled.string
        self._order = tuple(compiled.positiontup or ())
        binds = compiled.binds
        if any(binds[name].type.dialect_impl(dialect).bind_processor(dialect) is not None for name in self._order):
            raise ValueError("a prepared select binds plain values only (its parameters need no conversion)")
        self._defaults = {name: bind.value for name, bind in binds.items() if not bind.required}  # LIMIT's
        columns = list(statement.selected_columns)
        self._keys: tuple[str, ...] = tuple(str(column.key) for column in columns)
        processors: list[Callable[[Any], Any] | None] = [
            column.type.dialect_impl(dialect).result_processor(dialect, None) for column in columns
        ]
        self._processors = tuple(processors)
        self._error = dialect.loaded_dbapi.Error

    def first(self, **params: Any) -> SimpleNamespace | None:
        """The first row for ``params`` (every bound parameter by name), processed as SQLAlchemy would."""
        values = tuple(params[name] if name in params else self._defaults[name] for name in self._order)
        connection = self._engine.raw_connection()
        try:
            cursor = connection.cursor()
            try:
                cursor.execute(self._sql, values)
                row = cursor.fetchone()
            finally:
                cursor.close()
        except self._error as exc:
            raise DBAPIError.instance(self._sql, values, exc, self._error, dialect=self._engine.dialect) from exc
        finally:
            connection.close()
        if row is None:
            return None
        return SimpleNamespace(
            **{
                key: value if process is None else process(value)
                for key, process, value in zip(self._keys, self._processors, row, strict=True)
            }
        )
