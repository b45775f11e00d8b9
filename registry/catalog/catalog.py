"""The catalog: every read and write of model metadata, each in one transaction.

Version numbers are allocated inside the transaction that inserts the
version, never by reading ``max(version)`` first:

* the model's counter is bumped with ``UPDATE models SET last_version =
  last_version + 1`` and then read back in the same transaction;
* on SQLite the transaction began with ``BEGIN IMMEDIATE``, so it holds the
  database write lock from its first statement and no other writer can
  interleave;
* on PostgreSQL and MySQL/MariaDB the ``UPDATE`` takes a row lock on the
  model that other writers of the same model wait on until commit, after
  which they read the incremented counter;
* ``UNIQUE(model_id, version)`` is the safety net should anything else go wrong.

Freeing a blob and publishing one happen under a lock on the blob's row
(see :mod:`registry.catalog.schema`), through callbacks, so this module never
touches files itself and the store never touches the database.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, Row, Select, delete, func, insert, select, update

from registry.catalog.engine import read_transaction, write_transaction
from registry.catalog.migrate import schema_differences
from registry.catalog.schema import (
    AliasRow,
    BlobRow,
    LatestMetricRow,
    MetricRow,
    ModelRow,
    TagRow,
    VersionRow,
)
from registry.catalog.sql import insert_ignore, upsert
from registry.domain import CHECKSUM_PREFIX, MetricPoint, ModelVersion, Ref
from registry.errors import AliasNotFound, ModelNotFound, VersionNotFound

_MODELS = ModelRow.__table__
_VERSIONS = VersionRow.__table__
_BLOBS = BlobRow.__table__
_TAGS = TagRow.__table__
_METRICS = MetricRow.__table__
_LATEST = LatestMetricRow.__table__
_ALIASES = AliasRow.__table__

_VERSION_COLUMNS = (
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
    VersionRow.signature,
)


def utcnow() -> datetime:
    return datetime.now(UTC)


@dataclass(frozen=True)
class NewVersion:
    """Everything the catalog records for a version about to be inserted (validated by the caller)."""

    name: str
    digest: str
    size: int
    format: str
    params: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, float] = field(default_factory=dict)
    tags: dict[str, str] = field(default_factory=dict)
    description: str | None = None
    environment: dict[str, Any] = field(default_factory=dict)
    alias: str | None = None
    imports: tuple[str, ...] | None = None


@dataclass
class _Details:
    tags: dict[int, dict[str, str]] = field(default_factory=dict)
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    aliases: dict[int, list[str]] = field(default_factory=dict)


class Catalog:
    """Model metadata in a SQL database; one instance per engine, safe to share between threads."""

    def __init__(self, engine: Engine, location: str) -> None:
        self.engine = engine
        self.location = location

    def close(self) -> None:
        self.engine.dispose()

    # -- lookups -----------------------------------------------------------

    def _model_id(self, connection: Connection, name: str) -> int:
        model_id = connection.execute(select(ModelRow.id).where(ModelRow.name == name)).scalar()
        if model_id is None:
            raise ModelNotFound(name)
        return model_id

    def _find(self, connection: Connection, ref: Ref) -> Row[Any]:
        """The live version row ``ref`` designates, or the precise not-found error."""
        query = select(*_VERSION_COLUMNS).join(ModelRow, ModelRow.id == VersionRow.model_id)
        query = query.where(ModelRow.name == ref.name)
        if ref.version is not None:
            query = query.where(VersionRow.version == ref.version)
        elif ref.alias is not None:
            query = query.join(
                AliasRow, (AliasRow.version_id == VersionRow.id) & (AliasRow.model_id == ModelRow.id)
            ).where(AliasRow.alias == ref.alias)
        else:
            query = query.where(VersionRow.deleted_at.is_(None)).order_by(VersionRow.version.desc()).limit(1)
        row = connection.execute(query).first()
        if row is not None and row.deleted_at is None:
            return row
        self._model_id(connection, ref.name)  # raises ModelNotFound first, if that is the case
        if row is not None:
            raise VersionNotFound(ref.name, ref.version, f"deleted on {row.deleted_at:%Y-%m-%d %H:%M} UTC")
        if ref.alias is not None:
            raise AliasNotFound(ref.name, ref.alias)
        if ref.version is not None:
            raise VersionNotFound(ref.name, ref.version)
        raise VersionNotFound(ref.name, None, "every version was deleted")

    def _details(self, connection: Connection, version_ids: Select[Any] | int) -> _Details:
        def restrict(query: Select[Any], column: Any) -> Select[Any]:
            if isinstance(version_ids, int):
                return query.where(column == version_ids)
            return query.where(column.in_(version_ids))

        details = _Details()
        for version_id, key, value in connection.execute(
            restrict(select(TagRow.version_id, TagRow.key, TagRow.value), TagRow.version_id)
        ):
            details.tags.setdefault(version_id, {})[key] = value
        for version_id, key, value in connection.execute(
            restrict(
                select(LatestMetricRow.version_id, LatestMetricRow.key, LatestMetricRow.value),
                LatestMetricRow.version_id,
            )
        ):
            details.metrics.setdefault(version_id, {})[key] = value
        for version_id, alias in connection.execute(
            restrict(select(AliasRow.version_id, AliasRow.alias), AliasRow.version_id)
        ):
            details.aliases.setdefault(version_id, []).append(alias)
        return details

    @staticmethod
    def _to_model_version(row: Row[Any], details: _Details) -> ModelVersion:
        return ModelVersion(
            name=row.name,
            version=row.version,
            checksum=CHECKSUM_PREFIX + row.blob_digest,
            size=row.size,
            format=row.format,
            created_at=row.created_at,
            params=row.params,
            metrics=details.metrics.get(row.id, {}),
            tags=details.tags.get(row.id, {}),
            description=row.description,
            environment=row.environment,
            aliases=tuple(sorted(details.aliases.get(row.id, ()))),
            imports=None if row.imports is None else tuple(row.imports),
            signature=row.signature,
        )

    def get(self, ref: Ref) -> ModelVersion:
        """The live version ``ref`` designates (latest when it names no version or alias)."""
        with read_transaction(self.engine) as connection:
            row = self._find(connection, ref)
            return self._to_model_version(row, self._details(connection, row.id))

    def versions(self, name: str) -> list[ModelVersion]:
        """Every live version of ``name``, ascending; ``ModelNotFound`` if it was never registered."""
        with read_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            live = (VersionRow.model_id == model_id) & VersionRow.deleted_at.is_(None)
            rows = connection.execute(
                select(*_VERSION_COLUMNS)
                .join(ModelRow, ModelRow.id == VersionRow.model_id)
                .where(live)
                .order_by(VersionRow.version)
            ).all()
            details = self._details(connection, select(VersionRow.id).where(live))
            return [self._to_model_version(row, details) for row in rows]

    def models(self) -> list[str]:
        """The names of all models with at least one live version, sorted."""
        with read_transaction(self.engine) as connection:
            query = (
                select(ModelRow.name)
                .where(
                    select(VersionRow.id)
                    .where((VersionRow.model_id == ModelRow.id) & VersionRow.deleted_at.is_(None))
                    .exists()
                )
                .order_by(ModelRow.name)
            )
            return list(connection.execute(query).scalars())

    def metrics_history(self, name: str, metric: str | None = None) -> list[MetricPoint]:
        """Every logged value of live versions, ordered by version, step (unset first), time."""
        with read_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            query = (
                select(VersionRow.version, MetricRow.key, MetricRow.value, MetricRow.step, MetricRow.timestamp)
                .join(VersionRow, VersionRow.id == MetricRow.version_id)
                .where(VersionRow.model_id == model_id, VersionRow.deleted_at.is_(None))
                .order_by(
                    VersionRow.version,
                    MetricRow.step.is_(None).desc(),
                    MetricRow.step,
                    MetricRow.timestamp,
                    MetricRow.id,
                )
            )
            if metric is not None:
                query = query.where(MetricRow.key == metric)
            return [MetricPoint(*row) for row in connection.execute(query)]

    # -- writes ------------------------------------------------------------

    def _ensure_model(self, connection: Connection, name: str, now: datetime) -> int:
        model_id = connection.execute(select(ModelRow.id).where(ModelRow.name == name)).scalar()
        if model_id is None:
            insert_ignore(connection, _MODELS, [{"name": name, "last_version": 0, "created_at": now}], ["name"])
            model_id = self._model_id(connection, name)
        return model_id

    def _lock_blob(self, connection: Connection, digest: str) -> None:
        # A row lock on server databases; SQLite already holds the database write lock.
        connection.execute(select(BlobRow.digest).where(BlobRow.digest == digest).with_for_update())

    def _point_alias(self, connection: Connection, model_id: int, alias: str, version_id: int, now: datetime) -> None:
        upsert(
            connection,
            _ALIASES,
            [{"model_id": model_id, "alias": alias, "version_id": version_id, "updated_at": now}],
            keys=["model_id", "alias"],
            updates=["version_id", "updated_at"],
        )

    def _record_metrics(
        self, connection: Connection, version_id: int, metrics: dict[str, float], step: int | None, now: datetime
    ) -> None:
        if not metrics:
            return
        connection.execute(
            insert(_METRICS),
            [
                {"version_id": version_id, "key": key, "value": value, "step": step, "timestamp": now}
                for key, value in metrics.items()
            ],
        )
        upsert(
            connection,
            _LATEST,
            [{"version_id": version_id, "key": key, "value": value} for key, value in metrics.items()],
            keys=["version_id", "key"],
            updates=["value"],
        )

    def add_version(
        self,
        new: NewVersion,
        publish: Callable[[], None],
        sign: Callable[[int], str | None] = lambda version: None,
    ) -> ModelVersion:
        """Allocate the next version of ``new.name`` and record it, in one transaction.

        ``publish`` is called inside the transaction, after the blob's row is
        locked and before the version row is written: if it raises, nothing
        is recorded. ``sign(version)`` gives the signature to store, once the
        version number is known.
        """
        now = utcnow()
        with write_transaction(self.engine) as connection:
            model_id = self._ensure_model(connection, new.name, now)
            connection.execute(
                update(_MODELS).where(_MODELS.c.id == model_id).values(last_version=_MODELS.c.last_version + 1)
            )
            version = connection.execute(select(ModelRow.last_version).where(ModelRow.id == model_id)).scalar_one()
            signature = sign(version)
            insert_ignore(connection, _BLOBS, [{"digest": new.digest, "size": new.size, "created_at": now}], ["digest"])
            self._lock_blob(connection, new.digest)
            publish()
            version_id = connection.execute(
                insert(_VERSIONS).values(
                    model_id=model_id,
                    version=version,
                    blob_digest=new.digest,
                    size=new.size,
                    format=new.format,
                    params=new.params,
                    environment=new.environment,
                    description=new.description,
                    created_at=now,
                    imports=None if new.imports is None else list(new.imports),
                    signature=signature,
                )
            ).inserted_primary_key[0]
            if new.tags:
                connection.execute(
                    insert(_TAGS), [{"version_id": version_id, "key": k, "value": v} for k, v in new.tags.items()]
                )
            self._record_metrics(connection, version_id, new.metrics, None, now)
            if new.alias is not None:
                self._point_alias(connection, model_id, new.alias, version_id, now)
        return ModelVersion(
            name=new.name,
            version=version,
            checksum=CHECKSUM_PREFIX + new.digest,
            size=new.size,
            format=new.format,
            created_at=now,
            params=new.params,
            metrics=dict(new.metrics),
            tags=dict(new.tags),
            description=new.description,
            environment=new.environment,
            aliases=(new.alias,) if new.alias else (),
            imports=new.imports,
            signature=signature,
        )

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at a live version (atomically moving it if set); return that version."""
        now = utcnow()
        with write_transaction(self.engine) as connection:
            row = self._find(connection, Ref(name, version=version))
            model_id = self._model_id(connection, name)
            self._point_alias(connection, model_id, alias, row.id, now)
            return self._to_model_version(row, self._details(connection, row.id))

    def delete_alias(self, name: str, alias: str) -> None:
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            result = connection.execute(
                delete(_ALIASES).where(_ALIASES.c.model_id == model_id, _ALIASES.c.alias == alias)
            )
            if result.rowcount == 0:
                raise AliasNotFound(name, alias)

    def log_metrics(self, name: str, version: int, metrics: dict[str, float], step: int | None) -> None:
        now = utcnow()
        with write_transaction(self.engine) as connection:
            row = self._find(connection, Ref(name, version=version))
            self._record_metrics(connection, row.id, metrics, step, now)

    def delete_version(self, name: str, version: int) -> tuple[str, int]:
        """Mark a version deleted and drop its aliases; return its blob's digest and size."""
        with write_transaction(self.engine) as connection:
            row = self._find(connection, Ref(name, version=version))
            connection.execute(update(_VERSIONS).where(_VERSIONS.c.id == row.id).values(deleted_at=utcnow()))
            connection.execute(delete(_ALIASES).where(_ALIASES.c.version_id == row.id))
            return row.blob_digest, row.size

    def free_blob_if_unreferenced(self, digest: str, size: int, delete_blob: Callable[[str], bool]) -> bool:
        """Call ``delete_blob(digest)`` if no live version uses the blob, under the blob's lock.

        Returns what ``delete_blob`` returned, or ``False`` if the blob is in
        use. Run it after the transaction that dropped the last reference
        committed: a crash in between leaves an unreferenced blob, which is
        only wasted space, never a dangling row. The blob's row is created if
        missing (a blob published by a transaction that then failed has
        none), so there is always a row to lock against concurrent writers.
        """
        with write_transaction(self.engine) as connection:
            insert_ignore(connection, _BLOBS, [{"digest": digest, "size": size, "created_at": utcnow()}], ["digest"])
            self._lock_blob(connection, digest)
            live = connection.execute(
                select(func.count())
                .select_from(_VERSIONS)
                .where(_VERSIONS.c.blob_digest == digest, _VERSIONS.c.deleted_at.is_(None))
            ).scalar_one()
            return False if live else delete_blob(digest)

    def live_blobs(self) -> list[tuple[str, str, int]]:
        """``(ref, digest, size)`` of every live version, by name and version."""
        with read_transaction(self.engine) as connection:
            rows = connection.execute(
                select(ModelRow.name, VersionRow.version, VersionRow.blob_digest, VersionRow.size)
                .join(ModelRow, ModelRow.id == VersionRow.model_id)
                .where(VersionRow.deleted_at.is_(None))
                .order_by(ModelRow.name, VersionRow.version)
            )
            return [(f"{name}:{version}", digest, size) for name, version, digest, size in rows]

    def schema_problems(self, deep: bool) -> list[str]:
        """Differences between the catalog's tables and the schema this code expects (and, deep, corruption)."""
        with read_transaction(self.engine) as connection:
            return schema_differences(connection, deep=deep)
