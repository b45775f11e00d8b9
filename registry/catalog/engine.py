"""Engines and transactions: how modelshelf talks to the catalog database.

SQLite, the embedded default, needs care to be safe under concurrent
writers from several processes:

* WAL mode, so readers never block writers nor writers readers;
  ``synchronous=FULL`` so a committed version survives power loss;
  foreign keys on; a busy timeout so a writer waits for the lock.
* Every write transaction starts with ``BEGIN IMMEDIATE``. A deferred
  transaction that reads and then writes must upgrade its lock mid-way,
  and SQLite answers that upgrade with SQLITE_BUSY at once, whatever the
  busy timeout. Taking the write lock up front makes writers queue instead.
  The pysqlite driver is put in autocommit mode so that it does not emit a
  ``BEGIN`` of its own; the ``begin`` event below emits ours.
* Read transactions use a plain ``BEGIN``: in WAL mode they see one
  consistent snapshot and take no write lock.

Engines are disposed in forked children (``os.register_at_fork``), so a
``Registry`` opened before ``fork()`` does not share database connections
with its children.
"""

from __future__ import annotations

import os
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from registry.errors import CatalogError, InvalidCatalogURL
from registry.values import dumps

#: How long a writer waits for another writer's lock before giving up, in seconds.
LOCK_TIMEOUT = 60.0
_WRITE_OPTION = "modelshelf_write"
#: The optional dependency (``pip install 'modelshelf[EXTRA]'``) that brings each server's driver.
DRIVER_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _dispose_after_fork() -> None:
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)


def parse_url(url: str | URL | Path) -> URL:
    """A SQLAlchemy URL (a ``Path`` is a SQLite file), or :class:`InvalidCatalogURL` explaining the form."""
    if isinstance(url, Path):
        return URL.create("sqlite", database=str(url.absolute()))
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise InvalidCatalogURL(
            f"invalid catalog URL {str(url)[:200]!r}: {exc}; "
            "use a SQLAlchemy URL such as 'sqlite:///path/to/catalog.db'"
        ) from None
    if parsed.get_backend_name() == "sqlite" and sqlite_path(parsed) is None:
        raise InvalidCatalogURL(
            f"the catalog URL {str(url)[:200]!r} names an in-memory SQLite database, which each connection "
            "sees empty; give a file, such as 'sqlite:///path/to/catalog.db'"
        )
    return parsed


