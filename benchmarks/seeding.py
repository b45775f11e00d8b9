"""Large catalogs in seconds: one real registration, then its rows cloned by bulk insert.

A million registrations would take the better part of an hour, so the growth
benchmark seeds its catalogs this way instead:

1. ``Registry(home)`` creates the schema (Alembic, as always), and version 1
   is registered through the real write path, so every row it writes is one
   the registry wrote itself: the blob and its file, the version, its
   lineage, params, tags, metrics, latest metrics and its ``register`` event;
2. the rows of versions 2..N are copies of version 1's, read back column by
   column (a column added to the schema later is copied too), with what
   differs per version replaced: id, number, times, params (through the
   catalog's own ``param_rows``), tags and metric values;
3. they go in with SQLAlchemy Core ``executemany``, a chunk of versions per
   transaction, and the model's counters are moved on as N registrations
   would have moved them.

The catalog is left as an unkeyed registry writes it: versions unsigned,
the model's state unsealed (``state_seal`` NULL, ``state_seq`` one per
change), and the audit trail a valid chain of ``u1:`` links recomputed event
by event, so ``verify`` finds nothing wrong with it
(:func:`seed` checks that on small catalogs). Every version points at version
1's blob, which is there, so any of them loads.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

TEAMS = ("cv", "nlp", "ops")
#: Versions per ``params.cohort`` value: a search on one cohort returns this many, at every size.
COHORT = 1000
CHUNK = 20_000
#: The tables without a ``version_id`` column that the seeding handles: by hand (models, events), or because one
#: registration's rows serve every copy (the one blob, the catalog's identity) or it writes none (aliases, gates).
_NOT_PER_VERSION = {"models", "versions", "events", "blobs", "catalog_identity", "aliases", "alias_protection"}


def params_of(number: int, versions: int) -> dict[str, Any]:
    return {"cohort": number % max(1, versions // COHORT), "alpha": round((number % 97) / 97, 4), "solver": "lbfgs"}


def metrics_of(number: int) -> dict[str, float]:
    return {"m0": (number * 7 % 1000) / 1000, "m1": (number * 13 + 5) % 1000 / 1000}


def tags_of(number: int) -> dict[str, str]:
    return {"team": TEAMS[number % 3]}


@dataclass(frozen=True)
class Seeded:
    """A seeded catalog: where it is, the model's name, how many versions, and how long the seeding took."""

    home: Path
    name: str
    versions: int
    seconds: float
    alias: str = "production"

    @property
    def middle(self) -> int:
        """The version the alias points at, and the one pinned lookups ask for."""
        return max(1, self.versions // 2)


def seed(home: Path, versions: int, name: str = "deep", *, check: bool = False) -> Seeded:
    """A catalog at ``home`` holding ``versions`` versions of ``name``, with ``production`` on the middle one.

    ``check`` runs ``verify`` on the result and raises if it finds anything
    (it reads every event, so keep it for small catalogs).
    """
    from registry import Registry

    started = time.perf_counter()
    with Registry(home) as reg:
        first = reg.register(
            name,
            {"weights": list(range(16))},
            format="pickle",
            params=params_of(1, versions),
            metrics=metrics_of(1),
            tags=tags_of(1),
        )
        location = reg._catalog.engine.url.render_as_string(hide_password=False)
    if versions > 1:
        _clone(location, name, first.created_at, versions)
    with Registry(home) as reg:
        reg.set_alias(name, "production", max(1, versions // 2))  # through the real path: the event, the state
        if check:
            report = reg.verify()
            if not report.ok or report.problems or report.versions_checked != versions:
                raise AssertionError(f"the seeded catalog does not verify: {report}")
    return Seeded(home, name, versions, time.perf_counter() - started)


def _clone(location: str, name: str, first_at: datetime, versions: int) -> None:
    """Insert versions 2..``versions`` of ``name`` as copies of version 1 (see the module docstring)."""
    from sqlalchemy import create_engine, event, select, update

    from registry.catalog.chain import next_link
    from registry.catalog.schema import Base, EventRow, ModelRow, VersionRow, table_of
    from registry.catalog.search import param_rows

    engine = create_engine(location)

    @event.listens_for(engine, "connect")
    def _pragmas(connection: Any, _record: Any) -> None:
        cursor = connection.cursor()
        cursor.execute("PRAGMA foreign_keys = ON")  # the rows must satisfy every constraint the registry's do
        cursor.execute("PRAGMA synchronous = OFF")  # a benchmark fixture: the seeding need not survive a crash
        cursor.execute("PRAGMA cache_size = -262144")  # 256 MiB: index inserts at a million rows stay in memory
        cursor.close()

    models, versions_table, events = table_of(ModelRow), table_of(VersionRow), table_of(EventRow)
    attached = [table for table in Base.metadata.sorted_tables if "version_id" in table.c]
    dialect = engine.dialect
    with engine.begin() as connection:
        model = connection.execute(select(models).where(models.c.name == name)).mappings().one()
        first = dict(
            connection.execute(
                select(versions_table).where(versions_table.c.model_id == model["id"], versions_table.c.version == 1)
            )
            .mappings()
            .one()
        )
        templates = {
            table: [
                dict(r) for r in connection.execute(select(table).where(table.c.version_id == first["id"])).mappings()
            ]
            for table in attached
        }
        trail = [dict(r) for r in connection.execute(select(events).where(events.c.model == name)).mappings()]
        for table in Base.metadata.sorted_tables:  # a table added later, holding rows this seeding does not copy
            if table not in attached and table.name not in _NOT_PER_VERSION:
                if connection.execute(select(table).limit(1)).first() is not None:
                    raise AssertionError(
                        f"the catalog's table {table.name!r} has rows after one registration and no version_id "
                        "column: teach benchmarks/seeding.py how N registrations would fill it"
                    )
    (registered,) = [e for e in trail if e["action"] == "register"]
    link = trail[-1]["link"]
    version_bulk = _Bulk(versions_table, dialect, first, ("id", "version", "params", "created_at"))
    event_bulk = _Bulk(events, dialect, registered, ("at", "version", "link"), drop=("id",))
    row_bulks = [
        (table, template.get("key"), _Bulk(table, dialect, template, _varying(table, template), drop=_surrogate(table)))
        for table in attached
        for template in templates[table]
    ]
    for start in range(2, versions + 1, CHUNK):
        for number in range(start, min(versions, start + CHUNK - 1) + 1):
            at = first_at + timedelta(microseconds=number - 1)
            version_id = first["id"] + number - 1
            params = params_of(number, versions)
            common = {
                "id": version_id,
                "version_id": version_id,
                "version": number,
                "created_at": at,
                "timestamp": at,
                "at": at,
                "params": params,
            }
            version_bulk.add(common)
            per_key = {
                "metrics": metrics_of(number),
                "latest_metrics": metrics_of(number),
                "tags": tags_of(number),
                "param_values": {row["key"]: row for row in param_rows(version_id, params)},
            }
            for table, key, bulk in row_bulks:
                value = per_key.get(table.name, {}).get(key)
                bulk.add({**common, **value} if isinstance(value, dict) else {**common, "value": value})
            new_event = {**registered, "at": at, "version": number}
            common["link"] = link = next_link(None, link, new_event)
            event_bulk.add(common)
        with engine.begin() as connection:
            for bulk in (version_bulk, *(bulk for _, _, bulk in row_bulks), event_bulk):
                bulk.flush(connection)
    with engine.begin() as connection:
        connection.execute(
            update(models)
            .where(models.c.id == model["id"])
            .values(
                last_version=versions,
                live_versions=versions,
                state_seq=models.c.state_seq + versions - 1,
                state_seal=None,
            )
        )
    with engine.connect() as connection:  # outside a transaction: fold the WAL into the file, as readers find it
        connection.exec_driver_sql("PRAGMA wal_checkpoint(TRUNCATE)")
    engine.dispose()


def _varying(table: Any, template: dict[str, Any]) -> tuple[str, ...]:
    """The columns of ``table`` that differ from version 1's row in every copy."""
    own = {
        "tags": ("value",),
        "metrics": ("value",),
        "latest_metrics": ("value",),
        "param_values": ("kind", "number", "text"),
    }
    moving = tuple(column for column in ("version", "timestamp", "created_at") if column in template)
    return ("version_id", *moving, *own.get(table.name, ()))


def _surrogate(table: Any) -> tuple[str, ...]:
    """A table's own integer key (``metrics.id``): left to the database, as the registry's inserts leave it."""
    keys = list(table.primary_key.columns)
    return (keys[0].name,) if len(keys) == 1 and keys[0].name != "version_id" else ()


class _Bulk:
    """One ``INSERT`` of the real schema compiled once, and its rows bound by the columns' own type processors.

    Core's ``executemany`` would run every processor on every row; here the
    columns that are the same in every copy are bound once, from version 1's
    row, and only the varying ones per row (the same processors: UTC
    timestamps, JSON), which is what makes a million versions quick.
    """

    def __init__(
        self, table: Any, dialect: Any, template: dict[str, Any], varying: tuple[str, ...], drop: tuple[str, ...] = ()
    ) -> None:
        from sqlalchemy import insert

        columns = [column for column in template if column not in drop]
        compiled = insert(table).compile(dialect=dialect, column_keys=columns)
        self.sql = str(compiled)
        order = list(compiled.positiontup or ())

        def processor(column: str) -> Callable[[Any], Any] | None:
            return table.c[column].type.dialect_impl(dialect).bind_processor(dialect)  # type: ignore[no-any-return]

        self._base = []
        for column in order:
            bind = processor(column)
            value = template[column]
            self._base.append(bind(value) if bind is not None and column not in varying else value)
        self._varying = [(order.index(column), column, processor(column)) for column in varying]
        self.rows: list[tuple[Any, ...]] = []

    def add(self, values: dict[str, Any]) -> None:
        row = self._base.copy()
        for index, column, bind in self._varying:
            value = values[column]
            row[index] = bind(value) if bind is not None else value
        self.rows.append(tuple(row))

    def flush(self, connection: Any) -> None:
        if self.rows:
            connection.exec_driver_sql(self.sql, self.rows)
            self.rows = []
