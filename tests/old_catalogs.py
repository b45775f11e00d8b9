"""Catalogs and blobs as an earlier modelshelf left them, for the upgrade tests."""

from __future__ import annotations

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
