"""The one mapping between a version and its catalog rows, both ways.

A version is written as one ``versions`` row (plus its ``lineage`` and ``canaries`` rows) and
read back through :data:`VERSION_COLUMNS`; both directions live here, next
to each other, so a field added to :class:`~registry.domain.ModelVersion`
and :class:`~registry.domain.Draft` is mapped in this module and nowhere
else (tags, metrics and aliases have their own tables and queries).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from types import SimpleNamespace
from typing import Any

from registry.catalog.records import to_model_version
from registry.catalog.schema import AnyRow, CanaryRow, LineageRow, ModelRow, VersionRow
from registry.catalog.search import PARENT, PARENT_MODEL
from registry.digests import digest_of
from registry.domain import Canary, Draft, Lineage, ModelVersion
from registry.errors import CatalogError


@dataclass(frozen=True, kw_only=True)
class NewVersion(Draft):
    """Everything the catalog records for a version about to be inserted: a draft and its blob's address.

    The draft's fields were validated by the caller (:mod:`registry.drafting`).
    """

    #: The blob's SHA-256 in hex (no ``sha256:`` prefix).
    digest: str
    size: int


#: What every read of a version selects: its row, its model's name, its lineage and its parent's reference.
VERSION_COLUMNS = (
    VersionRow.id,
    ModelRow.name,
    VersionRow.version,
    VersionRow.blob_digest,
    VersionRow.size,
    VersionRow.format,
    VersionRow.params,
    VersionRow.environment,
    VersionRow.description,
    VersionRow.created_at,
    VersionRow.deleted_at,
    VersionRow.imports,
    VersionRow.imports_scanned,
    VersionRow.signature,
    VersionRow.input_signature,
    LineageRow.version_id.label("lineage_id"),
    LineageRow.git_commit,
    LineageRow.git_dirty,
    LineageRow.script,
    LineageRow.user_name,
    LineageRow.host,
    LineageRow.modelshelf_version,
    LineageRow.data_digest,
    LineageRow.data_shape,
    LineageRow.data_columns,
    PARENT_MODEL.name.label("parent_name"),
    PARENT.version.label("parent_version"),
)


def version_row(new: NewVersion, model_id: int, version: int, created_at: datetime, hmac: str | None) -> dict[str, Any]:
    """The ``versions`` row that records ``new`` as ``version`` of the model ``model_id``."""
    return {
        "model_id": model_id,
        "version": version,
        "blob_digest": new.digest,
        "size": new.size,
        "format": new.format,
        "params": new.params,
        "environment": new.environment,
        "description": new.description,
        "created_at": created_at,
        "deleted_at": None,
        "imports": None if new.imports is None else list(new.imports),
        "imports_scanned": new.imports is not None,
        "signature": hmac,  # the column keeps its old name
        "input_signature": None if new.input_signature is None else new.input_signature.to_json(),
    }


def lineage_row(version_id: int, lineage: Lineage, parent_id: int | None) -> dict[str, Any]:
    """The ``lineage`` row of the version ``version_id`` (its parent given by row id)."""
    return {
        "version_id": version_id,
        "git_commit": lineage.git_commit,
        "git_dirty": lineage.git_dirty,
        "script": lineage.script,
        "user_name": lineage.user,
        "host": lineage.host,
        "modelshelf_version": lineage.modelshelf_version,
        "data_digest": None if lineage.data is None else digest_of(lineage.data),
        "data_shape": None if lineage.data_shape is None else list(lineage.data_shape),
        "data_columns": None if lineage.data_columns is None else list(lineage.data_columns),
        "parent_id": parent_id,
    }


#: What a read of one version's canary selects (read on demand: ``check`` and loads in another environment).
CANARY_COLUMNS = (CanaryRow.rows, CanaryRow.inputs, CanaryRow.outputs, CanaryRow.hmac)


def canary_row(version_id: int, canary: Canary, created_at: datetime) -> dict[str, Any]:
    """The ``canaries`` row of the version ``version_id``."""
    return {
        "version_id": version_id,
        "rows": canary.rows,
        "inputs": canary.inputs,
        "outputs": canary.outputs,
        "hmac": canary.hmac,
        "created_at": created_at,
    }


def to_canary(row: AnyRow, ref: str) -> Canary:
    """The canary a row of :data:`CANARY_COLUMNS` holds; ``CatalogError`` for a row modelshelf never writes."""
    if not isinstance(row.inputs, dict) or not isinstance(row.outputs, dict) or not isinstance(row.rows, int):
        raise CatalogError(
            f"the canary row of {ref} is not what modelshelf writes: the catalog was edited outside modelshelf; "
            "restore it from a backup"
        )
    return Canary(inputs=row.inputs, outputs=row.outputs, rows=row.rows, hmac=row.hmac)


def recorded_version(
    new: NewVersion,
    *,
    version_id: int,
    version: int,
    created_at: datetime,
    hmac: str | None,
    parent: tuple[str, int] | None,
) -> ModelVersion:
    """The version just written for ``new``, described by the same mapping a read of its rows goes through.

    The rows are assembled from what was written, not queried back: the
    writer holds the model's lock, and a read under it is two round trips
    per version for facts it already has.
    """
    row: dict[str, Any] = {"id": version_id, "name": new.name, **version_row(new, 0, version, created_at, hmac)}
    row["lineage_id"] = None if new.lineage is None else version_id
    if new.lineage is not None:
        row.update(lineage_row(version_id, new.lineage, None))
    row["parent_name"], row["parent_version"] = parent if parent is not None else (None, None)
    metrics = dict(new.metrics) if new.history is None else {point.key: point.value for point in new.history}
    return to_model_version(SimpleNamespace(**row), metrics, new.tags, (new.alias,) if new.alias else ())
