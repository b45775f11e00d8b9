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

Server catalogs (PostgreSQL, MySQL/MariaDB) get the same bounds:

* every connection sets the server's lock wait timeout to :data:`LOCK_TIMEOUT`
  (PostgreSQL ``lock_timeout``, MySQL/MariaDB ``innodb_lock_wait_timeout``),
  so a writer stuck behind another one gives up with a clear error after the
  same time as on SQLite, whatever the server's default (PostgreSQL's is to
  wait forever);
* a transaction whose connection was lost *before* it asked to commit was
  rolled back by the server, so running it again cannot record anything
  twice: :func:`retried` runs it again, up to :data:`RETRIES` times with a
  short backoff. A connection lost *during* the commit leaves the outcome
  unknown (the server may have committed before the connection went).
  PostgreSQL can tell afterwards: each write transaction notes its
  ``txid_current()``, and ``txid_status`` on a new connection says
  committed (the change stands, no error) or aborted (rerun, as above).
  Where the server cannot say (MySQL/MariaDB, or PostgreSQL unreachable)
  it is never retried: :class:`~registry.errors.CommitOutcomeUnknown` says
  so and how to check. Retrying blindly could register a version twice
  under two numbers; making it idempotent there would need a request id
  stored with every change.

Engines are disposed in forked children (``os.register_at_fork``), so a
``Registry`` opened before ``fork()`` does not share database connections
with its children.
"""

from __future__ import annotations

import functools
import logging
import os
import time
import weakref
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any, ParamSpec, TypeVar, cast
from urllib.parse import parse_qsl, quote, unquote

from sqlalchemy import Connection, Engine, create_engine, event
from sqlalchemy.engine import URL, make_url
from sqlalchemy.exc import ArgumentError, DBAPIError, IntegrityError

from registry.catalog.prepared import run_on_driver
from registry.errors import CatalogError, CommitOutcomeUnknown, InvalidCatalogURL, ReadOnlyRegistry
from registry.validation import dumps

#: How long a writer waits for another writer's lock before giving up, in seconds (every engine).
LOCK_TIMEOUT = 60.0
#: How many times a transaction whose connection was lost before its commit is run again.
RETRIES = 3
#: The wait before the first retry, in seconds; it doubles with each further one.
RETRY_BACKOFF = 0.05
#: Each retry is logged here (at INFO), so operators and tests can count them.
log = logging.getLogger("registry.catalog")
_WRITE_OPTION = "modelshelf_write"
#: The optional dependency (``pip install 'modelshelf[EXTRA]'``) that brings each server's driver.
DRIVER_EXTRAS = {"postgresql": "postgres", "mysql": "mysql", "mariadb": "mysql"}
_engines: weakref.WeakSet[Engine] = weakref.WeakSet()


def _dispose_after_fork() -> None:
    for engine in list(_engines):
        engine.dispose(close=False)


os.register_at_fork(after_in_child=_dispose_after_fork)


#: URL schemes people write that SQLAlchemy does not know, and the one to write instead.
_SCHEME_FIXES = {
    "postgres": "postgresql+psycopg",
    "postgres+psycopg": "postgresql+psycopg",
    "postgres+psycopg2": "postgresql+psycopg2",
    "pg": "postgresql+psycopg",
    "psql": "postgresql+psycopg",
    "sqlite3": "sqlite",
    "maria": "mariadb+pymysql",
}
#: The query keys of a SQLite URL that pysqlite itself takes; every other one is a SQLite URI parameter.
_PYSQLITE_KEYS = frozenset(
    {"uri", "timeout", "check_same_thread", "isolation_level", "detect_types", "cached_statements"}
)


def parse_url(url: str | URL | Path) -> URL:
    """A SQLAlchemy URL (a ``Path`` is a SQLite file), or :class:`InvalidCatalogURL` explaining the form.

    SQLite's own URI form is accepted too, ``sqlite:///file:/path/catalog.db?mode=ro``
    (``uri=true`` is added when missing, as SQLite reads the parameters only then);
    ``mode=ro`` or ``immutable=1`` there opens the registry read-only.
    """
    if isinstance(url, Path):
        return URL.create("sqlite", database=str(url.absolute()))
    text = str(url)
    scheme = text.split("://", 1)[0].lower() if "://" in text else None
    if scheme in _SCHEME_FIXES:
        fixed = _SCHEME_FIXES[scheme] + text[len(scheme) :]
        raise InvalidCatalogURL(
            f"the catalog URL scheme {scheme}:// is not one SQLAlchemy knows; did you mean "
            f"{_SCHEME_FIXES[scheme]}:// ({describe_text(fixed)!r})?"
        )
    try:
        parsed = make_url(url)
    except (ArgumentError, ValueError) as exc:
        raise InvalidCatalogURL(
            f"invalid catalog URL {text[:200]!r}: {exc}; use a SQLAlchemy URL such as 'sqlite:///path/to/catalog.db'"
        ) from None
    if parsed.get_backend_name() == "sqlite":
        parsed = _as_uri_form(parsed, text)
        if (parsed.database or "").startswith("file:") and "uri" not in parsed.query:
            parsed = parsed.update_query_dict({"uri": "true"})
        if sqlite_path(parsed) is None:
            raise InvalidCatalogURL(
                f"the catalog URL {text[:200]!r} names an in-memory SQLite database, which each connection "
                "sees empty; give a file, such as 'sqlite:///path/to/catalog.db'"
            )
    return parsed


#: SQLite URI parameters (sqlite.org, "URI filenames"): SQLite reads them only from a ``file:`` URI.
_SQLITE_URI_KEYS = frozenset({"mode", "immutable", "cache", "vfs", "nolock", "psow", "modeof"})


def _as_uri_form(url: URL, text: str) -> URL:
    """``sqlite:////path?mode=ro`` in the ``file:`` URI form SQLite reads its parameters from.

    On a plain path pysqlite drops SQLite's own parameters with a warning, so
    ``?mode=ro`` would quietly open the catalog for writing (and create one).
    Such a URL is rewritten to ``file:/path?mode=ro``, where the parameters
    take effect; a key neither pysqlite nor SQLite knows is refused.
    """
    database = url.database or ""
    extra = {key: value for key, value in url.query.items() if key not in _PYSQLITE_KEYS}
    if not extra or database.startswith("file:") or database in ("", ":memory:"):
        return url
    unknown = sorted(set(extra) - _SQLITE_URI_KEYS)
    if unknown:
        raise InvalidCatalogURL(
            f"the SQLite catalog URL {text[:200]!r} has parameters neither SQLite nor its driver knows: "
            f"{', '.join(unknown)}; SQLite takes {', '.join(sorted(_SQLITE_URI_KEYS))} (such as ?mode=ro)"
        )
    parameters = "&".join(
        f"{quote(key)}={quote(value if isinstance(value, str) else value[-1])}" for key, value in sorted(extra.items())
    )
    location = quote(str(Path(database).absolute()), safe="/")
    kept = {key: value for key, value in url.query.items() if key in _PYSQLITE_KEYS}
    return url.set(database=f"file:{location}?{parameters}", query={**kept, "uri": "true"})


def describe_text(url: str) -> str:
    """A URL given as text, its password hidden where it parses."""
    try:
        return make_url(url).render_as_string(hide_password=True)
    except (ArgumentError, ValueError):
        return url[:200]


def _uri_parameters(url: URL) -> dict[str, str]:
    """The SQLite URI parameters of a ``file:`` URL: those inside its database part and the URL's own query."""
    database = url.database or ""
    parameters: dict[str, str] = {}
    if "?" in database:
        for key, value in parse_qsl(database.split("?", 1)[1], keep_blank_values=True):
            parameters[key] = value
    for key, given in url.query.items():
        if key not in _PYSQLITE_KEYS:
            parameters[key] = given if isinstance(given, str) else str(given[-1])
    return parameters


