"""The SQLite reader of a load: one statement through ``sqlite3``, and no SQLAlchemy imported to run it.

A process that starts, opens a registry and loads a version pays for every
module it imports: SQLAlchemy alone costs about a tenth of ``python`` +
scikit-learn + joblib here, and its execution path around a lookup (connect,
``BEGIN``, the compiled cache, a ``Result``, ``ROLLBACK``) about 90 µs, more
than a small model's ``joblib.load``. So for a SQLite catalog file, opened
without a signing key (whose seal checks need the full catalog),
:meth:`LiteReader.open` checks the schema revision and :meth:`version_to_load`
finds the version a reference names with one ``SELECT``, a snapshot of its
own (no ``BEGIN``). Everything else — writes, searches, a keyed registry, a
reference that finds nothing (whose error the full catalog words) — goes to
:class:`~registry.catalog.catalog.Catalog`, opened on first use.

It reads as the full catalog reads: the connection is opened as the engine
opens one (its busy timeout; ``mode=ro``, and ``immutable=1`` where
:func:`~registry.catalog.engine.read_only_sqlite_url` would use it, for a
read-only registry); the statements are the text SQLAlchemy compiles for
the lookups of :mod:`registry.catalog.reads` on SQLite, and each column is
decoded as SQLAlchemy's types decode it there (JSON text, UTC times stored
naive, booleans as integers). Tests compare both with SQLAlchemy's, and the
versions found with ``get``'s. After ``fork`` a child opens its own
connection; threads share one, in turn.
"""

from __future__ import annotations

import json
import os
import sqlite3
import threading
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any
from urllib.parse import quote

from registry.catalog import revision as revisions
from registry.catalog.records import to_model_version
from registry.domain import ModelVersion, Ref
from registry.errors import CatalogError

__all__ = ["BUSY_TIMEOUT", "LiteReader"]

#: Seconds a statement waits for a lock, as :data:`registry.catalog.engine.LOCK_TIMEOUT` (a test keeps them equal).
BUSY_TIMEOUT = 60.0


def _json(value: Any) -> Any:
    return None if value is None else json.loads(value)


def _time(value: Any) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value).replace(tzinfo=UTC)


def _bool(value: Any) -> bool | None:
    return None if value is None else bool(value)


#: The columns of :data:`registry.catalog.version_rows.VERSION_COLUMNS`, each with how SQLite's value is decoded.
_COLUMNS: tuple[tuple[str, str, Callable[[Any], Any] | None], ...] = (
    ("versions.id", "id", None),
    ("models.name", "name", None),
    ("versions.version", "version", None),
    ("versions.blob_digest", "blob_digest", None),
    ("versions.size", "size", None),
    ("versions.format", "format", None),
    ("versions.params AS params", "params", _json),
    ("versions.environment AS environment", "environment", _json),
    ("versions.description", "description", None),
    ("versions.created_at AS created_at", "created_at", _time),
    ("versions.deleted_at AS deleted_at", "deleted_at", _time),
    ("versions.imports AS imports", "imports", _json),
    ("versions.imports_scanned", "imports_scanned", _bool),
    ("versions.signature", "signature", None),
    ("versions.input_signature AS input_signature", "input_signature", _json),
    ("versions.blake3", "blake3", None),
    ("lineage.version_id AS lineage_id", "lineage_id", None),
    ("lineage.git_commit", "git_commit", None),
    ("lineage.git_dirty", "git_dirty", _bool),
    ("lineage.script", "script", None),
    ("lineage.user_name", "user_name", None),
    ("lineage.host", "host", None),
    ("lineage.modelshelf_version", "modelshelf_version", None),
    ("lineage.data_digest", "data_digest", None),
    ("lineage.data_shape AS data_shape", "data_shape", _json),
    ("lineage.data_columns AS data_columns", "data_columns", _json),
    ("parent_model.name AS parent_name", "parent_name", None),
    ("parent_version.version AS parent_version", "parent_version", None),
)
_FROM = (
    "SELECT " + ", ".join(column for column, _, _ in _COLUMNS) + " \n"
    "FROM versions JOIN models ON models.id = versions.model_id "
    "LEFT OUTER JOIN lineage ON lineage.version_id = versions.id "
    "LEFT OUTER JOIN versions AS parent_version ON parent_version.id = lineage.parent_id "
    "LEFT OUTER JOIN models AS parent_model ON parent_model.id = parent_version.model_id "
)
#: The lookup of each kind of reference; the parameters are (name, version), (name, alias), (name, 1, 0).
SQL = {
    "pinned": _FROM + "\nWHERE models.name = ? AND versions.version = ?",
    "alias": _FROM + "JOIN aliases ON aliases.version_id = versions.id AND aliases.model_id = models.id "
    "\nWHERE models.name = ? AND aliases.alias = ?",
    "latest": _FROM + "\nWHERE models.name = ? AND versions.deleted_at IS NULL ORDER BY versions.version DESC\n"
    " LIMIT ? OFFSET ?",
}


