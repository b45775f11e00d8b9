"""Damage marks: which blobs ``repair`` found damaged or missing, and the writes that set and clear them.

A mark lives on the blob's row (``blobs.damaged_at``/``damage``), not on
each version: versions sharing bytes share their fate, and the same digest
coming back heals them all at once.

* Marking and healing by ``repair`` take the locks every writer takes, in
  the same order (the models of the versions concerned, sorted by name, then
  the blob's row) and append one ``version.damage`` or ``version.heal``
  event per live version, so the audit trail tells of it and, with a key,
  each model is resealed like after any change (the sealed state does not
  cover the marks, so a mark neither breaks nor needs a seal).
* A registration or import of the same bytes clears the mark in its own
  transaction, right after it published them (:data:`CLEAR_MARK`); its
  ``register`` event, which names the checksum, is the trail's record.
* Loads never query the marks: a load asks only after the blob read failed,
  to word its error (see ``Registry.load``).
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, Engine, bindparam, select, update

from registry.catalog.engine import read_transaction, retried, write_transaction
from registry.catalog.schema import BlobRow, ModelRow, VersionRow, table_of
from registry.digests import checksum_of

_BLOBS = table_of(BlobRow)

#: Clear the mark of the blob ``blob`` (a no-op for a blob that has none).
CLEAR_MARK = (
    update(_BLOBS)
    .where(_BLOBS.c.digest == bindparam("blob"), _BLOBS.c.damaged_at.is_not(None))
    .values(damaged_at=None, damage=None)
)
_SET_MARK = (
    update(_BLOBS)
    .where(_BLOBS.c.digest == bindparam("blob"))
    .values(damaged_at=bindparam("at"), damage=bindparam("what"))
)
_MARK_OF = select(_BLOBS.c.damage).where(_BLOBS.c.digest == bindparam("digest"), _BLOBS.c.damaged_at.is_not(None))
_MARKED = (
    select(_BLOBS.c.digest, _BLOBS.c.size, _BLOBS.c.damaged_at, _BLOBS.c.damage)
    .where(_BLOBS.c.damaged_at.is_not(None))
    .order_by(_BLOBS.c.digest)
)
_USERS = (
    select(ModelRow.name, VersionRow.version)
    .join(ModelRow, ModelRow.id == VersionRow.model_id)
    .where(VersionRow.blob_digest == bindparam("digest"), VersionRow.deleted_at.is_(None))
    .order_by(ModelRow.name, VersionRow.version)
)


def mark_of(connection: Connection, digest: str) -> str | None:
    """What ``repair`` found wrong with ``digest``, or ``None`` if it is not marked."""
    return connection.execute(_MARK_OF, {"digest": digest}).scalar()


def marked(connection: Connection) -> list[tuple[str, int, datetime, str]]:
    """``(digest, size, marked at, damage)`` of every marked blob, by digest."""
    return [(row.digest, row.size, row.damaged_at, row.damage or "") for row in connection.execute(_MARKED)]


def users(connection: Connection, digest: str) -> list[tuple[str, int]]:
    """``(model, version)`` of every live version whose bytes are ``digest``, by name and version."""
    return [(name, version) for name, version in connection.execute(_USERS, {"digest": digest})]


def set_mark(connection: Connection, digest: str, damage: str, at: datetime) -> None:
    connection.execute(_SET_MARK, {"blob": digest, "what": damage, "at": at})


def clear_mark(connection: Connection, digest: str) -> None:
    connection.execute(CLEAR_MARK, {"blob": digest})


def model_names(versions: Iterable[tuple[str, int]]) -> list[str]:
    """The models of ``versions`` in the order every writer locks them."""
    return sorted({name for name, _ in versions})


class DamageMarks:
    """The marks' reads and ``repair``'s writes, mixed into :class:`~registry.catalog.Catalog`.

    It uses the catalog's own locking and event helpers (``_lock_model``,
    ``_guard``, ``_claim_blob``, ``_events``, ``_finish``), so a mark is
    written exactly as any other change is.
    """

    engine: Engine

    @retried
    def damaged_blobs(self) -> list[tuple[str, int, datetime, str]]:
        """``(digest, size, marked at, damage)`` of every blob marked damaged, by digest."""
        with read_transaction(self.engine) as connection:
            return marked(connection)

    @retried
    def damage_of(self, digest: str) -> str | None:
        """What ``repair`` found wrong with the blob, or ``None`` when it is not marked."""
        with read_transaction(self.engine) as connection:
            return mark_of(connection, digest)

    def mark_damaged(self, digest: str, size: int, damage: str) -> list[str]:
        """Mark the blob damaged, with a ``version.damage`` event per live version using it; return their refs."""
        return self._change_mark(digest, size, "version.damage", damage, lambda: None)

    def heal(self, digest: str, size: int, publish: Callable[[], None]) -> list[str]:
        """Call ``publish`` (the verified bytes back in place) and clear the mark, with ``version.heal`` events.

        Both happen under the blob's lock, as a registration publishes: if
        ``publish`` raises, the mark stays and nothing is recorded.
        """
        return self._change_mark(digest, size, "version.heal", None, publish)

    @retried
    def _change_mark(
        self, digest: str, size: int, action: str, damage: str | None, publish: Callable[[], None]
    ) -> list[str]:
        catalog: Any = self  # the methods below are the Catalog's
        with write_transaction(self.engine) as connection:
            names = model_names(users(connection, digest))
            for name in names:  # models first, in name order, then the blob: the order every writer follows
                catalog._lock_model(connection, catalog._model_id(connection, name))
                catalog._guard(connection, name)
            now = datetime.now(UTC)
            catalog._claim_blob(connection, digest, size, now)
            publish()
            if damage is None:
                clear_mark(connection, digest)
            else:
                set_mark(connection, digest, damage, now)
            events = catalog._events()
            concerned = [(name, version) for name, version in users(connection, digest) if name in names]
            for name, version in concerned:
                new: dict[str, Any] = {"checksum": checksum_of(digest)}
                if damage is not None:
                    new["damage"] = damage
                events.add(action, name, version, at=now, new=new)
            catalog._finish(connection, events)
            return [f"{name}:{version}" for name, version in concerned]
