"""The import inventory as an index: one ``version_imports`` row per (version, global it imports).

``versions.imports`` keeps each version's inventory as the JSON list that
its signature covers; this table is the same list made searchable, so
"which versions import ``posix.system``?" is one indexed query over the
whole catalog, with no JSON scanning and no blob read.

A name longer than the indexed column (possible only in a hand-made pickle)
is indexed by its SHA-256 instead; :func:`index_name` maps the searched
names the same way, so such a name is still found, exactly.
"""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from typing import Any

from sqlalchemy import Select, bindparam, case, exists, select

from registry.catalog.schema import IMPORT_NAME_LENGTH, AliasRow, VersionImportRow, VersionRow
from registry.digests import checksum_of


def index_name(name: str) -> str:
    """The form of ``name`` that is stored and searched: itself, or its digest if too long for the column."""
    if len(name) <= IMPORT_NAME_LENGTH:
        return name
    return checksum_of(hashlib.sha256(name.encode("utf-8", "surrogatepass")).hexdigest())


def import_rows(version_id: int, imports: Iterable[str]) -> list[dict[str, Any]]:
    """The index rows of one version's inventory (each name once)."""
    return [{"version_id": version_id, "name": name} for name in sorted({index_name(n) for n in imports})]


def importing_query(base: Select[Any]) -> Select[Any]:
    """``base`` (live version rows) restricted to those importing any of ``:names``: aliased first, then by name.

    The ``IN`` over ``version_imports.name`` is answered by its index; the
    alias test is an ``EXISTS`` on the aliases' own index.
    """
    matching = select(VersionImportRow.version_id).where(VersionImportRow.name.in_(bindparam("names", expanding=True)))
    aliased = exists().where(AliasRow.version_id == VersionRow.id)
    return base.where(VersionRow.id.in_(matching)).order_by(case((aliased, 0), else_=1), *base_order(base))


def base_order(base: Select[Any]) -> list[Any]:
    """Name, then version: the order of every listing of versions."""
    columns = base.selected_columns
    return [columns.name, columns.version]
