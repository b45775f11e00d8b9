"""The catalog of models and versions: SQLAlchemy tables, queries and Alembic migrations.

This package is the only one that imports SQLAlchemy or Alembic. Its names
are imported on first use (PEP 562): ``import registry.catalog.lite`` — the
SQLite reader a cold load uses — must not import SQLAlchemy, and
``from registry.catalog import Catalog`` imports what it names.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

#: The catalog file's name inside a registry directory (as :mod:`registry.locations` names it).
CATALOG_FILE_NAME = "catalog.db"

if TYPE_CHECKING:
    from registry.catalog.audit import Actor
    from registry.catalog.catalog import Catalog
    from registry.catalog.engine import parse_url
    from registry.catalog.opening import is_known_revision, open_catalog, schema_revisions, upgrade_catalog
    from registry.catalog.revision import HEAD_REVISION
    from registry.catalog.version_rows import NewVersion

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

_WHERE = {
    "HEAD_REVISION": "revision",
    "Actor": "audit",
    "Catalog": "catalog",
    "NewVersion": "version_rows",
    "open_catalog": "opening",
    "parse_url": "engine",
    "is_known_revision": "opening",
    "schema_revisions": "opening",
    "upgrade_catalog": "opening",
}


def __getattr__(name: str) -> Any:
    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'registry.catalog' has no attribute {name!r}")
    value = getattr(importlib.import_module(f"registry.catalog.{module}"), name)
    globals()[name] = value
    return value
