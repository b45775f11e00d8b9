"""The fast bulk reads give exactly what the typed reads gave, on every engine, and use the indexes made for them.

The reference answers are computed here with plain typed SQLAlchemy
statements in the portable spelling (``step IS NULL DESC, step``), the way
the catalog read them before, so a difference in values, types, order or
time zones shows as a failed comparison; the plan tests say, without
timing anything, that SQLite reads a history from one index in order.
"""

from __future__ import annotations

import logging
import pickle
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from sqlalchemy import bindparam, create_engine, event, select, text
from sqlalchemy.dialects import mysql, postgresql, sqlite

from registry import CatalogError, Registry
from registry.catalog import history
from registry.catalog.decoding import plain_dataclass, raw, utc
from registry.catalog.dialects import NullsFirst
from registry.catalog.prepared import Prepared
from registry.catalog.schema import (
    AliasRow,
    LatestMetricRow,
    LineageRow,
    MetricRow,
    ModelRow,
    TagRow,
    UTCDateTime,
    VersionRow,
    aliased,
)
from registry.domain import InputSignature, Lineage, MetricPoint, ModelVersion
from registry.locations import CATALOG_FILE_NAME
from tests.servers import ADMIN_URLS, fresh_database

ENGINES = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(params=ENGINES)
def engine_reg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A registry whose catalog is a fresh SQLite file, PostgreSQL database or MariaDB database."""
    if request.param == "sqlite":
        with Registry(tmp_path / "reg") as registry:
            yield registry
        return
    for url in fresh_database(request.param):
        with Registry(catalog=url, store=tmp_path / "store") as registry:
            yield registry


def _typed_history(reg: Registry, name: str, key: str | None = None, version: int | None = None) -> list[MetricPoint]:
    """The history as the catalog read it before: typed columns, the portable ordering, ``MetricPoint(*row)``."""
    query = (
        select(VersionRow.version, MetricRow.key, MetricRow.value, MetricRow.step, MetricRow.timestamp)
        .join(VersionRow, VersionRow.id == MetricRow.version_id)
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .where(ModelRow.name == name, VersionRow.deleted_at.is_(None))
        .order_by(VersionRow.version, MetricRow.step.is_(None).desc(), MetricRow.step)
        .order_by(MetricRow.timestamp, MetricRow.id)
    )
    if key is not None:
        query = query.where(MetricRow.key == key)
    if version is not None:
        query = query.where(VersionRow.version == version)
    with reg._catalog.engine.connect() as connection:
        return [MetricPoint(*row) for row in connection.execute(query)]


def _identical(got: list[Any], expected: list[Any]) -> None:
    """Equal, and alike field by field in type too (an int is not a float, a naive time is not UTC)."""
    assert got == expected
    for mine, theirs in zip(got, expected, strict=True):
        assert type(mine) is type(theirs)
        assert [(type(v), v) for v in vars(mine).values()] == [(type(v), v) for v in vars(theirs).values()]
        assert mine.timestamp.tzinfo is UTC and hash(mine) == hash(theirs)


def test_metrics_history_is_what_the_typed_read_gave(engine_reg: Registry) -> None:
    reg = engine_reg
    for i in range(4):
        reg.register("h", [i], format="pickle", metrics={"acc": i / 3, "loss": 1 - i / 7, "acc ": 0.5})
    reg.log_metrics("h", 2, {"acc": 0.1, "loss": 0.2}, step=5)
    reg.log_metrics("h", 2, {"acc": 0.3}, step=-1)
    reg.log_metrics("h", 2, {"acc": 0.7})  # no step: sorts before the stepped values, after the registered one
    reg.log_metrics("h", 3, {"acc": 2.0**-1074, "loss": -0.0}, step=2**62)
    reg.log_metrics("h", 3, {"acc": 1e308}, step=0)
    reg.delete_version("h", 1)
    reg.register("other", [1], format="pickle", metrics={"acc": 9.0})
    for key in (None, "acc", "loss", "acc ", "missing"):
        _identical(reg.metrics_history("h", key), _typed_history(reg, "h", key))
    assert [p.version for p in reg.metrics_history("h", "acc")] == [2, 2, 2, 2, 3, 3, 3, 4]
    assert [p.step for p in reg.metrics_history("h", "acc") if p.version == 2] == [None, None, -1, 5]
    for version in (2, 3, 4):
        _identical(reg.version_history("h", version), _typed_history(reg, "h", version=version))


def test_metric_series_is_each_live_versions_current_value(engine_reg: Registry) -> None:
    reg = engine_reg
    for i in range(5):
        metrics = {"acc": i / 10} if i != 2 else {"loss": 0.5}
        reg.register("s", [i], format="pickle", metrics=metrics)
    reg.log_metrics("s", 4, {"acc": 0.99})
    reg.delete_version("s", 1)
    series = reg.metric_series("s", ["acc", "loss", "nothing"])
    assert series == {"acc": [(2, 0.1), (4, 0.99), (5, 0.4)], "loss": [(3, 0.5)], "nothing": []}
    assert list(series) == ["acc", "loss", "nothing"]
    assert all(type(pair) is tuple and type(pair[0]) is int and type(pair[1]) is float for pair in series["acc"])


def test_a_history_is_read_from_one_index_in_order_with_no_sort(reg: Registry, home: Path) -> None:
    """Without ``ix_metrics_history`` and the per-engine ordering SQLite sorts every version's points."""
    for i in range(3):
        reg.register("p", [i], format="pickle", metrics={"acc": 0.5})
    sql = str(history._HISTORY_OF_METRIC.compile(dialect=sqlite.dialect()))
    with sqlite3.connect(home / CATALOG_FILE_NAME) as db:
        plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + sql, (1, "acc")))
    assert "COVERING INDEX ix_metrics_history" in plan and "TEMP B-TREE" not in plan, plan


