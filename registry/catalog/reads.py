"""The catalog's queries: each lookup runs in one read transaction, so it sees one consistent snapshot.

A version is turned into a :class:`~registry.domain.ModelVersion` with a
fixed number of queries whatever the number of versions: one for the version
rows, then one each for their tags, latest metrics and aliases.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from datetime import datetime
from typing import Any

from sqlalchemy import (
    Connection,
    Engine,
    Executable,
    Select,
    bindparam,
    func,
    literal,
    select,
)

from registry.catalog import keyset
from registry.catalog.audit import alias_periods, read_events
from registry.catalog.decoding import collector_paused, utc
from registry.catalog.details import Details, details_of_ids, details_of_model, details_of_version
from registry.catalog.dialects import NotIndexed
from registry.catalog.engine import is_read_only, one_statement, read_transaction, retried
from registry.catalog.history import LIVE_OF_MODEL, metric_names, metric_series, model_history, version_history
from registry.catalog.inventory import importing_query, index_name
from registry.catalog.lookups import lookup_statement, read_lookup
from registry.catalog.migrate import schema_differences
from registry.catalog.prepared import Prepared
from registry.catalog.schema import (
    AliasRow,
    CanaryRow,
    EventRow,
    LineageRow,
    ModelRow,
    VersionRow,
)
from registry.catalog.sealing import check_state
from registry.catalog.search import PARENT, PARENT_MODEL, drives
from registry.catalog.verification import (
    Finding,
    copy_findings,
    index_findings,
    state_findings,
    told_findings,
    trail_findings,
)
from registry.catalog.version_rows import CANARY_COLUMNS, VERSION_COLUMNS, VersionReader, VersionTuple, to_canary
from registry.digests import checksum_of
from registry.domain import (
    AliasPeriod,
    Canary,
    Event,
    MetricPoint,
    ModelSummary,
    ModelVersion,
    Ref,
)
from registry.errors import AliasNotFound, CatalogError, ModelNotFound, VersionNotFound
from registry.query import Node, OrderKey

# The statements are built once, with bound parameters, and reused: building a
# SQLAlchemy expression costs more than running the query on SQLite.
FROM_VERSIONS = (
    select(*VERSION_COLUMNS)
    .join(ModelRow, ModelRow.id == VersionRow.model_id)
    .outerjoin(LineageRow, LineageRow.version_id == VersionRow.id)
    .outerjoin(PARENT, PARENT.id == LineageRow.parent_id)
    .outerjoin(PARENT_MODEL, PARENT_MODEL.id == PARENT.model_id)
)
MODEL_ID_QUERY = select(ModelRow.id).where(ModelRow.name == bindparam("name"))
_PINNED = FROM_VERSIONS.where(ModelRow.name == bindparam("name"), VersionRow.version == bindparam("version"))
_BY_ALIAS = FROM_VERSIONS.join(
    AliasRow, (AliasRow.version_id == VersionRow.id) & (AliasRow.model_id == ModelRow.id)
).where(ModelRow.name == bindparam("name"), AliasRow.alias == bindparam("alias"))
_LATEST = (
    FROM_VERSIONS.where(ModelRow.name == bindparam("name"), VersionRow.deleted_at.is_(None))
    .order_by(VersionRow.version.desc())
    .limit(1)
)
#: The statement that finds each kind of reference (a version number, an alias, or the latest).
_LOOKUPS = {"pinned": _PINNED, "alias": _BY_ALIAS, "latest": _LATEST}
_LIVE_OF_MODEL = LIVE_OF_MODEL
_PINNED_FAST, _BY_ALIAS_FAST, _LATEST_FAST = Prepared(_PINNED), Prepared(_BY_ALIAS), Prepared(_LATEST)
_PINNED_LOOKUP = Prepared(lookup_statement(_PINNED))
_ALIAS_LOOKUP = Prepared(lookup_statement(_BY_ALIAS))
_LATEST_LOOKUP = Prepared(lookup_statement(_LATEST))


def _lookup_of(ref: Ref) -> Prepared:
    if ref.version is not None:
        return _PINNED_LOOKUP
    return _LATEST_LOOKUP if ref.alias is None else _ALIAS_LOOKUP


def _find_fast(ref: Ref) -> Prepared:
    if ref.version is not None:
        return _PINNED_FAST
    return _LATEST_FAST if ref.alias is None else _BY_ALIAS_FAST


def _params_of(ref: Ref) -> dict[str, Any]:
    if ref.version is not None:
        return {"name": ref.name, "version": ref.version}
    return {"name": ref.name} if ref.alias is None else {"name": ref.name, "alias": ref.alias}


_VERSIONS_OF_MODEL = FROM_VERSIONS.where(_LIVE_OF_MODEL).order_by(VersionRow.version)


#: A bound on the walk up the parents: a cycle cannot form through the API, but a catalog edited by hand could hold one.
_MAX_ANCESTORS = 1000


def _ancestors_query() -> Select[str, int]:
    """Every ancestor of one version in one recursive query, nearest first."""
    chain = (
        select(LineageRow.parent_id.label("id"), literal(1).label("depth"))
        .where(LineageRow.version_id == bindparam("version_id"), LineageRow.parent_id.is_not(None))
        .cte("chain", recursive=True)
    )
    step = (
        select(LineageRow.parent_id, chain.c.depth + 1)
        .join(chain, LineageRow.version_id == chain.c.id)
        .where(LineageRow.parent_id.is_not(None), chain.c.depth < _MAX_ANCESTORS)
    )
    chain = chain.union_all(step)
    return (
        select(ModelRow.name, VersionRow.version)
        .join(VersionRow, VersionRow.model_id == ModelRow.id)
        .join(chain, chain.c.id == VersionRow.id)
        .order_by(chain.c.depth)
    )


_ANCESTORS = _ancestors_query()
_CANARY = (
    select(*CANARY_COLUMNS)
    .join(VersionRow, VersionRow.id == CanaryRow.version_id)
    .join(ModelRow, ModelRow.id == VersionRow.model_id)
    .where(ModelRow.name == bindparam("name"), VersionRow.version == bindparam("version"))
)
_LIVE_CANARIES = (
    select(ModelRow.name, VersionRow.version, VersionRow.blob_digest, *CANARY_COLUMNS)
    .join(VersionRow, VersionRow.id == CanaryRow.version_id)
    .join(ModelRow, ModelRow.id == VersionRow.model_id)
    .where(VersionRow.deleted_at.is_(None))
    .order_by(ModelRow.name, VersionRow.version)
)

#: Called with (catalog id, model, seq) after a model's seal checked out: the client's rollback memory.
StateObserver = Callable[[str | None, str, int], None]


class CatalogReads:
    """Read-only queries of the catalog; safe to share between threads.

    With ``key`` set (the registry's signing key) every lookup that
    resolves a model's versions first checks the model's sealed state
    (:mod:`registry.catalog.sealing`) in the same snapshot, and refuses with
    :class:`~registry.errors.UntrustedArtifact` what does not match; each
    state that checks out is reported to ``state_seen``. Without a key none
    of this runs.
    """

    key: bytes | None = None
    state_seen: StateObserver | None = None

    def __init__(self, engine: Engine, location: str) -> None:
        self.engine = engine
        self.location = location

    @property
    def read_only(self) -> bool:
        """Whether this catalog was opened read-only (every write transaction is then refused)."""
        return is_read_only(self.engine)

    def _trust(self, connection: Connection, name: str, *, with_metrics: bool = False) -> None:
        """With a key, refuse a model whose rows are not its sealed state; nothing without one."""
        if self.key is None:
            return
        verdict = check_state(connection, self.key, name, with_metrics=with_metrics)
        if verdict is None:
            return  # no such model: the lookup itself says so
        verdict.raise_if_untrusted()
        if self.state_seen is not None:
            self.state_seen(verdict.catalog_id, name, verdict.seq)

    def close(self) -> None:
        self.engine.dispose()

    # -- lookups -----------------------------------------------------------

    def _model_id(self, connection: Connection, name: str) -> int:
        model_id = connection.execute(MODEL_ID_QUERY, {"name": name}).scalar()
        if model_id is None:
            raise ModelNotFound(name)
        return int(model_id)

    def _find(self, connection: Connection, ref: Ref) -> VersionTuple:
        """The live version row ``ref`` designates, or the precise not-found error."""
        found = _find_fast(ref).first(connection, _params_of(ref))
        row = None if found is None else VersionTuple._make(found)
        if row is not None and row.deleted_at is None:
            return row
        self._model_id(connection, ref.name)  # raises ModelNotFound first, if that is the case
        if row is not None:
            raise VersionNotFound(ref.name, ref.version, f"deleted on {utc(row.deleted_at):%Y-%m-%d %H:%M} UTC")
        if ref.alias is not None:
            raise AliasNotFound(ref.name, ref.alias)
        if ref.version is not None:
            raise VersionNotFound(ref.name, ref.version)
        raise VersionNotFound(ref.name, None, "every version was deleted")

    def _details(self, connection: Connection, version_id: int | None = None, model_id: int | None = None) -> Details:
        """Tags, latest metrics and aliases of one version, or of every live version of one model."""
        if version_id is not None:
            return details_of_version(connection, version_id)
        assert model_id is not None, "a version or a model"
        return details_of_model(connection, model_id)

    def _details_of(self, connection: Connection, ids: list[int]) -> Details:
        """Tags, latest metrics and aliases of the versions ``ids``."""
        return details_of_ids(connection, ids)

    def _to_model_version(self, row: Sequence[Any], details: Details) -> ModelVersion:
        return VersionReader(self.engine.dialect)(row, *details.of(row[0]))

    def _versions(
        self, connection: Connection, statement: Executable, params: dict[str, Any] | None = None
    ) -> list[ModelVersion]:
        """The versions ``statement`` (over :data:`FROM_VERSIONS`) selects, in its order, details read in bulk.

        Run with the garbage collector paused (see :func:`~registry.catalog.decoding.collector_paused`).
        """
        with collector_paused():
            return self._build(connection, connection.execute(statement, params).all())

    def _build(self, connection: Connection, rows: Sequence[Any]) -> list[ModelVersion]:
        """The versions of rows of :data:`FROM_VERSIONS`, in their order, details read in bulk."""
        with collector_paused():
            ids = [row[0] for row in rows]
            details = details_of_ids(connection, ids)
            read = VersionReader(connection.dialect)
            take = details.take if len(set(ids)) == len(ids) else details.of  # a version listed twice gets copies
            return [read(row, *take(row[0])) for row in rows]

    @retried
    def get(self, ref: Ref) -> ModelVersion:
        """The live version ``ref`` designates (latest when it names no version or alias).

        Without a key it is one statement (:mod:`registry.catalog.lookups`); with one, or when it finds
        no live version (to say precisely why), a read transaction as the other reads.
        """
        if self.key is None:
            with one_statement(self.engine) as connection:
                row, details = read_lookup(_lookup_of(ref).rows(connection, _params_of(ref)))
            if row is not None and row.deleted_at is None:
                return VersionReader(self.engine.dialect)(row, *details.take(row.id))
        with read_transaction(self.engine) as connection:
            self._trust(connection, ref.name)
            row = self._find(connection, ref)
            return self._to_model_version(row, self._details(connection, version_id=row.id))

    @retried
    def version_to_load(self, ref: Ref) -> ModelVersion:
        """The live version ``ref`` designates, as a load needs it: its tags, latest metrics and aliases left empty.

        A load reads none of those, so this is :meth:`get` without its
        second query: the seal checked (with a key) and the row found in one
        snapshot. On SQLite without a key, loads first ask
        :class:`~registry.catalog.lite.LiteReader`, which needs no SQLAlchemy;
        this answers for the rest, and names what is missing when it finds nothing. Without a key
        the row is one statement on the driver's cursor, as :meth:`get`'s lookup.
        """
        if self.key is None:
            with one_statement(self.engine) as connection:
                found = _find_fast(ref).first(connection, _params_of(ref))
            if found is not None and VersionTuple._make(found).deleted_at is None:
                return VersionReader(self.engine.dialect)(found, {}, {}, ())
        with read_transaction(self.engine) as connection:
            self._trust(connection, ref.name)
            return VersionReader(connection.dialect)(self._find(connection, ref), {}, {}, ())

    @retried
    def versions(self, name: str) -> list[ModelVersion]:
        """Every live version of ``name``, ascending; ``ModelNotFound`` if it was never registered."""
        with read_transaction(self.engine) as connection:
            self._trust(connection, name)
            model_id = self._model_id(connection, name)
            with collector_paused():
                rows = connection.execute(_VERSIONS_OF_MODEL, {"model_id": model_id}).all()
                details = self._details(connection, model_id=model_id)
                read = VersionReader(connection.dialect)
                return [read(row, *details.take(row[0])) for row in rows]

    @retried
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

    @retried
    def metrics_history(self, name: str, metric: str | None = None) -> list[MetricPoint]:
        """Every logged value of live versions, ordered by version, step (unset first), time.

        With a key the model's sealed state (its latest metrics included) is checked first, as every read does.
        """
        with read_transaction(self.engine) as connection:
            self._trust(connection, name, with_metrics=True)
            model_id = self._model_id(connection, name)
            return model_history(connection, model_id, metric)

    @retried
    def model_summaries(self) -> list[ModelSummary]:
        """One line per model with live versions: latest version, count, aliases, time of its last change.

        The last change is the model's newest audit event, of any kind (a
        version registered or deleted, an alias set, moved or removed, tags
        or metrics changed), found through the ``(model, id)`` index; a model
        whose trail has no event falls back to its newest live version.
        """
        with read_transaction(self.engine) as connection:
            rows = connection.execute(_SUMMARIES).all()
            aliases: dict[str, dict[str, int]] = {}
            for name, alias, version in connection.execute(
                select(ModelRow.name, AliasRow.alias, VersionRow.version)
                .join(AliasRow, AliasRow.model_id == ModelRow.id)
                .join(VersionRow, VersionRow.id == AliasRow.version_id)
                .order_by(AliasRow.alias)
            ):
                aliases.setdefault(name, {})[alias] = version
            return [
                ModelSummary(name, latest, count, aliases.get(name, {}), _aware(updated))
                for name, latest, count, updated in rows
            ]

    @retried
    def search(
        self, name: str | None, where: Node | None, order: Sequence[OrderKey], limit: int | None
    ) -> list[ModelVersion]:
        """Live versions (of ``name``, or of every model) matching a parsed filter, in the parsed order.

        With an order and a limit the read walks an index and stops after ``limit`` rows where the
        order allows it (see :mod:`registry.catalog.keyset`).
        """
        base = FROM_VERSIONS.where(VersionRow.deleted_at.is_(None))
        model_id = None
        with read_transaction(self.engine) as connection:
            if name is not None:
                # metrics included: best() and metric filters must not follow a value raised by SQL
                self._trust(connection, name, with_metrics=True)
                model_id = self._model_id(connection, name)
                # every match is read: a selective equality starts the read, not the model's whole version index
                model = (
                    NotIndexed(VersionRow.model_id)
                    if limit is None and where and drives(where)
                    else VersionRow.model_id
                )
                base = base.where(model == model_id)
            elif self.key is not None:
                # Every model, not only those in the result: a metric lowered by SQL would otherwise drop the
                # true best out of the result unchecked, and serve the runner-up.
                for model in connection.execute(select(ModelRow.name).order_by(ModelRow.name)).scalars():
                    self._trust(connection, model, with_metrics=True)
            found = keyset.read(connection, base, keyset.Query(name, where, order), limit=limit, model_id=model_id)
            return self._build(connection, found.rows)

    @retried
    def search_page(
        self,
        name: str,
        where: Node | None,
        order: Sequence[OrderKey],
        limit: int,
        offset: int,
        after: str | None = None,
    ) -> tuple[list[ModelVersion], int, str | None]:
        """One page of ``name``'s live versions matching ``where``, how many match in all, and the next cursor.

        The page starts ``offset`` rows in, or right after the row ``after`` (a cursor of an earlier page)
        ends; the cursor returned continues after this page (``None`` when it is the last). Page, count
        and cursor come from one snapshot; see :mod:`registry.catalog.keyset` for which orders read only
        the rows they show.
        """
        query = keyset.Query(name, where, order)
        start = None if after is None else keyset.decode_cursor(query, after)
        with read_transaction(self.engine) as connection:
            self._trust(connection, name, with_metrics=True)
            model_id = self._model_id(connection, name)
            base = FROM_VERSIONS.where(VersionRow.deleted_at.is_(None), VersionRow.model_id == model_id)
            total = keyset.total(connection, base, where, model_id)
            # one row more than the page: whether a next page exists, without a count
            found = keyset.read(connection, base, query, limit=limit + 1, offset=offset, after=start, model_id=model_id)
            rows = found.rows[:limit]
            cursor = keyset.encode_cursor(query, found.keys[limit - 1]) if len(found.rows) > limit else None
            return self._build(connection, rows), total, cursor

    @retried
    def metric_series(self, name: str, keys: Sequence[str]) -> dict[str, list[tuple[int, float]]]:
        """Each live version's current value of each of ``keys``, by version: one query a key, two columns a row."""
        with read_transaction(self.engine) as connection:
            self._trust(connection, name, with_metrics=True)
            return metric_series(connection, self._model_id(connection, name), keys)

    @retried
    def canary(self, name: str, version: int) -> Canary | None:
        """The canary recorded with ``name:version``, or ``None`` when it has none (one indexed query)."""
        with read_transaction(self.engine) as connection:
            row = connection.execute(_CANARY, {"name": name, "version": version}).first()
            return None if row is None else to_canary(row, f"{name}:{version}")

    @retried
    def live_canaries(self) -> list[tuple[str, str, str, Canary | str]]:
        """``(name, ref, checksum, canary)`` of every live version with a canary, for ``verify``.

        A row modelshelf never writes gives its error message in place of the canary.
        """
        found: list[tuple[str, str, str, Canary | str]] = []
        with read_transaction(self.engine) as connection:
            for row in connection.execute(_LIVE_CANARIES):
                ref = f"{row.name}:{row.version}"
                try:
                    canary: Canary | str = to_canary(row, ref)
                except CatalogError as exc:
                    canary = str(exc)
                found.append((row.name, ref, checksum_of(row.blob_digest), canary))
        return found

    @retried
    def metric_names(self, name: str) -> list[str]:
        """The distinct keys of the live versions' current metrics, sorted: one index seek a key."""
        with read_transaction(self.engine) as connection:
            self._trust(connection, name, with_metrics=True)
            return metric_names(connection, self._model_id(connection, name))

    @retried
    def version_history(self, name: str, version: int) -> list[MetricPoint]:
        """Every logged value of one live version, ordered as :meth:`metrics_history` orders them.

        A version that is not there (or was deleted) is :class:`VersionNotFound`,
        not an empty history; with a key the model's sealed state is checked first.
        """
        with read_transaction(self.engine) as connection:
            self._trust(connection, name, with_metrics=True)
            model_id = self._model_id(connection, name)
            self._find(connection, Ref(name, version))  # a missing or deleted version is not an empty history
            return version_history(connection, model_id, version)

    @retried
    def alias_names(self, name: str) -> list[str]:
        """Every alias the trail of ``name`` mentions (deleted ones too), sorted."""
        with read_transaction(self.engine) as connection:
            self._model_id(connection, name)
            query = (
                select(EventRow.alias)
                .where(EventRow.model == name, EventRow.alias.is_not(None))
                .distinct()
                .order_by(EventRow.alias)
            )
            return [alias for alias in connection.execute(query).scalars() if alias is not None]

    @retried
    def versions_importing(self, names: Iterable[str]) -> list[ModelVersion]:
        """Live versions whose recorded inventory imports any of ``names``: aliased ones first, then by name.

        One indexed query over ``version_imports`` (plus one for the
        versions' tags, metrics and aliases); no blob is read. A version
        whose bytes are no pickle at all (registered with ``check=False``)
        has no inventory and is never listed.
        """
        wanted = sorted({index_name(name) for name in names})
        if not wanted:
            return []
        with read_transaction(self.engine) as connection:
            query = importing_query(FROM_VERSIONS.where(VersionRow.deleted_at.is_(None)))
            return self._versions(connection, query, {"names": wanted})

    @retried
    def ancestors(self, ref: Ref) -> list[str]:
        """The references of the versions ``ref`` was derived from, nearest first (deleted ones included)."""
        with read_transaction(self.engine) as connection:
            row = self._find(connection, ref)
            chain = (f"{name}:{version}" for name, version in connection.execute(_ANCESTORS, {"version_id": row.id}))
            return list(dict.fromkeys(chain))  # a hand-made cycle repeats its versions: each is listed once

    @retried
    def events(
        self,
        name: str | None,
        since: datetime | None,
        limit: int | None,
        *,
        alias: str | None = None,
        action: str | None = None,
    ) -> list[Event]:
        """The audit trail, oldest first: of one model (``ModelNotFound`` if unknown) or of all, filtered."""
        with read_transaction(self.engine) as connection:
            if name is not None:
                self._model_id(connection, name)
            return read_events(connection, name, since, limit, alias=alias, action=action)

    @retried
    def alias_history(self, name: str, alias: str) -> list[AliasPeriod]:
        """The periods during which ``alias`` of ``name`` pointed at each version, oldest first."""
        with read_transaction(self.engine) as connection:
            self._model_id(connection, name)
            return alias_periods(connection, name, alias)

    @retried
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

    @retried
    def live_versions(self) -> list[ModelVersion]:
        """Every live version of every model, by name and version, *without* checking seals (for ``verify``)."""
        with read_transaction(self.engine) as connection:
            query = FROM_VERSIONS.where(VersionRow.deleted_at.is_(None)).order_by(ModelRow.name, VersionRow.version)
            return self._versions(connection, query)

    @retried
    def trust_findings(self) -> list[Finding]:
        """Broken event chains, seals that do not match (with a key) and a stale imports index, in one snapshot."""
        with read_transaction(self.engine) as connection:
            found = list(trail_findings(connection, self.key))
            found.extend(told_findings(connection))
            if self.key is not None:
                found.extend(state_findings(connection, self.key, self.state_seen))
            found.extend(index_findings(connection))
            found.extend(copy_findings(connection))
            return found

    @retried
    def schema_problems(self, deep: bool) -> list[str]:
        """Differences between the catalog's tables and the schema this code expects (and, deep, corruption)."""
        with read_transaction(self.engine) as connection:
            return schema_differences(connection, deep=deep)


#: The newest audit event of the model of the row at hand: one index seek on ``ix_events_model_id`` per model.
_LAST_CHANGE = (
    select(EventRow.at).where(EventRow.model == ModelRow.name).order_by(EventRow.id.desc()).limit(1).scalar_subquery()
)
_SUMMARIES = (
    select(
        ModelRow.name,
        func.max(VersionRow.version),
        func.count(),
        func.coalesce(_LAST_CHANGE, func.max(VersionRow.created_at)),
    )
    .join(VersionRow, VersionRow.model_id == ModelRow.id)
    .where(VersionRow.deleted_at.is_(None))
    .group_by(ModelRow.name)
    .order_by(ModelRow.name)
)


def _aware(value: datetime | str) -> datetime:
    """``max()`` of a timestamp column bypasses the column type on some engines; restore UTC."""
    from datetime import UTC

    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value if value.tzinfo else value.replace(tzinfo=UTC)
