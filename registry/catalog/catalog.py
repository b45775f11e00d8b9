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

Every change also appends its audit events (:mod:`registry.catalog.audit`)
in the same transaction, so the trail records exactly what was committed,
and then reseals the model's state (:mod:`registry.catalog.sealing`): with
the signing key after checking that the state it changes is the sealed one,
without it by marking the state unsealed.

An alias move is decided in its own transaction (:mod:`registry.catalog.protection`):
the candidate, the alias's current target and its stored gates are read
under the model's lock and handed to the caller's ``decide`` callback, so no
other writer can move the alias or change its rules between the check and
the move. A protected alias cannot be removed, nor its target deleted, nor
set by ``register(alias=...)``, while it is protected.

Freeing a blob and publishing one happen under a lock on the blob's row
(see :mod:`registry.catalog.schema`), through callbacks, so this module never
touches files itself and the store never touches the database. Publishing
here is only the cheap last step: the bytes were pushed to their address
before the transaction began (see :mod:`registry.facade`).

Each public method is one transaction and is run again, a bounded number of
times, when a server catalog's connection dies before the commit
(:func:`~registry.catalog.engine.retried`).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, func, insert, select, update

from registry.catalog.audit import Actor, EventLog
from registry.catalog.damage import CLEAR_MARK, DamageMarks, mark_of
from registry.catalog.dialects import insert_ignore, upsert
from registry.catalog.engine import read_transaction, retried, write_transaction
from registry.catalog.inventory import import_rows
from registry.catalog.notices import AliasNotice, AliasWatch, announce, can_watch
from registry.catalog.protection import (
    AliasDecision,
    AliasFacts,
    Decide,
    drop_gates,
    gates_of,
    protected_aliases_of_version,
    protections,
    store_gates,
)
from registry.catalog.reads import MODEL_ID_QUERY, CatalogReads
from registry.catalog.schema import (
    AliasRow,
    BlobRow,
    CanaryRow,
    LatestMetricRow,
    LineageRow,
    MetricRow,
    ModelRow,
    ParamValueRow,
    TagRow,
    VersionImportRow,
    VersionRow,
    table_of,
)
from registry.catalog.sealing import check_state, reseal
from registry.catalog.search import param_rows
from registry.catalog.version_rows import NewVersion, canary_row, lineage_row, recorded_version, version_row
from registry.digests import checksum_of
from registry.domain import MetricPoint, ModelVersion, Ref
from registry.errors import (
    AliasNotFound,
    CatalogError,
    InvalidArgument,
    InvalidKey,
    PromotionRefused,
    VersionNotFound,
)
from registry.names import parse_ref

_MODELS = table_of(ModelRow)
_VERSIONS = table_of(VersionRow)
_BLOBS = table_of(BlobRow)
_TAGS = table_of(TagRow)
_METRICS = table_of(MetricRow)
_LATEST = table_of(LatestMetricRow)
_ALIASES = table_of(AliasRow)
_PARAM_VALUES = table_of(ParamValueRow)
_LINEAGE = table_of(LineageRow)
_VERSION_IMPORTS = table_of(VersionImportRow)
_CANARIES = table_of(CanaryRow)