def test_nulls_first_is_spelled_per_engine() -> None:
    query = select(MetricRow.id).order_by(NullsFirst(MetricRow.step))
    spelled = {
        name: str(query.compile(dialect=dialect)).split("ORDER BY ")[1]
        for name, dialect in (("sqlite", sqlite.dialect()), ("postgresql", postgresql.dialect()))
    }
    assert spelled == {"sqlite": "metrics.step", "postgresql": "metrics.step NULLS FIRST"}
    assert str(query.compile(dialect=mysql.dialect())).endswith("ORDER BY metrics.step")


def test_utc_reads_what_the_column_type_reads(tmp_path: Path) -> None:
    """Every form SQLite's type parses, including those modelshelf never writes, and the servers' datetimes."""
    engine = create_engine(f"sqlite:///{tmp_path / 't.db'}")
    typed = UTCDateTime().dialect_impl(engine.dialect).result_processor(engine.dialect, None)  # type: ignore[func-returns-value]
    assert typed is not None
    texts = [
        "2026-12-03 16:30:00.123456",
        "2026-12-03 16:30:00.000000",
        "2026-12-03T16:30:00.123456",
        "2026-12-03 16:30:00",
        "2026-12-03",
        "2026-12-03 16:30:00+02:00",
        "2026-12-03 16:30:00.1+0200",
    ]
    for stamp in texts:
        assert utc(stamp) == typed(stamp) and utc(stamp).tzinfo is UTC, stamp  # type: ignore[union-attr]
    naive = datetime(2026, 12, 3, 16, 30, 0, 5, tzinfo=UTC).replace(tzinfo=None)  # as server drivers return it
    assert utc(naive) == naive.replace(tzinfo=UTC) and utc(None) is None
    with pytest.raises(ValueError):
        utc("not a time")
    assert raw(MetricRow.timestamp).name == "timestamp"


@dataclass(frozen=True)
class _WithPostInit:
    a: int

    def __post_init__(self) -> None:
        pass


@dataclass(frozen=True)
class _WithDefault:
    a: int
    b: list[int] = field(default_factory=list)


def test_only_plain_frozen_dataclasses_are_built_directly() -> None:
    assert plain_dataclass(MetricPoint, ("version", "key", "value", "step", "timestamp")) is MetricPoint
    with pytest.raises(TypeError, match="__post_init__"):
        plain_dataclass(_WithPostInit, ("a",))
    with pytest.raises(TypeError, match="has the fields"):
        plain_dataclass(_WithDefault, ("a",))
    with pytest.raises(TypeError, match="not a frozen dataclass"):
        plain_dataclass(dict, ())