def sqlite_path(url: URL) -> Path | None:
    """The file of a file-based SQLite URL (plain or ``file:`` URI form), else ``None``."""
    if url.get_backend_name() != "sqlite":
        return None
    database = url.database or ""
    if database in ("", ":memory:"):
        return None
    if not database.startswith("file:"):
        return Path(database)
    if _uri_parameters(url).get("mode") == "memory":
        return None
    location = database[len("file:") :].split("?", 1)[0].split("#", 1)[0]
    if location.startswith("//"):  # file://HOST/path: SQLite accepts only an empty host or localhost
        host, _, rest = location[2:].partition("/")
        if host not in ("", "localhost"):
            return None
        location = "/" + rest
    location = unquote(location)
    if location in ("", ":memory:"):
        return None
    return Path(location)


def sqlite_read_only(url: URL) -> bool:
    """Whether a SQLite URL opens its file read-only itself (SQLite URI ``mode=ro`` or ``immutable=1``)."""
    if not (url.database or "").startswith("file:"):
        return False
    parameters = _uri_parameters(url)
    return parameters.get("mode") == "ro" or parameters.get("immutable") == "1"


def read_only_sqlite_url(path: Path, parameters: dict[str, str] | None = None) -> URL:
    """A URL opening the SQLite file ``path`` read-only: ``mode=ro``, plus ``immutable=1`` when it must.

    SQLite reads a WAL-mode database read-only only when its ``-wal`` and
    ``-shm`` files exist, or can be created beside it, or the database is
    declared immutable (SQLite's "WAL" documentation, on read-only
    databases). So: where either file exists (a writer has the catalog open,
    as in a serving container reading a mount another process writes) or the
    directory is writable, ``mode=ro`` reads with the normal locking and sees
    each new commit. Only when neither file exists *and* the directory
    cannot be written (a registry shipped on read-only media) is the file
    opened with ``immutable=1``. That is safe because a WAL writer keeps a
    ``-shm`` beside the database while it has it open, so none is writing it
    now, and none can start through this read-only path. It is not safe if a
    writer starts later through another, writable path to the same file:
    an immutable reader takes no locks and may read a half-checkpointed
    file. Such a setup should keep a writer connected (so the ``-shm``
    exists), or reopen the registry after changes.
    """
    absolute = path.absolute()
    given = dict(parameters or {})
    sidecars = any(Path(f"{absolute}{suffix}").exists() for suffix in ("-wal", "-shm"))
    if given.get("immutable") != "1" and not sidecars and not os.access(absolute.parent, os.W_OK):
        given["immutable"] = "1"
    given["mode"] = "ro"
    query = "&".join(f"{quote(key)}={quote(value)}" for key, value in sorted(given.items()))
    return URL.create("sqlite", database=f"file:{quote(str(absolute), safe='/')}?{query}", query={"uri": "true"})


