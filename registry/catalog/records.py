"""A version row, as every reader gets it, turned into a :class:`~registry.domain.ModelVersion`.

The columns are those of :data:`registry.catalog.version_rows.VERSION_COLUMNS`,
by name; the row may come from SQLAlchemy or from the SQLite reader of
:mod:`registry.catalog.lite`, so nothing here imports SQLAlchemy.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

from registry.digests import checksum_of
from registry.domain import InputSignature, Lineage, ModelVersion
from registry.errors import CatalogError

__all__ = ["to_model_version"]


def to_model_version(
    row: Any,
    metrics: Mapping[str, float],
    tags: Mapping[str, str],
    aliases: Sequence[str],
) -> ModelVersion:
    """The version a row of :data:`VERSION_COLUMNS` describes, with its latest metrics, tags and aliases."""
    try:
        input_signature = InputSignature.from_json(row.input_signature)
    except (TypeError, ValueError) as exc:  # only an edit of the catalog outside modelshelf makes such a row
        raise CatalogError(
            f"the catalog row of {row.name}:{row.version} holds an input signature modelshelf never writes ({exc}): "
            "the catalog was edited outside modelshelf; restore it from a backup"
        ) from None
    return ModelVersion(
        name=row.name,
        version=row.version,
        checksum=checksum_of(row.blob_digest),
        size=row.size,
        format=row.format,
        created_at=row.created_at,
        params=row.params,
        metrics=dict(metrics),
        tags=dict(tags),
        description=row.description,
        environment=row.environment,
        aliases=tuple(sorted(aliases)),
        imports=None if row.imports is None else tuple(row.imports),
        imports_scanned=bool(row.imports_scanned),
        hmac=row.signature,
        lineage=_lineage(row),
        input_signature=input_signature,
        blake3=row.blake3,
    )


def _lineage(row: Any) -> Lineage | None:
    """The lineage columns of a version row, or ``None`` for versions registered before lineage was recorded."""
    if row.lineage_id is None:
        return None
    return Lineage(
        git_commit=row.git_commit,
        git_dirty=row.git_dirty,
        script=row.script,
        user=row.user_name,
        host=row.host,
        modelshelf_version=row.modelshelf_version,
        data=None if row.data_digest is None else checksum_of(row.data_digest),
        data_shape=None if row.data_shape is None else tuple(row.data_shape),
        data_columns=None if row.data_columns is None else tuple(row.data_columns),
        parent=None if row.parent_name is None else f"{row.parent_name}:{row.parent_version}",
    )