def test_a_point_built_directly_is_a_point(reg: Registry) -> None:
    reg.register("b", [1], format="pickle", metrics={"acc": 0.5})
    (point,) = reg.metrics_history("b")
    again = pickle.loads(pickle.dumps(point))
    assert again == point and type(again) is MetricPoint and {point, again} == {point}
    with pytest.raises(AttributeError):
        point.value = 1.0  # type: ignore[misc]
    assert repr(point).startswith("MetricPoint(version=1, key='acc', value=0.5, step=None, timestamp=")


def _typed_versions(reg: Registry) -> dict[str, ModelVersion]:
    """Every live version, read the way the catalog read them before: typed columns, ``ModelVersion(...)``."""
    parent, parent_model = aliased(VersionRow, "typed_parent"), aliased(ModelRow, "typed_parent_model")
    version_columns, lineage_columns = VersionRow.__table__.c, LineageRow.__table__.c
    query = (
        select(
            *version_columns,
            ModelRow.name.label("model_name"),
            *(column.label(f"lineage_{column.key}") for column in lineage_columns),
            parent_model.name.label("parent_name"),
            parent.version.label("parent_number"),
        )
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .outerjoin(LineageRow, LineageRow.version_id == VersionRow.id)
        .outerjoin(parent, parent.id == LineageRow.parent_id)
        .outerjoin(parent_model, parent_model.id == parent.model_id)
        .where(VersionRow.deleted_at.is_(None))
    )
    found: dict[str, ModelVersion] = {}
    with reg._catalog.engine.connect() as connection:
        tags: dict[int, dict[str, str]] = {}
        for version_id, key, value in connection.execute(
            select(TagRow.version_id, TagRow.key, TagRow.value).order_by(TagRow.version_id, TagRow.key)
        ):
            tags.setdefault(version_id, {})[key] = value
        metrics: dict[int, dict[str, float]] = {}
        for version_id, key, number in connection.execute(
            select(LatestMetricRow.version_id, LatestMetricRow.key, LatestMetricRow.value).order_by(
                LatestMetricRow.version_id, LatestMetricRow.key
            )
        ):
            metrics.setdefault(version_id, {})[key] = number
        aliases: dict[int, list[str]] = {}
        for version_id, alias_name in connection.execute(select(AliasRow.version_id, AliasRow.alias)):
            aliases.setdefault(version_id, []).append(alias_name)
        for row in connection.execute(query).mappings():
            version = SimpleNamespace(**{column.key: row[column.key] for column in version_columns})
            lineage = (
                None
                if row["lineage_version_id"] is None
                else SimpleNamespace(**{column.key: row[f"lineage_{column.key}"] for column in lineage_columns})
            )
            name, parent_name, parent_number = row["model_name"], row["parent_name"], row["parent_number"]
            found[f"{name}:{version.version}"] = ModelVersion(
                name=name,
                version=version.version,
                checksum="sha256:" + version.blob_digest,
                size=version.size,
                format=version.format,
                created_at=version.created_at,
                params=version.params,
                metrics=metrics.get(version.id, {}),
                tags=tags.get(version.id, {}),
                description=version.description,
                environment=version.environment,
                aliases=tuple(sorted(aliases.get(version.id, []))),
                imports=None if version.imports is None else tuple(version.imports),
                hmac=version.signature,
                imports_scanned=bool(version.imports_scanned),
                lineage=None
                if lineage is None
                else Lineage(
                    git_commit=lineage.git_commit,
                    git_dirty=lineage.git_dirty,
                    script=lineage.script,
                    user=lineage.user_name,
                    host=lineage.host,
                    modelshelf_version=lineage.modelshelf_version,
                    data=None if lineage.data_digest is None else "sha256:" + lineage.data_digest,
                    data_shape=None if lineage.data_shape is None else tuple(lineage.data_shape),
                    data_columns=None if lineage.data_columns is None else tuple(lineage.data_columns),
                    parent=None if parent_name is None else f"{parent_name}:{parent_number}",
                ),
                input_signature=InputSignature.from_json(version.input_signature),
                blake3=version.blake3,
            )
    return found


