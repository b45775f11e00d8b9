"""The catalog of models and versions: SQLAlchemy tables, queries and Alembic migrations.

This package is the only one that imports SQLAlchemy or Alembic.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from registry.catalog import migrate
from registry.catalog.audit import Actor
from registry.catalog.catalog import Catalog
from registry.catalog.engine import make_engine, parse_url, sqlite_path
from registry.catalog.migrate import HEAD_REVISION, ensure_schema, read_revision
from registry.catalog.version_rows import NewVersion
from registry.errors import CatalogError

__all__ = [
    "HEAD_REVISION",
    "Actor",
    "Catalog",
    "NewVersion",
    "open_catalog",
    "parse_url",
    "is_known_revision",
    "schema_revisions",
    "upgrade_catalog",
]


def describe_url(url: URL) -> str:
    """The URL as it may be shown to people: the password hidden."""
    return url.render_as_string(hide_password=True)


def open_catalog(url: str | URL | Path, *, upgrade: bool = False) -> Catalog:
    """Open the catalog at ``url``, creating the schema of an empty database.

    A SQLite file's directory is created if missing. Raises
    :class:`~registry.errors.SchemaVersionError` when the schema is older
    (and ``upgrade`` is false) or newer than this code.
    """
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(
                f"cannot create the directory of the catalog {path}: {exc.strerror or exc}; choose a writable location"
            ) from exc
    engine = make_engine(parsed)
    location = str(path) if path is not None else describe_url(parsed)
    try:
        ensure_schema(engine, location, upgrade=upgrade)
    except BaseException:
        engine.dispose()
        raise
    return Catalog(engine, location)


def is_known_revision(revision: str) -> bool:
    """Whether this code's migrations know ``revision`` (an unknown one comes from a newer modelshelf)."""
    return revision in migrate._known_revisions()


def schema_revisions(url: str | URL | Path) -> tuple[str | None, str]:
    """The catalog's schema revision (``None`` if it has none yet) and the code's head revision."""
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    if path is not None and not path.exists():
        return None, migrate.HEAD_REVISION
    engine = make_engine(parsed)
    try:
        return read_revision(engine, str(path) if path is not None else describe_url(parsed)), migrate.HEAD_REVISION
    finally:
        engine.dispose()


def upgrade_catalog(url: str | URL | Path) -> tuple[str | None, str]:
    """Create or upgrade the catalog at ``url`` to the head revision; return (before, after)."""
    before, head = schema_revisions(url)
    open_catalog(url, upgrade=True).close()
    return before, head
