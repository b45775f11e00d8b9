"""Opening a catalog: the SQLite file or server database, its schema checked (or created, or migrated).

:func:`open_catalog` is how every client gets a :class:`~registry.catalog.catalog.Catalog`;
the missing-registry messages and the revision helpers of the command line live beside it.
"""

from __future__ import annotations

from pathlib import Path

from sqlalchemy import Engine
from sqlalchemy.engine import URL

from registry.catalog import CATALOG_FILE_NAME, migrate
from registry.catalog import revision as revisions
from registry.catalog.catalog import Catalog
from registry.catalog.engine import is_read_only, make_engine, parse_url, sqlite_path, sqlite_read_only
from registry.catalog.migrate import ensure_schema, has_foreign_tables, read_revision
from registry.errors import CatalogError, RegistryNotFound

__all__ = [
    "describe_url",
    "is_known_revision",
    "missing_registry",
    "open_catalog",
    "schema_revisions",
    "upgrade_catalog",
]


def describe_url(url: URL) -> str:
    """The URL as it may be shown to people: the password hidden."""
    return url.render_as_string(hide_password=True)


def open_catalog(
    url: str | URL | Path, *, upgrade: bool = False, create: bool = True, read_only: bool = False
) -> Catalog:
    """Open the catalog at ``url``, creating the schema of an empty database unless told not to.

    With ``create`` a SQLite file's directory is created if missing, and an
    empty database gets the schema. With ``create=False`` (or ``read_only``,
    which never creates) nothing is created: a missing SQLite file, or a
    database with no modelshelf schema, raises
    :class:`~registry.errors.RegistryNotFound`. ``read_only`` (implied by a
    SQLite ``mode=ro``/``immutable=1`` URI) opens a catalog that refuses every
    write with :class:`~registry.errors.ReadOnlyRegistry`. Raises
    :class:`~registry.errors.SchemaVersionError` when the schema is older
    (and ``upgrade`` is false) or newer than this code.
    """
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    read_only = read_only or sqlite_read_only(parsed)
    create = create and not read_only
    if path is not None and not create:
        if not path.exists():
            raise RegistryNotFound(missing_registry(url, parsed, path), location=str(path.absolute()))
    elif path is not None:
        try:
            Path(path).parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise CatalogError(
                f"cannot create the directory of the catalog {path}: {exc.strerror or exc}; choose a writable location"
            ) from exc
    location = str(path) if path is not None else describe_url(parsed)
    if not create and not read_only and path is not None:
        # Look first through a read-only connection: the writable one switches the file to WAL on
        # connecting, which would write into a database that turns out not to be a registry.
        probe = make_engine(parsed, read_only=True)
        try:
            _require_schema(probe, location, url, parsed, upgrade=False, check_revision=False)
        finally:
            probe.dispose()
    engine = make_engine(parsed, read_only=read_only)
    try:
        if create:
            ensure_schema(engine, location, upgrade=upgrade)
        else:
            _require_schema(engine, location, url, parsed, upgrade=upgrade and not read_only)
    except BaseException:
        engine.dispose()
        raise
    return Catalog(engine, location)


def _require_schema(
    engine: Engine, location: str, url: str | URL | Path, parsed: URL, *, upgrade: bool, check_revision: bool = True
) -> None:
    """What :func:`ensure_schema` checks, with a missing schema a :class:`RegistryNotFound` instead of created."""
    revision = read_revision(engine, location)
    if revision is None:
        if has_foreign_tables(engine):
            raise CatalogError(
                f"the database {location} holds tables but no modelshelf schema; "
                "point the catalog at an existing modelshelf catalog"
            )
        raise RegistryNotFound(missing_registry(url, parsed, sqlite_path(parsed), empty=True), location=location)
    if revision == revisions.HEAD_REVISION or not check_revision:
        return
    if is_read_only(engine):
        raise migrate.describe(revision, location, engine)  # an upgrade would be a write
    ensure_schema(engine, location, upgrade=upgrade)


def missing_registry(url: str | URL | Path, parsed: URL, path: Path | None, *, empty: bool = False) -> str:
    """The message for a location with no registry: its absolute path, and how to make one there.

    A three-slash SQLite URL is relative to the current directory, which is
    easy to miss (``sqlite:///srv/models/catalog.db`` is ``./srv/…``): its
    message names the four-slash form of the absolute path too.
    """
    make = "create one by registering a model (`modelshelf register …`, Registry(path).register(…)) or check the path"
    if path is not None and empty:
        return f"no registry at {path.absolute()} (the file has no modelshelf schema); {make}"
    if path is None:
        return (
            f"no registry at {describe_url(parsed)} (the database has no modelshelf schema); create it with "
            f"`modelshelf db upgrade --catalog URL` or Registry(catalog=URL), or check the URL"
        )
    absolute = path.absolute()
    if isinstance(url, Path):
        where = absolute.parent if absolute.name == CATALOG_FILE_NAME else absolute
        what = f"no {absolute.name} there" if where != absolute else "no catalog file there"
        return f"no registry at {where} ({what}); {make}"
    text = url if isinstance(url, str) else url.render_as_string(hide_password=True)
    hint = ""
    database = parsed.database or ""
    relative = not path.is_absolute() and not database.startswith("file:")
    if relative and text.startswith("sqlite:///"):
        hint = (
            f"; note that {text[:200]!r} is relative to the current directory (three slashes): "
            f"for the absolute path /{path} write four, 'sqlite:////{path}'"
        )
    return f"no registry at {absolute} (the catalog file does not exist){hint}; {make}"


def is_known_revision(revision: str) -> bool:
    """Whether this code's migrations know ``revision`` (an unknown one comes from a newer modelshelf)."""
    return revision in migrate._known_revisions()


def schema_revisions(url: str | URL | Path) -> tuple[str | None, str]:
    """The catalog's schema revision (``None`` if it has none yet) and the code's head revision."""
    parsed = parse_url(url)
    path = sqlite_path(parsed)
    if path is not None and not path.exists():
        return None, revisions.HEAD_REVISION
    engine = make_engine(parsed, read_only=True)  # a look only: it works on a read-only mount too
    try:
        return read_revision(engine, str(path) if path is not None else describe_url(parsed)), revisions.HEAD_REVISION
    finally:
        engine.dispose()


def upgrade_catalog(url: str | URL | Path) -> tuple[str | None, str]:
    """Create or upgrade the catalog at ``url`` to the head revision; return (before, after)."""
    before, head = schema_revisions(url)
    open_catalog(url, upgrade=True).close()
    return before, head