def _populate(reg: Registry, iris: tuple[Any, Any]) -> None:
    """Versions with every kind of field: nested params, lineage with data and parents, signatures, aliases."""
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    model = LogisticRegression(max_iter=200).fit(X, y)
    reg.register("a", model, metrics={"acc": 0.9, "f1": 0.8}, tags={"team": "cv", "Team": "x"}, data=(X, y))
    reg.register("a", model, metrics={"acc": 0.95}, params={"grid": {"C": [1, 2]}, "s": "t"}, parent="a:1")
    reg.register("a", [1], format="pickle", params={"n": 3, "f": 3.0, "b": True, "z": None}, tags={"k": "v"})
    reg.register("b", {"x": 1}, format="pickle", metrics={"acc": 0.5}, description="a dict", alias="production")
    reg.register("b", [2], format="pickle", metrics={"acc": 0.7}, parent="a:2", tags={"team": "nlp"})
    reg.set_alias("a", "production", 2)
    reg.set_alias("a", "staging", 2)
    reg.log_metrics("a", 1, {"acc": 0.91})
    reg.delete_version("a", 3)


def _same(got: list[ModelVersion], expected: list[ModelVersion]) -> None:
    """Equal and printed alike: the repr shows types, dict order, tuples and time zones."""
    assert got == expected
    assert [repr(mv) for mv in got] == [repr(mv) for mv in expected]
    assert all(type(mv) is ModelVersion for mv in got)


def test_searches_listings_and_lookups_give_what_the_typed_read_gave(engine_reg: Registry, iris: Any) -> None:
    reg = engine_reg
    _populate(reg, iris)
    typed = _typed_versions(reg)
    everything = reg.search()
    _same(everything, [typed[ref] for ref in ("a:1", "a:2", "b:1", "b:2")])
    _same(
        reg.search(where="metrics.acc > 0.6", order_by="metrics.acc desc"), [typed["a:2"], typed["a:1"], typed["b:2"]]
    )
    _same(reg.search("a", where="tags.team = 'cv'"), [typed["a:1"]])
    _same(reg.versions("a"), [typed["a:1"], typed["a:2"]])
    _same(reg.versions_page("b", offset=1, limit=5).versions, [typed["b:2"]])
    _same([reg.get("a:1"), reg.latest("a"), reg.get("b@production")], [typed["a:1"], typed["a:2"], typed["b:1"]])
    _same([reg.best("a", "acc")], [typed["a:2"]])
    assert everything[0].lineage is not None and everything[0].lineage.data is not None
    assert everything[1].lineage is not None and everything[1].lineage.parent == "a:1"


def test_results_never_share_a_mutable_value(reg: Registry) -> None:
    """The environment every version shares is parsed once per read, but each version gets its own dicts."""
    for i in range(3):
        reg.register("m", [i], format="pickle", params={"p": [i]}, metrics={"acc": 0.5}, tags={"t": "v"})
    first, second, third = reg.search("m")
    assert first.environment == second.environment and first.environment is not second.environment
    first.environment["python"] = "changed"
    first.metrics["acc"] = 0.0
    first.tags["t"] = "changed"
    again = reg.search("m")
    assert again[1] == second and again[0].environment["python"] != "changed" and again[0].metrics == {"acc": 0.5}
    assert second.params is not third.params and third.params == {"p": [2]}


def test_a_driver_error_in_a_lookup_is_the_catalogs_error(reg: Registry, home: Path) -> None:
    """The lookups run on the driver's cursor; its errors still come out as modelshelf's, naming the catalog."""
    reg.register("m", [1], format="pickle", alias="prod")
    with sqlite3.connect(home / CATALOG_FILE_NAME) as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("DROP TABLE aliases")
    with pytest.raises(CatalogError, match="failed: no such table: aliases"):
        reg.get("m@prod")


