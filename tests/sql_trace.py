"""Every statement SQLite runs for a registry, whichever path sends it: SQLAlchemy's pool or the load reader.

Loads on a SQLite catalog go through :mod:`registry.catalog.lite`'s own
connection, which SQLAlchemy's ``before_cursor_execute`` never sees; a test
that counts a load's queries watches the driver instead.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from registry import Registry


@contextmanager
def traced_statements(reg: Registry) -> Iterator[list[str]]:
    """The statements SQLite runs for ``reg`` while the block runs (sqlite3's trace callback)."""
    from sqlalchemy import event

    statements: list[str] = []

    def trace(dbapi_connection: Any, *_: Any) -> None:
        dbapi_connection.set_trace_callback(statements.append)

    event.listen(reg._catalog.engine.pool, "checkout", trace)
    lite = reg._open_lite()
    if lite is not None:
        trace(lite._connect())
    try:
        yield statements
    finally:
        event.remove(reg._catalog.engine.pool, "checkout", trace)
        if lite is not None:
            lite._connect().set_trace_callback(None)
