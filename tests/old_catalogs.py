"""Catalogs and blobs as an earlier modelshelf left them, for the upgrade tests."""

from __future__ import annotations

import sqlite3
from pathlib import Path

from alembic import command
from sqlalchemy import create_engine

from registry.catalog import migrate


def old_catalog(home: Path, revision: str) -> None:
    """A SQLite catalog in ``home`` created by the migrations up to ``revision``, as that code made it."""
    home.mkdir(parents=True, exist_ok=True)
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), revision)
    engine.dispose()


def write_blob(root: Path, obj: object) -> tuple[str, bytes]:
    """Pickle ``obj`` into the local store layout under ``root`` (as an older modelshelf did); (digest, bytes)."""
    import hashlib
    import pickle

    data = pickle.dumps(obj)
    digest = hashlib.sha256(data).hexdigest()
    blob = root / "blobs" / "sha256" / digest[:2] / digest[2:]
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    return digest, data


#: The time the legacy rows below say they were written.
LEGACY_TIME = "2026-01-01 00:00:00.000000"


def legacy_version(home: Path, obj: object, *, params: str = "{}", with_imports: bool) -> None:
    """Model ``legacy`` version 1 holding ``obj``, written by SQL as an older modelshelf wrote it.

    ``with_imports`` says whether that schema had the ``imports`` column yet.
    """
    digest, data = write_blob(home, obj)
    columns = "id, model_id, version, blob_digest, size, format, params, environment, created_at"
    values = "1, 1, 1, ?, ?, 'pickle', ?, '{}', ?"
    if with_imports:
        columns, values = f"{columns}, imports", f"{values}, '[]'"
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("INSERT INTO models (id, name, last_version, created_at) VALUES (1, 'legacy', 1, ?)", (LEGACY_TIME,))
        db.execute("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)", (digest, len(data), LEGACY_TIME))
        db.execute(f"INSERT INTO versions ({columns}) VALUES ({values})", (digest, len(data), params, LEGACY_TIME))
