"""Schema versions: check a catalog cheaply, create or upgrade it with Alembic.

The migration scripts ship inside the package as ``registry._migrations``
(mapped from the top-level ``migrations/`` directory by the build), so an
installed wheel can create and upgrade catalogs with no source checkout.
The library builds the Alembic configuration in code and hands Alembic its
own connection; it never reads ``alembic.ini``, which is for developers
writing new revisions.

Opening a catalog costs one query (``SELECT version_num FROM
alembic_version``) compared with :data:`HEAD_REVISION`, which is read from
the scripts' ``revision``/``down_revision`` lines when this module is
imported (a few small files, no Alembic import), so adding a migration is
adding its script. Alembic itself only loads the scripts when that check
fails. A test asserts the value matches Alembic's single head.
"""

from __future__ import annotations

import hashlib
import logging
import shlex
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy import Connection, Engine, inspect, text
from sqlalchemy.exc import DatabaseError, DBAPIError

from registry.catalog import revision as revisions
from registry.catalog.engine import write_transaction
from registry.catalog.revision import head_revision, migrations_dir
from registry.errors import CatalogError, SchemaVersionError

if TYPE_CHECKING:
    from alembic.config import Config

UPGRADE_HINT = "modelshelf db upgrade"
#: An arbitrary constant naming PostgreSQL's advisory lock for migrations.
MIGRATION_LOCK_KEY = 0x6D6F64656C73
#: How long a client waits for another client's migration of the same catalog, in seconds.
MIGRATION_WAIT = 300

#: Re-exported from :mod:`registry.catalog.revision`, where they moved so that opening needs no SQLAlchemy.
__all__ = ["head_revision", "migrations_dir"]


def __getattr__(name: str) -> str:
    """``migrate.HEAD_REVISION``: :data:`registry.catalog.revision.HEAD_REVISION`, read when asked (set it there)."""
    if name == "HEAD_REVISION":
        return revisions.HEAD_REVISION
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


logger = logging.getLogger(__name__)


def alembic_config(connection: Connection | None = None) -> Config:
    """An Alembic ``Config`` for the packaged migrations, bound to ``connection``."""
    from alembic.config import Config

    config = Config()
    config.set_main_option("script_location", str(migrations_dir()))
    config.attributes["connection"] = connection
    config.attributes["modelshelf_library"] = True
    return config


def current_revision(connection: Connection) -> str | None:
    """The catalog's schema revision, or ``None`` when it has no modelshelf schema at all."""
    if not inspect(connection).has_table("alembic_version"):
        return None
    rows = connection.execute(text("SELECT version_num FROM alembic_version")).scalars().all()
    if len(rows) > 1:
        raise SchemaVersionError(
            f"the catalog records several schema revisions {rows}; it was migrated by hand into a "
            "branched state: fix alembic_version"
        )
    return rows[0] if rows else None


def _known_revisions() -> set[str]:
    from alembic.script import ScriptDirectory

    script = ScriptDirectory.from_config(alembic_config())
    return {revision.revision for revision in script.walk_revisions()}


def _has_foreign_tables(connection: Connection) -> bool:
    return bool(set(inspect(connection).get_table_names()) - {"alembic_version"})


def has_foreign_tables(engine: Engine) -> bool:
    """Whether the database holds tables other than Alembic's (read in a transaction of its own)."""
    with engine.connect() as connection:
        try:
            return _has_foreign_tables(connection)
        finally:
            connection.rollback()


def _upgrade(connection: Connection) -> None:
    from alembic import command

    command.upgrade(alembic_config(connection), revisions.HEAD_REVISION)


@contextmanager
def _migration_transaction(engine: Engine, location: str) -> Iterator[Connection]:
    """A write transaction that no other client's migration overlaps, up to and including its commit.

    SQLite's ``BEGIN IMMEDIATE`` already excludes other writers. On
    PostgreSQL, where DDL is transactional, an advisory lock scoped to the
    transaction is released by the commit itself. MySQL and MariaDB commit
    each DDL statement implicitly, but Alembic's last update of
    ``alembic_version`` stays open until the final commit: a lock released
    before that commit would let a waiting client read the previous revision
    and run the last migration a second time. So there the lock is a session
    lock held by a second connection and given up only after the commit.
    """
    if engine.dialect.name in ("mysql", "mariadb"):
        with _session_lock(engine, location), write_transaction(engine) as connection:
            yield connection
        return
    with write_transaction(engine) as connection:
        if engine.dialect.name == "postgresql":
            connection.execute(text("SELECT pg_advisory_xact_lock(:key)"), {"key": MIGRATION_LOCK_KEY})
        yield connection


@contextmanager
def _session_lock(engine: Engine, location: str) -> Iterator[None]:
    """MySQL's named lock for migrations, held by its own connection while the caller migrates."""
    try:
        holder = engine.connect()
    except DBAPIError as exc:
        raise _lock_failure(location, exc) from exc
    with holder:
        try:
            name = migration_lock_name(_database_of(holder))
            acquired = holder.execute(_GET_LOCK, {"name": name, "seconds": MIGRATION_WAIT}).scalar()
        except DBAPIError as exc:
            raise _lock_failure(location, exc) from exc
        if acquired is None:
            raise CatalogError(f"the server refused the migration lock of the catalog {location}: retry")
        if acquired != 1:
            raise CatalogError(
                f"another client has been migrating the catalog {location} for more than {MIGRATION_WAIT} s; "
                f"it may be stuck: find it (SELECT IS_USED_LOCK('{name}')), or retry later"
            )
        try:
            yield
        finally:
            try:  # the pool keeps the session open, and with it the lock, until it is released
                holder.execute(_RELEASE_LOCK, {"name": name})
            except DBAPIError:
                holder.invalidate()  # a lost session has dropped the lock already; the pool must not reuse it


