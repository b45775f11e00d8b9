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

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from registry.catalog.engine import write_transaction
from registry.catalog.reads import MODEL_ID_QUERY, CatalogReads
from registry.catalog.schema import AliasRow, BlobRow, LatestMetricRow, MetricRow, ModelRow, TagRow, VersionRow
from registry.catalog.sql import insert_ignore, upsert
from registry.domain import CHECKSUM_PREFIX, MetricPoint, ModelVersion, Ref
from registry.errors import AliasNotFound

_MODELS = ModelRow.__table__
_VERSIONS = VersionRow.__table__
_BLOBS = BlobRow.__table__
_TAGS = TagRow.__table__
_METRICS = MetricRow.__table__
_LATEST = LatestMetricRow.__table__
_ALIASES = AliasRow.__table__


# Built once and reused with bound parameters (see reads.py for why).
_BUMP_COUNTER = (
    update(_MODELS).where(_MODELS.c.id == bindparam("model_id")).values(last_version=_MODELS.c.last_version + 1)
)
_COUNTER = select(_MODELS.c.last_version).where(_MODELS.c.id == bindparam("model_id"))
_LOCK_BLOB = select(_BLOBS.c.digest).where(_BLOBS.c.digest == bindparam("digest")).with_for_update()
_INSERT_VERSION = insert(_VERSIONS)
_INSERT_TAGS = insert(_TAGS)
_INSERT_METRICS = insert(_METRICS)


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
    #: A full metric history to record instead of ``metrics`` (an imported version keeps its own).
    history: tuple[MetricPoint, ...] | None = None


class Catalog(CatalogReads):
    """Model metadata in a SQL database: the queries plus every write; safe to share between threads."""

    # -- writes ------------------------------------------------------------

    def _ensure_model(self, connection: Connection, name: str, now: datetime) -> int:
        model_id = connection.execute(MODEL_ID_QUERY, {"name": name}).scalar()
        if model_id is None:
            insert_ignore(connection, _MODELS, [{"name": name, "last_version": 0, "created_at": now}], ["name"])
            model_id = self._model_id(connection, name)
        return model_id

    def _lock_blob(self, connection: Connection, digest: str) -> None:
        # A row lock on server databases; SQLite already holds the database write lock.
        connection.execute(_LOCK_BLOB, {"digest": digest})

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
        self._record_history(connection, version_id, [MetricPoint(0, k, v, step, now) for k, v in metrics.items()])

    def _record_history(self, connection: Connection, version_id: int, points: list[MetricPoint]) -> None:
        """Append metric values in the order given; the last value of each key becomes its latest."""
        if not points:
            return
        connection.execute(
            _INSERT_METRICS,
            [
                {"version_id": version_id, "key": p.key, "value": p.value, "step": p.step, "timestamp": p.timestamp}
                for p in points
            ],
        )
        latest = {point.key: point.value for point in points}
        upsert(
            connection,
            _LATEST,
            [{"version_id": version_id, "key": key, "value": value} for key, value in latest.items()],
            keys=["version_id", "key"],
            updates=["value"],
        )

    def add_version(
        self,
        new: NewVersion,
        publish: Callable[[], None],
        sign: Callable[[NewVersion, int], str | None] = lambda new, version: None,
    ) -> ModelVersion:
        """Allocate the next version of ``new.name`` and record it, in one transaction.

        ``publish`` is called inside the transaction, after the blob's row is
        locked and before the version row is written: if it raises, nothing
        is recorded. ``sign(new, version)`` gives the signature to store, once
        the version number is known.
        """
        return self.add_versions([(new, publish)], sign)[0]

    def add_versions(
        self,
        batch: list[tuple[NewVersion, Callable[[], None]]],
        sign: Callable[[NewVersion, int], str | None] = lambda new, version: None,
    ) -> list[ModelVersion]:
        """Record several versions in one transaction: all of them, or none (see :meth:`add_version`)."""
        with write_transaction(self.engine) as connection:
            now = utcnow()  # taken once the write lock is held, so time follows version order
            return [self._add(connection, new, publish, sign, now) for new, publish in batch]

    def _add(
        self,
        connection: Connection,
        new: NewVersion,
        publish: Callable[[], None],
        sign: Callable[[NewVersion, int], str | None],
        now: datetime,
    ) -> ModelVersion:
        model_id = self._ensure_model(connection, new.name, now)
        connection.execute(_BUMP_COUNTER, {"model_id": model_id})
        version = connection.execute(_COUNTER, {"model_id": model_id}).scalar_one()
        signature = sign(new, version)
        insert_ignore(connection, _BLOBS, [{"digest": new.digest, "size": new.size, "created_at": now}], ["digest"])
        self._lock_blob(connection, new.digest)
        publish()
        version_id = connection.execute(
            _INSERT_VERSION,
            {
                "model_id": model_id,
                "version": version,
                "blob_digest": new.digest,
                "size": new.size,
                "format": new.format,
                "params": new.params,
                "environment": new.environment,
                "description": new.description,
                "created_at": now,
                "deleted_at": None,
                "imports": None if new.imports is None else list(new.imports),
                "signature": signature,
            },
        ).inserted_primary_key[0]
        if new.tags:
            connection.execute(
                _INSERT_TAGS, [{"version_id": version_id, "key": k, "value": v} for k, v in new.tags.items()]
            )
        if new.history is None:
            self._record_metrics(connection, version_id, new.metrics, None, now)
        else:
            self._record_history(connection, version_id, list(new.history))
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
            metrics=dict(new.metrics) if new.history is None else {p.key: p.value for p in new.history},
            tags=dict(new.tags),
            description=new.description,
            environment=new.environment,
            aliases=(new.alias,) if new.alias else (),
            imports=new.imports,
            signature=signature,
        )

    def set_alias(self, name: str, alias: str, version: int) -> ModelVersion:
        """Point ``alias`` at a live version (atomically moving it if set); return that version."""
        with write_transaction(self.engine) as connection:
            now = utcnow()
            row = self._find(connection, Ref(name, version=version))
            model_id = self._model_id(connection, name)
            self._point_alias(connection, model_id, alias, row.id, now)
            return self._to_model_version(row, self._details(connection, version_id=row.id))

    def delete_alias(self, name: str, alias: str) -> None:
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            result = connection.execute(
                delete(_ALIASES).where(_ALIASES.c.model_id == model_id, _ALIASES.c.alias == alias)
            )
            if result.rowcount == 0:
                raise AliasNotFound(name, alias)

    def log_metrics(self, name: str, version: int, metrics: dict[str, float], step: int | None) -> None:
        with write_transaction(self.engine) as connection:
            now = utcnow()
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

    def set_tags(self, name: str, version: int, tags: dict[str, str], remove: tuple[str, ...]) -> ModelVersion:
        """Set (overwrite) ``tags`` and remove the ``remove`` keys of one live version; return it."""
        with write_transaction(self.engine) as connection:
            row = self._find(connection, Ref(name, version=version))
            if remove:
                connection.execute(delete(_TAGS).where(_TAGS.c.version_id == row.id, _TAGS.c.key.in_(remove)))
            if tags:
                upsert(
                    connection,
                    _TAGS,
                    [{"version_id": row.id, "key": key, "value": value} for key, value in tags.items()],
                    keys=["version_id", "key"],
                    updates=["value"],
                )
            return self._to_model_version(row, self._details(connection, version_id=row.id))