# Built once and reused with bound parameters (see reads.py for why).
_BUMP_COUNTER = (
    update(_MODELS)
    .where(_MODELS.c.id == bindparam("model_id"))
    .values(last_version=_MODELS.c.last_version + 1, live_versions=_MODELS.c.live_versions + 1)
)
_COUNTER = select(_MODELS.c.last_version).where(_MODELS.c.id == bindparam("model_id"))
#: Where UPDATE … RETURNING exists (SQLite 3.35+, PostgreSQL): find, lock and bump the counter in one statement.
_BUMP_BY_NAME = (
    update(_MODELS)
    .where(_MODELS.c.name == bindparam("model_name"))
    .values(last_version=_MODELS.c.last_version + 1, live_versions=_MODELS.c.live_versions + 1)
    .returning(_MODELS.c.id, _MODELS.c.last_version)
)
#: A version deleted: one live version fewer (under the model's lock, as every change of the model).
_ONE_LESS_LIVE = (
    update(_MODELS).where(_MODELS.c.id == bindparam("model_id")).values(live_versions=_MODELS.c.live_versions - 1)
)
_LOCK_BLOB = select(_BLOBS.c.digest).where(_BLOBS.c.digest == bindparam("digest")).with_for_update()
_INSERT_VERSION = insert(_VERSIONS)
_INSERT_TAGS = insert(_TAGS)
_INSERT_METRICS = insert(_METRICS)
_INSERT_PARAM_VALUES = insert(_PARAM_VALUES)
_INSERT_LINEAGE = insert(_LINEAGE)
_INSERT_VERSION_IMPORTS = insert(_VERSION_IMPORTS)
_INSERT_CANARY = insert(_CANARIES)
_LOCK_MODEL = select(_MODELS.c.id).where(_MODELS.c.id == bindparam("model_id")).with_for_update()
_ALIAS_TARGET = (
    select(_VERSIONS.c.version)
    .join(_ALIASES, _ALIASES.c.version_id == _VERSIONS.c.id)
    .where(_ALIASES.c.model_id == bindparam("model_id"), _ALIASES.c.alias == bindparam("alias"))
)
_LOCK_LIVE_VERSION = (
    select(_VERSIONS.c.id)
    .where(_VERSIONS.c.id == bindparam("version_id"), _VERSIONS.c.deleted_at.is_(None))
    .with_for_update(read=True)
)
_LATEST_VALUES = select(_LATEST.c.key, _LATEST.c.value).where(
    _LATEST.c.version_id == bindparam("version_id"), _LATEST.c.key.in_(bindparam("keys", expanding=True))
)
_ALIASES_OF_VERSION = select(_ALIASES.c.alias).where(_ALIASES.c.version_id == bindparam("version_id"))


def utcnow() -> datetime:
    return datetime.now(UTC)