def _configure_sqlite(engine: Engine, in_memory: bool, read_only: bool = False) -> None:
    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        dbapi_connection.isolation_level = None  # we emit BEGIN ourselves
        cursor = dbapi_connection.cursor()
        try:
            cursor.execute(f"PRAGMA busy_timeout = {int(LOCK_TIMEOUT * 1000)}")
            cursor.execute("PRAGMA foreign_keys = ON")
            if not in_memory and not read_only:  # switching the journal mode is a write
                _set_wal(cursor)
            cursor.execute("PRAGMA synchronous = FULL")
        finally:
            cursor.close()

    @event.listens_for(engine, "begin")
    def _on_begin(connection: Connection) -> None:
        # On the driver's cursor: through exec_driver_sql, BEGIN cost SQLAlchemy 20-30 µs more than SQLite's 2,
        # a fifth of a whole lookup (see registry.catalog.prepared).
        run_on_driver(
            connection, "BEGIN IMMEDIATE" if connection.get_execution_options().get(_WRITE_OPTION) else "BEGIN"
        )


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


#: An engine option: this engine's catalog was opened read-only, so every write transaction is refused.
_READ_ONLY_OPTION = "modelshelf_read_only"
#: The URL form naming the driver that each server's extra installs (a URL naming none gets SQLAlchemy's default).
_EXTRA_DRIVERS = {"postgresql": "postgresql+psycopg", "mysql": "mysql+pymysql", "mariadb": "mariadb+pymysql"}


