"""The catalog of models and versions: SQLAlchemy tables, queries and Alembic migrations.

This package is the only one that imports SQLAlchemy or Alembic.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy.engine import URL

from registry.catalog.catalog import Catalog, NewVersion
from registry.catalog.engine import make_engine, parse_url, sqlite_path
from registry.catalog.migrate import HEAD_REVISION, ensure_schema

__all__ = ["HEAD_REVISION", "Catalog", "NewVersion", "open_catalog", "parse_url"]


def describe_url(url: URL) -> str:
    """The URL as it may be shown to people: the password hidden."""
    return url.render_as_string(hide_password=True)


def open_catalog(url: str | URL, *, upgrade: bool = False, create: bool = True) -> Catalog:
    """Open the catalog at ``url``, creating an empty one's schema (when ``create``).

    A SQLite file's directory is created if missing. Raises
    :class:`~registry.errors.SchemaVersionError` when the schema is older
    (and ``upgrade`` is false) or newer than this code.
    """
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    if path is not None:
        if not create and not path.exists():
            from registry.errors import CatalogError

            raise CatalogError(f"no catalog at {path}: the file does not exist")
        Path(path).parent.mkdir(parents=True, exist_ok=True)
    engine = make_engine(parsed)
    location = str(path) if path is not None else describe_url(parsed)
    try:
        ensure_schema(engine, location, upgrade=upgrade)
    except BaseException:
        engine.dispose()
        raise
    return Catalog(engine, location)