class Catalog(DamageMarks, CatalogReads):
    """Model metadata in a SQL database: the queries plus every write; safe to share between threads.

    ``actor`` is who the audit trail says made the changes (set by the registry);
    ``key`` (see :class:`CatalogReads`) also seals every change.
    """

    actor: Actor = Actor()

    # -- writes ------------------------------------------------------------

    def _events(self) -> EventLog:
        return EventLog(self.actor, self.key)

    def _guard(self, connection: Connection, name: str, *, with_metrics: bool = False) -> None:
        """With a key, refuse to change a model whose rows are not its sealed state (call it under the lock).

        Resealing on top of someone else's edit would launder it into a
        valid seal; refusing keeps the edit visible until it is undone or
        deliberately adopted (:meth:`seal_state`).
        """
        if self.key is None:
            return
        # Metrics are not read here: the seal's digest of them is then updated by difference, so an edit of a
        # metric by SQL stays a mismatch after this write (it is caught where metrics decide: best, verify,
        # and a gated alias move, which asks ``with_metrics``).
        verdict = check_state(connection, self.key, name, with_metrics=with_metrics)
        if verdict is not None:
            verdict.raise_if_untrusted()
            if self.state_seen is not None:  # a writer must not seal a catalog rolled back behind its readers
                self.state_seen(verdict.catalog_id, name, verdict.seq)

    def _finish(
        self, connection: Connection, events: EventLog, *, adopt: bool = False, ids: dict[str, int] | None = None
    ) -> None:
        """Append the transaction's events, then reseal (or, without a key, unseal) every model they touch.

        ``adopt`` recomputes the metrics digest from the rows instead of updating the sealed one; ``ids``
        holds the model ids the transaction already knows (by name), which are then not looked up again.
        On PostgreSQL the aliases the transaction moves are notified, told to listeners only if it commits.
        """
        announce(connection, events.moved_aliases())
        for name in sorted(events.write(connection)):
            delta = None if adopt else events.metric_delta(name)
            model_id = ids[name] if ids and name in ids else self._model_id(connection, name)
            reseal(connection, self.key, model_id, name, delta)

    @retried
    def seal_state(self, name: str) -> int:
        """Adopt ``name``'s current state under the key, as an audited ``state.seal`` event; return its seq.

        This is the one way to make a keyed reader accept a model that was
        written without the key (or before sealing existed), so whoever
        runs it vouches for the state as it is: it is recorded with their
        user and host, and what it replaced (``old``).
        """
        if self.key is None:
            raise InvalidKey(
                "sealing needs the signing key: set $MODELSHELF_SIGNING_KEY (in Python, Registry(signing_key=...)) "
                "and run the command again; nothing was sealed"
            )
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            now = self._lock_model(connection, model_id)
            verdict = check_state(connection, self.key, name, with_metrics=True)
            assert verdict is not None
            events = self._events()
            was = {"seq": verdict.seq, "problem": verdict.problem}
            events.add("state.seal", name, None, at=now, old=was, new={"seq": verdict.seq + 1})
            self._finish(connection, events, adopt=True)
            return verdict.seq + 1

    def watch_aliases(
        self, wake: Callable[[AliasNotice], None], on_state: Callable[[str, str | None], None]
    ) -> AliasWatch | None:
        """A started :class:`AliasWatch` calling ``wake`` as aliases move, or ``None`` where the catalog cannot tell."""
        if not can_watch(self.engine):
            return None
        return AliasWatch(self.engine, wake, on_state=on_state).start()

    def _lock_model(self, connection: Connection, model_id: int) -> datetime:
        """Serialize the changes of one model on server databases (SQLite holds the write lock already).

        Returns the time of the change, taken under the lock, so that the
        audit trail's times follow its order.
        """
        connection.execute(_LOCK_MODEL, {"model_id": model_id})
        return utcnow()

    def _ensure_model(self, connection: Connection, name: str, now: datetime) -> int:
        model_id = connection.execute(MODEL_ID_QUERY, {"name": name}).scalar()
        if model_id is None:
            insert_ignore(connection, _MODELS, [{"name": name, "last_version": 0, "created_at": now}], ["name"])
            model_id = self._model_id(connection, name)
        return model_id

    def _point_alias(
        self,
        connection: Connection,
        events: EventLog,
        target: tuple[str, int, int, int],
        alias: str,
        now: datetime,
    ) -> None:
        """Point ``alias`` at ``target`` (name, model id, version id, version) and record the set or move."""
        name, model_id, version_id, version = target
        before = connection.execute(_ALIAS_TARGET, {"model_id": model_id, "alias": alias}).scalar()
        if before == version:
            return
        action = "alias.set" if before is None else "alias.move"
        events.add(action, name, version, at=now, alias=alias, old=before, new=version)
        upsert(
            connection,
            _ALIASES,
            [{"model_id": model_id, "alias": alias, "version_id": version_id, "updated_at": now}],
            keys=["model_id", "alias"],
            updates=["version_id", "updated_at"],
        )

    def _record_metrics(
        self,
        connection: Connection,
        version: tuple[int, str, int, EventLog],
        metrics: dict[str, float],
        step: int | None,
        now: datetime,
        model_id: int,
    ) -> None:
        points = [MetricPoint(0, k, v, step, now) for k, v in metrics.items()]
        self._record_history(connection, version, points, model_id)

    def _record_history(
        self,
        connection: Connection,
        version: tuple[int, str, int, EventLog],
        points: list[MetricPoint],
        model_id: int,
    ) -> None:
        """Append metric values in the order given; the last value of each key becomes its latest.

        ``version`` is (row id, model name, number, the transaction's event log); ``model_id`` its model's
        id, which ``metrics`` and ``latest_metrics`` repeat with the version's number for their per-model
        indexes. With a key, what the latest values change is tallied on the log, so the seal's metrics
        digest is updated by the difference instead of being recomputed over every metric of the model.
        """
        version_id, name, number, events = version
        if not points:
            return
        latest = {point.key: point.value for point in points}
        if self.key is not None:
            before = connection.execute(_LATEST_VALUES, {"version_id": version_id, "keys": list(latest)}).all()
            events.tally_metrics(name, [(number, k, v) for k, v in before], [(number, k, v) for k, v in latest.items()])
        connection.execute(
            _INSERT_METRICS,
            [
                {
                    "version_id": version_id,
                    "key": p.key,
                    "value": p.value,
                    "step": p.step,
                    "timestamp": p.timestamp,
                    "model_id": model_id,
                    "version": number,
                }
                for p in points
            ],
        )
        upsert(
            connection,
            _LATEST,
            [
                {"version_id": version_id, "key": key, "value": value, "model_id": model_id, "version": number}
                for key, value in latest.items()
            ],
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
        is recorded. It should be cheap, as it runs under the model's row lock
        that other writers of the model wait on: the caller moves the bytes to
        their address beforehand, and ``publish`` only makes sure they are
        still there (a concurrent delete may have freed them). On a server
        catalog the transaction is run again if its connection is lost before
        it commits (:func:`~registry.catalog.engine.retried`), so ``publish``
        and ``sign`` may be called more than once. ``sign(new, version)`` gives the HMAC to store, once
        the version number is known.
        """
        return self.add_versions([(new, publish)], sign)[0]

    @retried
    def add_versions(
        self,
        batch: list[tuple[NewVersion, Callable[[], None]]],
        sign: Callable[[NewVersion, int], str | None] = lambda new, version: None,
    ) -> list[ModelVersion]:
        """Record several versions in one transaction: all of them, or none (see :meth:`add_version`).

        A registration refused because its ``alias=`` is protected rolls
        back whole, and the refusal is then recorded on its own (an
        ``alias.refuse`` event), so the trail shows every attempt on a
        protected alias.
        """
        try:
            return self._add_versions(batch, sign)
        except PromotionRefused as exc:
            if exc.version is None:
                self._record_refused_registration(exc.name, exc.alias)
            raise

    def _record_refused_registration(self, name: str, alias: str) -> None:
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            now = self._lock_model(connection, model_id)
            target = connection.execute(_ALIAS_TARGET, {"model_id": model_id, "alias": alias}).scalar()
            events = self._events()
            refused = {"operation": "register", "protected": True}
            events.add("alias.refuse", name, target, at=now, alias=alias, old=target, new=refused)
            self._finish(connection, events)

    @retried
    def record_refused_swap(self, name: str, version: int, alias: str | None, detail: dict[str, Any]) -> bool:
        """Append a ``serve.swap_refused`` event for ``version``; ``False`` (nothing written) where it would unseal.

        Without a key, any write marks the model unsealed, so every keyed
        client would refuse it until someone seals it again: a server's note
        is not worth that, so a sealed model gets none from a keyless writer.
        With a key the state is checked first, as every keyed write does.
        """
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            now = self._lock_model(connection, model_id)
            if self.key is None:
                sealed = connection.execute(select(_MODELS.c.state_seal).where(_MODELS.c.id == model_id)).scalar()
                if sealed is not None:
                    return False
            self._guard(connection, name)
            events = self._events()
            events.add("serve.swap_refused", name, version, at=now, alias=alias, old=detail.get("served"), new=detail)
            self._finish(connection, events)
            return True

    def _add_versions(
        self,
        batch: list[tuple[NewVersion, Callable[[], None]]],
        sign: Callable[[NewVersion, int], str | None],
    ) -> list[ModelVersion]:
        with write_transaction(self.engine) as connection:
            if len(batch) > 1:
                self._lock_in_order(connection, [new for new, _ in batch])
            if self.key is not None:  # models first, in name order, as every writer takes them
                for name in sorted({new.name for new, _ in batch}):
                    self._lock_model(connection, self._ensure_model(connection, name, utcnow()))
                    self._guard(connection, name)
            events = self._events()
            ids: dict[str, int] = {}
            added = [self._add(connection, events, new, publish, sign, ids) for new, publish in batch]
            self._finish(connection, events, ids=ids)
            return added

    def _lock_in_order(self, connection: Connection, news: list[NewVersion]) -> None:
        """Take a batch's row locks up front, in the one order every writer follows: models, parents, blobs.

        A single registration takes its model, its parent and its blob in
        that order anyway. A batch taking them version by version would hold
        model ``a`` while waiting for ``b`` when another batch holds ``b``
        and waits for ``a``: PostgreSQL and MariaDB then abort one of them.
        Sorting within each kind makes any two writers meet in the same order.
        """
        for name in sorted({new.name for new in news}):
            self._lock_model(connection, self._ensure_model(connection, name, utcnow()))
        parent_ids = []
        for reference in sorted({new.lineage.parent for new in news if new.lineage and new.lineage.parent}):
            try:
                parent_ids.append(self._find(connection, parse_ref(reference)).id)
            except LookupError:
                # Added by this very batch, or missing (_add tells which). Should another client add it
                # meanwhile, _add locks it after the blobs: harmless, as only a delete holds version rows
                # exclusively and it waits on nothing after taking them.
                continue
        for parent_id in sorted(parent_ids):
            connection.execute(_LOCK_LIVE_VERSION, {"version_id": parent_id})
        now = utcnow()
        for digest, size in sorted({(new.digest, new.size) for new in news}):
            self._claim_blob(connection, digest, size, now)

    def _next_version(self, connection: Connection, name: str) -> tuple[int, int]:
        """Allocate the next version number of ``name`` (creating the model); return (model id, number).

        The bump locks the model's row until commit. Where the engine returns
        rows from an UPDATE it is one statement for an existing model;
        elsewhere (MySQL/MariaDB) the id is looked up, bumped, then read back.
        """
        if connection.dialect.update_returning:
            row = connection.execute(_BUMP_BY_NAME, {"model_name": name}).first()
            if row is not None:
                return row.id, row.last_version
        model_id = self._ensure_model(connection, name, utcnow())
        connection.execute(_BUMP_COUNTER, {"model_id": model_id})
        return model_id, connection.execute(_COUNTER, {"model_id": model_id}).scalar_one()

    def _claim_blob(self, connection: Connection, digest: str, size: int, now: datetime) -> None:
        """Make sure the blob has a row and hold its lock until commit: publishing and freeing happen under it."""
        insert_ignore(connection, _BLOBS, [{"digest": digest, "size": size, "created_at": now}], ["digest"])
        if connection.dialect.name != "sqlite":  # SQLite holds the database's write lock already: nothing to take
            connection.execute(_LOCK_BLOB, {"digest": digest})

    def _add(
        self,
        connection: Connection,
        events: EventLog,
        new: NewVersion,
        publish: Callable[[], None],
        sign: Callable[[NewVersion, int], str | None],
        ids: dict[str, int],
    ) -> ModelVersion:
        model_id, version = self._next_version(connection, new.name)
        ids[new.name] = model_id
        now = utcnow()  # taken under that lock, so time follows version order on every engine
        parent_id, parent_ref = None, None
        lineage = new.lineage
        if lineage is not None and lineage.parent is not None:
            parent = parse_ref(lineage.parent)
            found = self._find(connection, parent)
            parent_id, parent_ref = found.id, (found.name, found.version)
            # A shared lock, taken after the model's as every writer does (no deadlock): a delete of the parent
            # committing meanwhile would leave a lineage naming a dead version.
            if connection.execute(_LOCK_LIVE_VERSION, {"version_id": parent_id}).scalar() is None:
                raise VersionNotFound(parent.name, parent.version, "deleted while this version was registered")
        version_hmac = sign(new, version)
        self._claim_blob(connection, new.digest, new.size, now)
        publish()
        connection.execute(CLEAR_MARK, {"blob": new.digest})  # the same bytes are back: a damaged blob heals
        inserted = connection.execute(
            _INSERT_VERSION, version_row(new, model_id, version, now, version_hmac)
        ).inserted_primary_key
        if inserted is None:  # SQLAlchemy returns it for every single-row insert; a driver that did not would be a bug
            raise CatalogError("the catalog did not return the new version's id; nothing was recorded")
        version_id = inserted[0]
        if new.params:
            connection.execute(_INSERT_PARAM_VALUES, param_rows(version_id, new.params))
        if new.imports:
            connection.execute(_INSERT_VERSION_IMPORTS, import_rows(version_id, new.imports))
        if lineage is not None:
            connection.execute(_INSERT_LINEAGE, lineage_row(version_id, lineage, parent_id))
        if new.canary is not None:
            connection.execute(_INSERT_CANARY, canary_row(version_id, new.canary, now))
        registered: dict[str, Any] = {"checksum": checksum_of(new.digest), "format": new.format}
        if lineage is not None and lineage.parent is not None:
            registered["parent"] = lineage.parent
        if new.provenance:  # never overriding the checksum or format
            registered = {**new.provenance, **registered}
        events.add("register", new.name, version, at=now, new=registered)
        if new.tags:
            connection.execute(
                _INSERT_TAGS, [{"version_id": version_id, "key": k, "value": v} for k, v in new.tags.items()]
            )
        if new.history is None:
            self._record_metrics(connection, (version_id, new.name, version, events), new.metrics, None, now, model_id)
        else:
            self._record_history(connection, (version_id, new.name, version, events), list(new.history), model_id)
        if new.alias is not None:
            if gates_of(connection, model_id, new.alias) is not None:  # the whole registration rolls back
                raise PromotionRefused(
                    f"alias {new.alias!r} of {new.name!r} is protected: register without alias=, then promote the "
                    f"new version through the alias's gates (`modelshelf promote {new.name} VERSION {new.alias}`); "
                    "nothing was registered",
                    name=new.name,
                    alias=new.alias,
                    version=None,
                )
            self._point_alias(connection, events, (new.name, model_id, version_id, version), new.alias, now)
        return recorded_version(
            new,
            version_id=version_id,
            version=version,
            created_at=now,
            hmac=version_hmac,
            parent=parent_ref,
        )

    @retried
    def set_alias(
        self, name: str, alias: str, version: int, decide: Decide | None = None, *, promote: bool = False
    ) -> tuple[ModelVersion, AliasDecision]:
        """Point ``alias`` at a live version (atomically moving it if set), if ``decide`` allows it.

        On a protected alias, or with ``promote`` (gates asked by the caller),
        ``decide`` gets the :class:`AliasFacts` read under the model's lock
        and answers (without it a protected alias is refused); an
        unprotected alias set without gates just moves. A refusal is committed as an
        ``alias.refuse`` event and returned, not raised: the caller raises
        once the trail holds it; a decision without a record that does not
        allow the move is abandoned (nothing recorded). Returns the version
        and the decision.
        """
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            now = self._lock_model(connection, model_id)
            protection = gates_of(connection, model_id, alias)
            gated = promote or protection is not None
            self._guard(connection, name, with_metrics=gated)
            row = self._find(connection, Ref(name, version=version))
            events = self._events()
            decision = AliasDecision(True)  # an unprotected alias set without gates moves as it always did
            if gated:
                decision = self._decide(connection, events, (name, alias, row, now), protection, decide)
            if decision.allowed:
                self._point_alias(connection, events, (name, model_id, row.id, version), alias, now)
            self._finish(connection, events)
            return self._to_model_version(row, self._details(connection, version_id=row.id)), decision

    def _decide(
        self,
        connection: Connection,
        events: EventLog,
        move: tuple[str, str, Any, datetime],
        protection: list[dict[str, Any]] | None,
        decide: Decide | None,
    ) -> AliasDecision:
        """Read the facts of a gated move under the lock, ask ``decide``, and record its answer."""
        name, alias, row, now = move
        candidate = self._to_model_version(row, self._details(connection, version_id=row.id))
        try:
            current_row = self._find(connection, Ref(name, alias=alias))
            current = self._to_model_version(current_row, self._details(connection, version_id=current_row.id))
        except AliasNotFound:
            current = None
        facts = AliasFacts(alias, candidate, current, protection, mark_of(connection, row.blob_digest))
        if decide is None:  # a caller that cannot evaluate gates may not move a protected alias
            refused = AliasDecision(False, {"verdicts": [], "reason": None, "protected": True})
            decision = AliasDecision(True) if protection is None else refused
        else:
            decision = decide(facts)
        if decision.record is not None:
            action = "alias.promote" if decision.allowed else "alias.refuse"
            old = None if current is None else current.version
            events.add(action, name, candidate.version, at=now, alias=alias, old=old, new=decision.record)
        return decision

    @retried
    def delete_alias(self, name: str, alias: str) -> tuple[int, list[dict[str, Any]] | None]:
        """Remove ``alias``: the version it pointed at, and ``None`` or, if it is protected, its gates (kept).

        A protected alias is not removed; the refusal is recorded. The version
        is read in the same transaction, so it is the one actually removed.
        """
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            now = self._lock_model(connection, model_id)
            self._guard(connection, name)
            before = connection.execute(_ALIAS_TARGET, {"model_id": model_id, "alias": alias}).scalar()
            if before is None:
                raise AliasNotFound(name, alias)
            events = self._events()
            protection = gates_of(connection, model_id, alias)
            if protection is not None:
                events.add("alias.refuse", name, before, at=now, alias=alias, old=before, new={"operation": "delete"})
                self._finish(connection, events)
                return before, protection
            connection.execute(delete(_ALIASES).where(_ALIASES.c.model_id == model_id, _ALIASES.c.alias == alias))
            events.add("alias.delete", name, before, at=now, alias=alias, old=before)
            self._finish(connection, events)
            return before, None

    @retried
    def protect_alias(self, name: str, alias: str, gates: list[dict[str, Any]], specs: list[str]) -> None:
        """Store ``gates`` for ``alias`` (replacing its previous ones) as an audited ``alias.protect`` event."""
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            now = self._lock_model(connection, model_id)
            self._guard(connection, name)
            before = gates_of(connection, model_id, alias)
            store_gates(connection, model_id, alias, gates, self.actor.user, now)
            events = self._events()
            events.add("alias.protect", name, None, at=now, alias=alias, old=before, new={"require": specs})
            self._finish(connection, events)

    @retried
    def unprotect_alias(self, name: str, alias: str, reason: str | None) -> list[dict[str, Any]]:
        """Drop ``alias``'s gates as an audited ``alias.unprotect`` event; return them. ``LookupError`` if none."""
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            now = self._lock_model(connection, model_id)
            self._guard(connection, name)
            before = gates_of(connection, model_id, alias)
            if before is None:
                raise InvalidArgument(f"alias {alias!r} of model {name!r} is not protected; nothing was changed")
            drop_gates(connection, model_id, alias)
            events = self._events()
            events.add("alias.unprotect", name, None, at=now, alias=alias, old=before, new={"reason": reason})
            self._finish(connection, events)
            return before

    @retried
    def alias_protections(self, name: str) -> dict[str, list[dict[str, Any]]]:
        """Every protected alias of ``name`` and its stored gates (checked against the seal with a key)."""
        with read_transaction(self.engine) as connection:
            self._trust(connection, name)
            return protections(connection, self._model_id(connection, name))

    @retried
    def log_metrics(self, name: str, version: int, metrics: dict[str, float], step: int | None) -> None:
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            now = self._lock_model(connection, model_id)
            self._guard(connection, name)
            row = self._find(connection, Ref(name, version=version))
            events = self._events()
            self._record_metrics(connection, (row.id, name, version, events), metrics, step, now, model_id)
            events.add("metrics.log", name, version, at=now, new={"metrics": metrics, "step": step})
            self._finish(connection, events)

    @retried
    def delete_version(self, name: str, version: int) -> tuple[str, int]:
        """Mark a version deleted and drop its aliases; return its blob's digest and size."""
        with write_transaction(self.engine) as connection:
            model_id = self._model_id(connection, name)
            now = self._lock_model(connection, model_id)
            self._guard(connection, name)
            row = self._find(connection, Ref(name, version=version))
            guarded = protected_aliases_of_version(connection, row.id)
            if guarded:  # deleting it would remove a protected alias: refused, nothing changed
                raise PromotionRefused(
                    f"{name}:{version} is the target of protected alias(es) {', '.join(guarded)}: promote another "
                    f"version there first, or unprotect them (`modelshelf alias unprotect {name} ALIAS`); "
                    "nothing was deleted",
                    name=name,
                    alias=guarded[0],
                    version=version,
                )
            events = self._events()
            for alias in sorted(connection.execute(_ALIASES_OF_VERSION, {"version_id": row.id}).scalars()):
                events.add("alias.delete", name, version, at=now, alias=alias, old=version)
            connection.execute(update(_VERSIONS).where(_VERSIONS.c.id == row.id).values(deleted_at=now))
            connection.execute(_ONE_LESS_LIVE, {"model_id": model_id})
            connection.execute(delete(_ALIASES).where(_ALIASES.c.version_id == row.id))
            events.add("version.delete", name, version, at=now, old={"checksum": checksum_of(row.blob_digest)})
            self._finish(connection, events)
            return row.blob_digest, row.size

    @retried
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
            self._claim_blob(connection, digest, size, utcnow())
            live = connection.execute(
                select(func.count())
                .select_from(_VERSIONS)
                .where(_VERSIONS.c.blob_digest == digest, _VERSIONS.c.deleted_at.is_(None))
            ).scalar_one()
            return False if live else delete_blob(digest)

    @retried
    def set_tags(self, name: str, version: int, tags: dict[str, str], remove: tuple[str, ...]) -> ModelVersion:
        """Set (overwrite) ``tags`` and remove the ``remove`` keys of one live version; return it."""
        with write_transaction(self.engine) as connection:
            now = self._lock_model(connection, self._model_id(connection, name))
            self._guard(connection, name)
            row = self._find(connection, Ref(name, version=version))
            keys = [*tags, *remove]
            before = dict(
                connection.execute(
                    select(_TAGS.c.key, _TAGS.c.value).where(_TAGS.c.version_id == row.id, _TAGS.c.key.in_(keys))
                ).all()
            )
            old = {key: before.get(key) for key in keys if before.get(key) != tags.get(key)}
            if old:
                events = self._events()
                events.add("tags.set", name, version, at=now, old=old, new={key: tags.get(key) for key in old})
                self._finish(connection, events)
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