def _uri(path: Path, read_only: bool) -> str:
    """The ``file:`` URI the engine would open ``path`` with (as ``engine.read_only_sqlite_url`` builds it)."""
    absolute = path.absolute()
    parameters = {"mode": "rw"}  # never "rwc": a file deleted meanwhile must not come back empty
    if read_only:
        sidecars = any(Path(f"{absolute}{suffix}").exists() for suffix in ("-wal", "-shm"))
        if not sidecars and not os.access(absolute.parent, os.W_OK):
            parameters["immutable"] = "1"
        parameters["mode"] = "ro"
    query = "&".join(f"{key}={value}" for key, value in sorted(parameters.items()))
    return f"file:{quote(str(absolute), safe='/')}?{query}"


class LiteReader:
    """Reads versions to load from a SQLite catalog at :data:`HEAD_REVISION`; see the module docstring."""

    def __init__(self, path: Path, *, read_only: bool) -> None:
        self.path = path
        self.location = str(path)
        self._uri = _uri(path, read_only)
        self._lock = threading.Lock()
        self._connection: sqlite3.Connection | None = None
        self._pid = 0

    @classmethod
    def open(cls, path: Path, *, read_only: bool) -> LiteReader | None:
        """A reader of the catalog file ``path``, or ``None`` when the full catalog must open it.

        ``None`` for a missing file (to be created, or reported missing), a
        database that is not a modelshelf catalog, one at another schema
        revision (to be migrated, or refused with the error saying so), or
        one that cannot be read (the full catalog words the error).
        """
        if not path.is_file():
            return None
        reader = cls(path, read_only=read_only)
        try:
            rows = reader._fetch("SELECT version_num FROM alembic_version", (), all_rows=True)
        except (sqlite3.Error, CatalogError):
            reader.close()
            return None
        if rows != [(revisions.HEAD_REVISION,)]:
            reader.close()
            return None
        return reader

    def _connect(self) -> sqlite3.Connection:
        if self._connection is None or self._pid != os.getpid():
            # A connection inherited across fork() is not used, nor closed (that could disturb the parent's).
            self._connection = sqlite3.connect(
                self._uri, uri=True, timeout=BUSY_TIMEOUT, isolation_level=None, check_same_thread=False
            )
            self._pid = os.getpid()
        return self._connection

    def _fetch(self, sql: str, parameters: tuple[Any, ...], *, all_rows: bool = False) -> Any:
        with self._lock:
            cursor = self._connect().execute(sql, parameters)
            try:
                return cursor.fetchall() if all_rows else cursor.fetchone()
            finally:
                cursor.close()

    def version_to_load(self, ref: Ref) -> ModelVersion | None:
        """The live version ``ref`` designates, tags, metrics and aliases left empty; ``None`` if there is none."""
        parameters: tuple[Any, ...]
        if ref.version is not None:
            sql, parameters = SQL["pinned"], (ref.name, ref.version)
        elif ref.alias is not None:
            sql, parameters = SQL["alias"], (ref.name, ref.alias)
        else:
            sql, parameters = SQL["latest"], (ref.name, 1, 0)
        try:
            row = self._fetch(sql, parameters)
        except sqlite3.Error as exc:
            raise CatalogError(
                f"the catalog {self.location} failed: {exc}; check that it is reachable, writable and "
                "not damaged (`modelshelf verify`)"
            ) from exc
        if row is None:
            return None
        try:
            fields = {
                key: value if decode is None else decode(value)
                for (_, key, decode), value in zip(_COLUMNS, row, strict=True)
            }
        except ValueError as exc:
            raise CatalogError(
                f"the catalog row of {ref.name} holds a value modelshelf never writes ({exc}): the catalog was "
                "edited outside modelshelf; restore it from a backup"
            ) from None
        if fields["deleted_at"] is not None:
            return None
        return to_model_version(SimpleNamespace(**fields), {}, {}, ())

    def close(self) -> None:
        """Close the connection (a reader may be used again: it reconnects)."""
        with self._lock:
            if self._connection is not None and self._pid == os.getpid():
                self._connection.close()
            self._connection = None