def sqlite_path(url: URL) -> Path | None:
    """The file of a file-based SQLite URL, else ``None``."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:") or database.startswith("file:"):
        return None
    return Path(database)


def _configure_sqlite(engine: Engine, in_memory: bool) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory:
                _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        if connection.get_execution_options().get(_WRITE_OPTION):
            connection.exec_driver_sql("BEGIN IMMEDIATE")
        else:
            connection.exec_driver_sql("BEGIN")


def _set_wal(cursor: Any) -> None:
    # Switching a new database to WAL needs a brief exclusive lock, and SQLite
    # reports contention on it without consulting the busy handler.
    deadline = time.monotonic() + LOCK_TIMEOUT
    while True:
        try:
            cursor.execute("PRAGMA journal_mode = WAL")
            return
        except Exception as exc:
            if "locked" not in str(exc) or time.monotonic() > deadline:
                raise
            time.sleep(0.01)


def make_engine(url: URL) -> Engine:
    """An engine for the catalog at ``url``, configured for safe concurrent use."""
    options: dict[str, Any] = {"json_serializer": dumps}
    backend = url.get_backend_name()
    if backend == "sqlite":
        options["connect_args"] = {"timeout": LOCK_TIMEOUT, "check_same_thread": False}
    else:
        options["pool_pre_ping"] = True
        # Each statement sees what committed before it: the version counter and blob rows are
        # read right after being locked, and must show other clients' committed work.
        options["isolation_level"] = "READ COMMITTED"
    try:
        engine = create_engine(url, **options)
    except ImportError as exc:
        extra = DRIVER_EXTRAS.get(backend)
        hint = f"pip install 'modelshelf[{extra}]'" if extra else "install the database driver the URL names"
        raise CatalogError(
            f"the catalog URL {url.render_as_string(hide_password=True)!r} needs a driver that is not "
            f"installed ({exc}); {hint}"
        ) from exc
    except Exception as exc:  # a bad option in the URL
        raise CatalogError(f"cannot use the catalog URL {url.render_as_string(hide_password=True)!r}: {exc}") from exc
    if backend == "sqlite":
        _configure_sqlite(engine, in_memory=sqlite_path(url) is None)
    _engines.add(engine)
    return engine


#: What each driver reports for "a lock wait timed out" and "the server broke a deadlock", by error code:
#: SQLite's primary result codes BUSY and LOCKED, PostgreSQL's SQLSTATEs, MySQL's and MariaDB's error numbers.
_LOCK_TIMEOUT_CODES = {"sqlite": {5, 6}, "postgresql": {"55P03"}, "mysql": {1205}}
_DEADLOCK_CODES = {"postgresql": {"40P01"}, "mysql": {1213}}


def _error_code(engine: Engine, exc: DBAPIError) -> int | str | None:
    """The driver's own code for ``exc``: codes, unlike messages, do not change with the server's language."""
    orig = exc.orig
    if engine.dialect.name == "sqlite":
        code = getattr(orig, "sqlite_errorcode", None)
        return None if code is None else code & 0xFF
    if engine.dialect.name == "postgresql":
        return getattr(orig, "sqlstate", None)
    args = getattr(orig, "args", ())
    return args[0] if args and isinstance(args[0], int) else None


def _dialect(engine: Engine) -> str:
    return "mysql" if engine.dialect.name == "mariadb" else engine.dialect.name


def _is_lock_error(engine: Engine, exc: DBAPIError) -> bool:
    return _error_code(engine, exc) in _LOCK_TIMEOUT_CODES.get(_dialect(engine), set())


def _is_deadlock(engine: Engine, exc: DBAPIError) -> bool:
    return _error_code(engine, exc) in _DEADLOCK_CODES.get(_dialect(engine), set())


def _describe(engine: Engine) -> str:
    return engine.url.render_as_string(hide_password=True)


def _failure(engine: Engine, exc: DBAPIError) -> CatalogError:
    if _is_deadlock(engine, exc):
        return CatalogError(
            f"the catalog {_describe(engine)} aborted this change because it and another writer were waiting "
            "for each other (a deadlock) and rolled it back: retry it"
        )
    if _is_lock_error(engine, exc):
        how_long = (
            f"for more than {LOCK_TIMEOUT:.0f} s"
            if engine.dialect.name == "sqlite"
            else "past the server's lock wait timeout"
        )
        return CatalogError(
            f"the catalog {_describe(engine)} stayed locked by another writer {how_long}; "
            "another process may be stuck holding it: find it, or retry later"
        )
    return CatalogError(
        f"the catalog {_describe(engine)} failed: {exc.orig}; check that it is reachable, writable and "
        "not damaged (`modelshelf verify`)"
    )


@contextmanager
def write_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a write transaction, committed on success, rolled back on error.

    On SQLite it starts with ``BEGIN IMMEDIATE`` and so holds the database
    write lock from the first statement; waiting longer than
    :data:`LOCK_TIMEOUT` for it raises :class:`CatalogError`, as does any
    other failure of the database itself (a read-only file, a lost server).
    A constraint violation is a bug, not an environment problem, and is not
    disguised.
    """
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(**{_WRITE_OPTION: True})
            with connection.begin():
                yield connection
    except IntegrityError:
        raise
    except DBAPIError as exc:
        raise _failure(engine, exc) from exc


@contextmanager
def read_transaction(engine: Engine) -> Iterator[Connection]:
    """A connection in a read-only snapshot transaction, always rolled back."""
    try:
        with engine.connect() as connection:
            with connection.begin() as transaction:
                yield connection
                transaction.rollback()
    except DBAPIError as exc:
        raise _failure(engine, exc) from exc
