"""The one mapping between a version and its catalog rows, both ways.

A version is written as one ``versions`` row (plus its ``lineage`` and ``canaries`` rows) and
read back through :data:`VERSION_COLUMNS`; both directions live here, next
to each other, so a field added to :class:`~registry.domain.ModelVersion`
and :class:`~registry.domain.Draft` is mapped in this module and nowhere
else (tags, metrics and aliases have their own tables and queries).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple

from sqlalchemy import Dialect

from registry.catalog.decoding import JsonTexts, is_immutable, plain_dataclass, raw, utc
from registry.catalog.schema import AnyRow, CanaryRow, LineageRow, ModelRow, VersionRow
from registry.catalog.search import PARENT, PARENT_MODEL
from registry.digests import CHECKSUM_PREFIX, digest_of
from registry.domain import Canary, Draft, InputSignature, Lineage, ModelVersion
from registry.errors import CatalogError


@dataclass(frozen=True, kw_only=True)
class NewVersion(Draft):
    """Everything the catalog records for a version about to be inserted: a draft and its blob's address.

    The draft's fields were validated by the caller (:mod:`registry.drafting`).
    """

    #: The blob's SHA-256 in hex (no ``sha256:`` prefix).
    digest: str
    size: int
    #: The blob's BLAKE3 in hex, the fast verification digest (``None`` when the store gave none).
    blake3: str | None = None


#: What every read of a version selects: its row, its model's name, its lineage and its parent's reference.
#: JSON and timestamp columns come raw (see :mod:`registry.catalog.decoding`): :class:`VersionReader` decodes them.
VERSION_COLUMNS = (
    VersionRow.id,
    ModelRow.name,
    VersionRow.version,
    VersionRow.blob_digest,
    VersionRow.size,
    VersionRow.format,
    raw(VersionRow.params),
    raw(VersionRow.environment),
    VersionRow.description,
    raw(VersionRow.created_at),
    raw(VersionRow.deleted_at),
    raw(VersionRow.imports),
    VersionRow.imports_scanned,
    VersionRow.signature,
    raw(VersionRow.input_signature),
    VersionRow.blake3,
    LineageRow.version_id.label("lineage_id"),
    LineageRow.git_commit,
    LineageRow.git_dirty,
    LineageRow.script,
    LineageRow.user_name,
    LineageRow.host,
    LineageRow.modelshelf_version,
    LineageRow.data_digest,
    raw(LineageRow.data_shape),
    raw(LineageRow.data_columns),
    PARENT_MODEL.name.label("parent_name"),
    PARENT.version.label("parent_version"),
)


class VersionTuple(NamedTuple):
    """A row of :data:`VERSION_COLUMNS` with its columns by name, as the lookups return it (from a driver's tuple).

    JSON and timestamp columns hold what the driver returned (text on SQLite).
    """

    id: int
    name: str
    version: int
    blob_digest: str
    size: int
    format: str
    params: Any
    environment: Any
    description: str | None
    created_at: Any
    deleted_at: Any
    imports: Any
    imports_scanned: Any
    signature: str | None
    input_signature: Any
    blake3: str | None
    lineage_id: int | None
    git_commit: str | None
    git_dirty: Any
    script: str | None
    user_name: str | None
    host: str | None
    modelshelf_version: str | None
    data_digest: str | None
    data_shape: Any
    data_columns: Any
    parent_name: str | None
    parent_version: int | None


#: The names of :data:`VERSION_COLUMNS`, in order: :class:`VersionReader` unpacks rows by position.
_COLUMN_NAMES = VersionTuple._fields
if tuple(column.key for column in VERSION_COLUMNS) != _COLUMN_NAMES:  # pragma: no cover - a wrong edit, at import
    raise AssertionError("VERSION_COLUMNS and VersionTuple list different columns: keep them in step")


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
        "blake3": new.blake3,
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
    values = tuple(row.get(name) for name in _COLUMN_NAMES)
    return VersionReader(None)(values, metrics, dict(new.tags), (new.alias,) if new.alias else ())


_VERSION = plain_dataclass(
    ModelVersion,
    (
        "name",
        "version",
        "checksum",
        "size",
        "format",
        "created_at",
        "params",
        "metrics",
        "tags",
        "description",
        "environment",
        "aliases",
        "imports",
        "hmac",
        "imports_scanned",
        "lineage",
        "input_signature",
        "blake3",
    ),
)
_LINEAGE = plain_dataclass(
    Lineage,
    (
        "git_commit",
        "git_dirty",
        "script",
        "user",
        "host",
        "modelshelf_version",
        "data",
        "data_shape",
        "data_columns",
        "parent",
    ),
)


def _shareable_signature(signature: InputSignature | None) -> bool:
    return signature is None or all(is_immutable(value) for value in vars(signature).values())


class VersionReader:
    """Builds the versions of one read from rows of :data:`VERSION_COLUMNS`, with the least Python per row.

    One reader serves one read (a lookup, a search), so the JSON every
    version of a model shares (its environment, its import list, its input
    signature) is parsed once; each version still gets its own dicts. The
    rows are unpacked by position and the versions built directly (see
    :mod:`registry.catalog.decoding`). ``dialect=None`` reads a row of
    values that are Python already (:func:`recorded_version`).
    """

    def __init__(self, dialect: Dialect | None) -> None:
        self._json = JsonTexts(dialect)

    def __call__(
        self, row: Sequence[Any], metrics: dict[str, float], tags: dict[str, str], aliases: Sequence[str]
    ) -> ModelVersion:
        """The version ``row`` describes, with its latest ``metrics``, ``tags`` and ``aliases``, which it keeps."""
        (
            _,
            name,
            version,
            blob_digest,
            size,
            format_,
            params,
            environment,
            description,
            created_at,
            _deleted_at,
            imports,
            imports_scanned,
            signature,
            input_signature,
            blake3,
            lineage_id,
            *lineage,
        ) = row
        json = self._json
        try:
            if input_signature is not None:
                input_signature = json.made(input_signature, InputSignature.from_json, _shareable_signature)
        except (TypeError, ValueError) as exc:  # only an edit of the catalog outside modelshelf makes such a row
            raise CatalogError(
                f"the catalog row of {name}:{version} holds an input signature modelshelf never writes ({exc}): "
                "the catalog was edited outside modelshelf; restore it from a backup"
            ) from None
        imports = json(imports)
        mv = _new(_VERSION)
        _set_fields(
            mv,
            "__dict__",
            {
                "name": name,
                "version": version,
                "checksum": CHECKSUM_PREFIX + blob_digest,
                "size": size,
                "format": format_,
                "created_at": utc(created_at),
                "params": json.once(params),
                "metrics": metrics,
                "tags": tags,
                "description": description,
                "environment": json(environment),
                "aliases": tuple(sorted(aliases)) if aliases else (),
                "imports": None if imports is None else tuple(imports),
                "hmac": signature,
                "imports_scanned": bool(imports_scanned),
                "lineage": None if lineage_id is None else self._lineage(lineage),
                "input_signature": input_signature,
                "blake3": blake3,
            },
        )
        return mv

    def _lineage(self, columns: Sequence[Any]) -> Lineage:
        """The lineage of a version registered since lineage was recorded."""
        git_commit, git_dirty, script, user, host, modelshelf_version, data, shape, names, parent, parent_version = (
            columns
        )
        shape, names = self._json.once(shape), self._json.once(names)
        lineage = _new(_LINEAGE)
        _set_fields(
            lineage,
            "__dict__",
            {
                "git_commit": git_commit,
                "git_dirty": None if git_dirty is None else bool(git_dirty),  # a driver's raw row holds 0 or 1
                "script": script,
                "user": user,
                "host": host,
                "modelshelf_version": modelshelf_version,
                "data": None if data is None else CHECKSUM_PREFIX + data,
                "data_shape": None if shape is None else tuple(shape),
                "data_columns": None if names is None else tuple(names),
                "parent": None if parent is None else f"{parent}:{parent_version}",
            },
        )
        return lineage


_new, _set_fields = object.__new__, object.__setattr__