def make_engine(url: URL, *, read_only: bool = False) -> Engine:
    """An engine for the catalog at ``url``, configured for safe concurrent use.

    With ``read_only`` (implied by a SQLite ``mode=ro`` or ``immutable=1``
    URI) a SQLite file is opened through :func:`read_only_sqlite_url`, the
    journal mode is left alone, a server session is made read-only, and
    :func:`write_transaction` refuses to start: nothing can be written.
    """
    options: dict[str, Any] = {"json_serializer": dumps}
    backend = url.get_backend_name()
    read_only = read_only or sqlite_read_only(url)
    path = sqlite_path(url)
    if backend == "sqlite":
        options["connect_args"] = {"timeout": LOCK_TIMEOUT, "check_same_thread": False}
        if read_only and path is not None:  # the user's own mode=ro URI too: it may need immutable=1
            url = read_only_sqlite_url(path, _uri_parameters(url) if (url.database or "").startswith("file:") else None)
    else:
        options["pool_pre_ping"] = True
        # Each statement sees what committed before it: the version counter and blob rows are
        # read right after being locked, and must show other clients' committed work.
        options["isolation_level"] = "READ COMMITTED"
    if read_only:
        options["execution_options"] = {_READ_ONLY_OPTION: True}
    try:
        engine = create_engine(url, **options)
    except ImportError as exc:
        extra = DRIVER_EXTRAS.get(backend)
        hint = f"pip install 'modelshelf[{extra}]'" if extra else "install the database driver the URL names"
        named = _EXTRA_DRIVERS.get(backend)
        if named is not None and url.drivername != named:
            wanted = getattr(exc, "name", None) or "its driver"
            use = f"write {named}:// to use the driver `{hint}` installs"
            if "+" not in url.drivername:
                hint = f"the URL names no driver, so SQLAlchemy picks {wanted}; {use}"
            else:
                hint = f"{use}, or install {wanted}"
        raise CatalogError(
            f"the catalog URL {url.render_as_string(hide_password=True)!r} needs a driver that is not "
            f"installed ({exc}); {hint}"
        ) from exc
    except Exception as exc:  # a bad option in the URL
        raise CatalogError(f"cannot use the catalog URL {url.render_as_string(hide_password=True)!r}: {exc}") from exc
    if backend == "sqlite":
        _configure_sqlite(engine, in_memory=path is None, read_only=read_only)
    else:
        _configure_server(engine, read_only=read_only)
    _engines.add(engine)
    return engine


def is_read_only(engine: Engine) -> bool:
    """Whether ``engine`` was made read-only by :func:`make_engine`."""
    return bool(engine.get_execution_options().get(_READ_ONLY_OPTION))


def _configure_server(engine: Engine, read_only: bool = False) -> None:
    """Give every new server connection the lock wait timeout SQLite gets from its busy timeout.

    A read-only engine's sessions are read-only on the server too, a second
    guard behind :func:`write_transaction`'s refusal.
    """
    statements = []
    if engine.dialect.name == "postgresql":
        statements.append(f"SET lock_timeout = '{int(LOCK_TIMEOUT * 1000)}ms'")
        if read_only:
            statements.append("SET default_transaction_read_only = on")
    else:  # MySQL and MariaDB: whole seconds
        statements.append(f"SET SESSION innodb_lock_wait_timeout = {max(1, int(LOCK_TIMEOUT))}")
        # They sort text by its first 1,024 bytes unless told otherwise, while a page cursor compares whole
        # values: long tag values that differ later were skipped. 32 KiB holds the longest tag (5,000
        # characters) and fits the default sort buffer; a longer setting ran out of sort memory. A params
        # string (unbounded) equal over its first 32 KiB still sorts as equal there.
        statements.append("SET SESSION max_sort_length = 32768")
        if read_only:
            statements.append("SET SESSION TRANSACTION READ ONLY")

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_connection: Any, _record: Any) -> None:
        cursor = dbapi_connection.cursor()
        try:
            for statement in statements:
                cursor.execute(statement)
        finally:
            cursor.close()
        dbapi_connection.commit()  # a session setting, kept; the commit ends the driver's implicit transaction


#: What each driver reports for "a lock wait timed out" and "the server broke a deadlock", by error code:
#: SQLite's primary result codes BUSY and LOCKED, PostgreSQL's SQLSTATEs, MySQL's and MariaDB's error numbers.
_LOCK_TIMEOUT_CODES: dict[str, set[int | str]] = {"sqlite": {5, 6}, "postgresql": {"55P03"}, "mysql": {1205}}
_DEADLOCK_CODES: dict[str, set[int | str]] = {"postgresql": {"40P01"}, "mysql": {1213}}


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


class ConnectionLost(CatalogError):
    """The connection died before the transaction asked to commit: the server rolled it back; safe to rerun."""


def _is_disconnect(engine: Engine, exc: DBAPIError) -> bool:
    if exc.connection_invalidated:
        return True
    try:
        # the DBAPI error class belongs to whichever driver is loaded: no static type names it
        return bool(engine.dialect.is_disconnect(cast(Any, exc.orig), None, None))
    except Exception:  # a dialect that needs the connection to tell
        return False