def test_watched_engines_see_every_lookup_statement(reg: Registry) -> None:
    """With a cursor listener (logging, tracing) the lookups go through SQLAlchemy, and give the same answer."""
    reg.register("m", [1], format="pickle", tags={"t": "v"}, metrics={"acc": 0.5}, alias="prod")
    fast = [reg.get("m:1"), reg.latest("m"), reg.get("m@prod")]
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    engine = reg._catalog.engine
    event.listen(engine, "before_cursor_execute", listen)
    try:
        watched = [reg.get("m:1"), reg.latest("m"), reg.get("m@prod")]
    finally:
        event.remove(engine, "before_cursor_execute", listen)
    _same(watched, fast)
    assert sum("FROM versions JOIN models" in statement for statement in seen) == 3
    assert sum(statement == "BEGIN" for statement in seen) == 3
    assert sum("UNION ALL" in statement for statement in seen) == 3


def test_only_statements_the_driver_can_run_alone_are_prepared() -> None:
    with pytest.raises(TypeError, match="needs SQLAlchemy to bind it"):
        Prepared(select(VersionRow.id).where(VersionRow.id.in_(bindparam("ids", expanding=True))))._compiled(
            sqlite.dialect()
        )
    with pytest.raises(TypeError, match="needs SQLAlchemy to bind it"):
        Prepared(select(VersionRow.id).where(VersionRow.created_at > bindparam("t", type_=UTCDateTime())))._compiled(
            sqlite.dialect()
        )


@pytest.fixture(params=["postgresql", "mariadb"])
def server(request: pytest.FixtureRequest) -> Iterator[tuple[str, str]]:
    """(kind, URL) of a fresh PostgreSQL or MariaDB database."""
    for url in fresh_database(request.param):
        yield request.param, url


def test_a_lookup_whose_server_connection_dies_is_run_again(
    server: tuple[str, str], tmp_path: Path, caplog: pytest.LogCaptureFixture
) -> None:
    """The server kills the connection right after checkout: the driver's error is a lost connection, retried."""
    kind, url = server
    with Registry(catalog=url, store=tmp_path / "store") as reg:
        reg.register("m", [1], format="pickle", tags={"t": "v"})
        expected = reg.get("m:1")
        admin = create_engine(ADMIN_URLS[kind], isolation_level="AUTOCOMMIT")
        killed: list[int] = []

        def kill(dbapi_connection: Any, *_args: Any) -> None:
            if killed:
                return
            if kind == "postgresql":
                pid, statement = dbapi_connection.info.backend_pid, "SELECT pg_terminate_backend(:pid, 10000)"
            else:
                pid, statement = dbapi_connection.thread_id(), "KILL CONNECTION :pid"
            with admin.connect() as connection:
                connection.execute(text(statement), {"pid": pid})
            killed.append(pid)

        event.listen(reg._catalog.engine, "checkout", kill)  # a pool event: the lookup still runs on the driver
        try:
            with caplog.at_level(logging.INFO, logger="registry.catalog"):
                assert reg.get("m:1") == expected
        finally:
            event.remove(reg._catalog.engine, "checkout", kill)
            admin.dispose()
        assert len(killed) == 1
        assert [r.getMessage() for r in caplog.records] == ["lost the catalog connection in get; retry 1 of 3"]


def test_a_lookup_is_one_statement_on_every_engine(engine_reg: Registry) -> None:
    """The version and its tags, metrics and aliases in one statement: on a server, one round trip."""
    reg = engine_reg
    reg.register("m", [1], format="pickle", tags={"t": "v"}, metrics={"acc": 0.5}, alias="prod")
    seen: list[str] = []

    def listen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        seen.append(statement)

    event.listen(reg._catalog.engine, "before_cursor_execute", listen)
    try:
        for ref in ("m:1", "m", "m@prod"):
            seen.clear()
            mv = reg.get(ref)
            assert [statement.split()[0] for statement in seen if statement != "BEGIN"] == ["WITH"], seen
            assert (mv.tags, mv.metrics, mv.aliases) == ({"t": "v"}, {"acc": 0.5}, ("prod",))
    finally:
        event.remove(reg._catalog.engine, "before_cursor_execute", listen)