def _lock_failure(location: str, exc: DBAPIError) -> CatalogError:
    return CatalogError(
        f"cannot take the migration lock of the catalog {location}: {exc.orig}; check that the server is reachable"
    )


def _database_of(connection: Connection) -> str:
    """The database the server says the connection uses: a URL may differ from it in case, or name none."""
    database, folds_case = connection.execute(_DATABASE).one()
    return (database or "").lower() if folds_case else (database or "")


def migration_lock_name(database: str) -> str:
    """The name of the MySQL lock for migrations of ``database``.

    Named locks are server-wide, unlike PostgreSQL's advisory locks: naming
    the database keeps catalogs on one server from waiting for each other.
    A digest keeps the name within MySQL's 64 characters.
    """
    return f"modelshelf_migrations_{hashlib.sha256(database.encode()).hexdigest()[:32]}"


_DATABASE = text("SELECT DATABASE(), @@lower_case_table_names <> 0")
_GET_LOCK = text("SELECT GET_LOCK(:name, :seconds)")
_RELEASE_LOCK = text("SELECT RELEASE_LOCK(:name)")


def upgrade_command(engine: Engine) -> str:
    """The shell command that upgrades this engine's catalog, ready to paste."""
    return f"{UPGRADE_HINT} --catalog {shlex.quote(engine.url.render_as_string(hide_password=True))}"


def describe(revision: str | None, location: str, engine: Engine) -> SchemaVersionError:
    """The error for a catalog whose schema is not :data:`HEAD_REVISION`."""
    if revision is not None and revision in _known_revisions():
        return SchemaVersionError(
            f"the catalog {location} has schema revision {revision}, older than this modelshelf "
            f"expects ({revisions.HEAD_REVISION}); upgrade it with `{upgrade_command(engine)}` "
            "or open it with Registry(..., upgrade=True) (back it up first)"
        )
    return SchemaVersionError(
        f"the catalog {location} has schema revision {revision}, which this modelshelf does not know: "
        "it was created by a newer modelshelf; upgrade modelshelf (pip install -U modelshelf)"
    )


def read_revision(engine: Engine, location: str) -> str | None:
    """The catalog's schema revision; :class:`CatalogError` if it is not a database at all."""
    try:
        with engine.connect() as connection:
            revision = current_revision(connection)
            connection.rollback()
            return revision
    except DatabaseError as exc:
        reason = str(exc.orig).strip()
        if engine.dialect.name != "sqlite":
            advice = "check that the database server is running and that the URL, user and password are right"
        elif "unable to open" in reason or "readonly" in reason or "read-only" in reason:
            advice = (
                "the file or its directory is not writable (SQLite in WAL mode needs to create "
                f"{location}-wal and -shm beside it): to only read it, open it read-only (`modelshelf --read-only …`, "
                "Registry(..., read_only=True)); to write, fix the permissions or copy the registry somewhere writable"
            )
        else:
            advice = (
                "it is not a modelshelf catalog (or it is damaged): restore it from a backup or point to another path"
            )
        raise CatalogError(f"cannot open the catalog {location}: {reason}; {advice}") from exc


def ensure_schema(engine: Engine, location: str, upgrade: bool) -> None:
    """Make sure the catalog is at :data:`HEAD_REVISION`.

    An empty database is created at once (that is what opening a new
    registry directory means). An older schema is upgraded only when
    ``upgrade`` is true; otherwise, and for a newer schema, a
    :class:`SchemaVersionError` says what to run.
    """
    revision = read_revision(engine, location)
    if revision == revisions.HEAD_REVISION:
        return
    if revision is not None and not upgrade:
        raise describe(revision, location, engine)
    with _migration_transaction(engine, location) as connection:
        revision = current_revision(connection)  # again, now that we hold the lock
        if revision == revisions.HEAD_REVISION:
            return
        if revision is None and _has_foreign_tables(connection):
            raise CatalogError(
                f"the database {location} holds tables but no modelshelf schema; "
                "point the catalog at an empty database or an existing modelshelf catalog"
            )
        if revision is not None and revision not in _known_revisions():
            raise describe(revision, location, engine)
        _upgrade(connection)
        logger.info("migrated the catalog %s from %s to %s", location, revision or "empty", revisions.HEAD_REVISION)


def schema_differences(connection: Connection, deep: bool = False) -> list[str]:
    """What ``alembic check`` would report for this catalog, one line per difference.

    A table, column or index dropped or altered by hand shows up here; with
    ``deep`` a SQLite file is also checked for corruption (``PRAGMA quick_check``).
    """
    from alembic.autogenerate import compare_metadata
    from alembic.runtime.migration import MigrationContext

    from registry.catalog.schema import Base, compare_exact_types

    problems = []
    revision = current_revision(connection)
    if revision != revisions.HEAD_REVISION:
        problems.append(f"schema revision is {revision}, this modelshelf expects {revisions.HEAD_REVISION}")
    context = MigrationContext.configure(connection, opts={"compare_type": compare_exact_types})
    problems.extend(
        f"catalog differs from the expected schema: {diff}" for diff in compare_metadata(context, Base.metadata)
    )
    if deep and connection.dialect.name == "sqlite":
        result = [row[0] for row in connection.exec_driver_sql("PRAGMA quick_check")]
        if result != ["ok"]:
            problems.extend(f"SQLite integrity check: {line}" for line in result)
    return problems