def _failure(engine: Engine, exc: DBAPIError, *, committing: bool = False) -> CatalogError:
    if _is_disconnect(engine, exc):
        if committing:
            return CommitOutcomeUnknown(
                f"the connection to the catalog {_describe(engine)} was lost while the change was committing, "
                "so it may or may not have been recorded; it was not retried, as that could record it twice: "
                "look before repeating it (e.g. `modelshelf versions NAME`, `modelshelf history NAME`)"
            )
        return ConnectionLost(
            f"the connection to the catalog {_describe(engine)} was lost before the change committed "
            f"({str(exc.orig).strip()}), so nothing was recorded: check that the server is up and reachable, then retry"
        )
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
    if is_read_only(engine):
        raise ReadOnlyRegistry(
            f"the catalog {sqlite_path(engine.url) or _describe(engine)} was opened read-only, so nothing can be "
            "changed in it; to write, open the registry without read_only=True (--read-only) and without "
            "mode=ro or immutable=1 in its URL",
            operation="write",
        )
    committing = False
    xid: int | None = None
    try:
        with engine.connect() as connection:
            connection = connection.execution_options(**{_WRITE_OPTION: True})
            with connection.begin():
                if engine.dialect.name == "postgresql":  # to learn a lost COMMIT's outcome (see below)
                    xid = connection.exec_driver_sql("SELECT txid_current()").scalar()
                yield connection
                committing = True  # the body is done; what fails from here on is the COMMIT itself
    except IntegrityError:
        raise
    except DBAPIError as exc:
        if committing and xid is not None and _is_disconnect(engine, exc):
            outcome = _outcome_of(engine, xid)
            if outcome == "committed":
                return  # it was recorded: the caller's result stands
            if outcome == "aborted":
                raise _failure(engine, exc) from exc  # rolled back, as if lost before the commit: rerun
        raise _failure(engine, exc, committing=committing) from exc


def _outcome_of(engine: Engine, xid: int) -> str | None:
    """PostgreSQL's word on a transaction whose COMMIT lost its connection: committed, aborted, or ``None``.

    ``txid_status`` exists for exactly this; the answer is asked on a new
    connection, a few times while the old backend may still be finishing.
    ``None`` when the server cannot say (unreachable, or still in progress).
    """
    for attempt in range(RETRIES + 1):
        try:
            with engine.connect() as connection:
                status = connection.exec_driver_sql(f"SELECT txid_status({int(xid)})").scalar()
        except DBAPIError:
            status = None
        if status in ("committed", "aborted"):
            return str(status)
        time.sleep(RETRY_BACKOFF * 2**attempt)
    return None


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


@contextmanager
def one_statement(engine: Engine) -> Iterator[Connection]:
    """A connection for a read that is exactly one statement, which then needs no transaction of its own.

    A single statement sees one consistent state on every engine. So no
    ``BEGIN`` is sent on SQLite (the driver runs the statement on its own)
    and PostgreSQL's connection is put in autocommit (a setting psycopg keeps
    on the client), which saves the ``BEGIN`` and ``ROLLBACK`` round trips.
    MySQL/MariaDB's driver would spend a round trip on each autocommit
    switch, so there the statement runs as usual and the pool ends it.
    """
    try:
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                connection = connection.execution_options(isolation_level="AUTOCOMMIT")
            yield connection
    except DBAPIError as exc:
        raise _failure(engine, exc) from exc


_P = ParamSpec("_P")
_T = TypeVar("_T")


def retried(method: Callable[_P, _T]) -> Callable[_P, _T]:
    """Run ``method`` (one whole catalog transaction) again when its connection was lost before commit.

    Only :class:`ConnectionLost` is retried: the server rolled that
    transaction back, and everything the method does is inside it (a
    version's number is allocated in it, a registered blob was published
    before it), so a rerun records each change once. After :data:`RETRIES`
    reruns the last error is raised. Use it on methods whose body is exactly
    one ``write_transaction`` or ``read_transaction``, with no other effect
    that a rerun would repeat.
    """

    @functools.wraps(method)
    def run(*args: _P.args, **kwargs: _P.kwargs) -> _T:
        for attempt in range(RETRIES + 1):
            try:
                return method(*args, **kwargs)
            except ConnectionLost as exc:
                if attempt == RETRIES:
                    raise ConnectionLost(f"{exc} (tried {RETRIES + 1} times)") from exc.__cause__
                log.info("lost the catalog connection in %s; retry %d of %d", method.__name__, attempt + 1, RETRIES)
                time.sleep(RETRY_BACKOFF * 2**attempt)
        raise AssertionError("unreachable")

    return run
