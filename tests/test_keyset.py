"""Keyset pages (``versions_page(after=…)``), top-N reads that stop early, flat totals and metric names.

On a real SQLite file and on the PostgreSQL and MariaDB servers (skipped
without their URLs): walking the cursors gives exactly the offset pages,
ties and missing values included; an ordered, limited read is planned on an
index with no sort of the whole model; and the schema upgrade fills the
new columns of a catalog written at the previous head.
"""

from __future__ import annotations

import tempfile
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from hypothesis import given, settings
from hypothesis import strategies as st
from sqlalchemy import JSON, column, create_engine, event, insert, table, text

from registry import InvalidArgument, Registry
from registry.catalog import migrate
from tests.old_catalogs import write_blob

PREVIOUS_HEAD = "c7d41f0a9e2b"  # the head before latest_metrics.model_id and models.live_versions
ENGINES = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(params=ENGINES)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    from tests.servers import fresh_database

    yield from fresh_database(request.param)


def populate(reg: Registry) -> None:
    """Model ``m``: 23 versions, metric ``acc`` in three tied values, some lacking it, two deleted; and ``o``."""
    for number in range(1, 24):
        metrics = {} if number % 5 == 0 else {"acc": (number % 3) / 2, "loss": number / 10}
        reg.register(
            "m",
            [number],
            format="pickle",
            metrics=metrics,
            tags={"team": "cv" if number % 2 else "nlp"},
            params={"k": number % 4},
        )
    reg.delete_version("m", 7)
    reg.delete_version("m", 12)
    reg.register("o", [0], format="pickle", metrics={"other": 1.0, "acc": 9.0})


ORDERS = [
    None,
    "version desc",
    "created_at desc",
    "metrics.acc desc",
    "metrics.acc",
    "tags.team desc",
    "params.k",
    "metrics.acc desc, version desc",
]


def walk(reg: Registry, limit: int, **query: Any) -> list[str]:
    """Every page by cursor, from the first to the one without a next cursor."""
    refs: list[str] = []
    page = reg.versions_page("m", limit=limit, **query)
    while True:
        refs.extend(mv.ref for mv in page.versions)
        if page.next_cursor is None:
            return refs
        page = reg.versions_page("m", limit=limit, after=page.next_cursor, **query)


def by_offset(reg: Registry, limit: int, **query: Any) -> list[str]:
    refs: list[str] = []
    offset = 0
    while True:
        page = reg.versions_page("m", limit=limit, offset=offset, **query)
        refs.extend(mv.ref for mv in page.versions)
        offset += limit
        if offset >= page.total:
            return refs


def test_text_values_that_differ_past_a_kilobyte_page_in_order(catalog_url: str, tmp_path: Path) -> None:
    """MariaDB sorts text by its first 1,024 bytes by default; cursors compare whole values, so pages lost rows."""
    with Registry(catalog=catalog_url, store=tmp_path / "store") as reg:
        for number, last in enumerate("dcba", start=1):
            reg.register("m", [number], format="pickle", tags={"t": "x" * 1100 + last})
        order = [mv.ref for mv in reg.search("m", order_by="tags.t")]
        assert order == ["m:4", "m:3", "m:2", "m:1"]
        assert walk(reg, 1, order_by="tags.t") == order == by_offset(reg, 1, order_by="tags.t")


@pytest.mark.parametrize("where", [None, "tags.team = 'cv'", "metrics.loss > 0.5"])
def test_cursor_pages_are_the_offset_pages_on_every_engine(catalog_url: str, tmp_path: Path, where: str | None) -> None:
    with Registry(catalog=catalog_url, store=tmp_path / "store") as reg:
        populate(reg)
        for order_by in ORDERS:
            full = [mv.ref for mv in reg.search("m", where=where, order_by=order_by)]
            assert len(full) == len(set(full)) and full, order_by
            for limit in (1, 4, 7, 50):
                assert walk(reg, limit, where=where, order_by=order_by) == full, (order_by, limit)
                assert by_offset(reg, limit, where=where, order_by=order_by) == full, (order_by, limit)
            assert [mv.ref for mv in reg.search("m", where=where, order_by=order_by, limit=5)] == full[:5]
        assert reg.versions_page("m", where=where).total == len(reg.search("m", where=where))


def test_top_n_by_a_metric_puts_versions_lacking_it_last_on_every_engine(catalog_url: str, tmp_path: Path) -> None:
    with Registry(catalog=catalog_url, store=tmp_path / "store") as reg:
        populate(reg)
        live = [mv for mv in reg.versions("m")]
        having = sorted((mv for mv in live if "acc" in mv.metrics), key=lambda mv: (-mv.metrics["acc"], mv.version))
        lacking = [mv for mv in live if "acc" not in mv.metrics]
        expected = [mv.ref for mv in having + lacking]
        assert [mv.ref for mv in reg.search("m", order_by="metrics.acc desc", limit=len(live))] == expected
        deep = reg.versions_page("m", order_by="metrics.acc desc", offset=len(having) - 1, limit=3)
        assert [mv.ref for mv in deep.versions] == expected[len(having) - 1 : len(having) + 2]
        assert [mv.ref for mv in reg.search(order_by="metrics.acc desc", limit=1)] == ["o:1"]  # across models


def test_the_total_follows_registrations_and_deletions(tmp_path: Path) -> None:
    with Registry(tmp_path / "r") as reg:
        for number in range(5):
            reg.register("m", [number], format="pickle")
        reg.delete_version("m", 2)
        assert reg.versions_page("m").total == 4 == len(reg.versions("m"))
        reg.register("m", [9], format="pickle")
        reg.export_bundle(["m:6"], tmp_path / "b.tar")
    with Registry(tmp_path / "other") as other:
        other.register("m", [1], format="pickle")
        other.import_bundle(tmp_path / "b.tar", allow_unsigned=True)
        assert other.versions_page("m").total == 2 == len(other.versions("m"))


@settings(max_examples=25, deadline=None)
@given(
    values=st.lists(st.one_of(st.none(), st.sampled_from([0.0, 0.5, 1.0, -2.5])), min_size=1, max_size=18),
    deleted=st.sets(st.integers(1, 18), max_size=4),
    limit=st.integers(1, 6),
    descending=st.booleans(),
)
def test_ties_and_missing_values_paginate_without_skipping_or_repeating(
    values: list[float | None], deleted: set[int], limit: int, descending: bool
) -> None:
    """Heavy ties, versions without the metric, deleted versions: the cursor walk is the whole order, once."""
    with tempfile.TemporaryDirectory() as home, Registry(home) as reg:
        for value in values:
            reg.register("m", [0], format="pickle", metrics={} if value is None else {"acc": value})
        for number in deleted & set(range(1, len(values) + 1)):
            reg.delete_version("m", number)
        live = reg.versions("m")
        if not live:
            return
        sign = -1 if descending else 1
        having = sorted(
            (mv for mv in live if "acc" in mv.metrics), key=lambda mv: (sign * mv.metrics["acc"], mv.version)
        )
        expected = [mv.ref for mv in having] + [mv.ref for mv in live if "acc" not in mv.metrics]
        order_by = "metrics.acc desc" if descending else "metrics.acc"
        assert walk(reg, limit, order_by=order_by) == expected
        assert walk(reg, limit, order_by="version desc") == [mv.ref for mv in reversed(live)]


def test_bad_cursors_are_refused_with_what_to_do(tmp_path: Path) -> None:
    import base64
    import json

    with Registry(tmp_path / "r") as reg:
        for number in range(4):
            reg.register("m", [number], format="pickle", metrics={"acc": number / 4})
        cursor = reg.versions_page("m", order_by="metrics.acc desc", limit=2).next_cursor
        assert cursor is not None
        version, fingerprint, values = json.loads(base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)))

        def forged(*parts: object) -> str:
            return base64.urlsafe_b64encode(json.dumps(list(parts)).encode()).decode()

        bad = {
            "not base64 at all!": "not a page cursor",
            cursor[:-5]: "not a page cursor",
            forged(version, fingerprint, ["high", 2]): "holds 'high' where a float belongs",
            forged(version, fingerprint, [0.5]): "does not match its order",
            forged(version + 1, fingerprint, values): "not a page cursor",
            forged(version, "0" * 16, values): "another model, filter or order",
            # hostile: a JSON nesting bomb, integers no column holds, a NaN, a cursor of megabytes
            base64.urlsafe_b64encode(b"[" * 100_000).decode(): "not a page cursor",
            forged(version, fingerprint, [0.5, 2**63]): "where a int belongs",
            forged(version, fingerprint, [10**400, 2]): "where a float belongs",
            forged(version, fingerprint, [float("nan"), 2]): "where a float belongs",
            "A" * (300 * 1024): "more than any cursor",
        }
        for after, message in bad.items():
            with pytest.raises(InvalidArgument, match=message) as error:
                reg.versions_page("m", order_by="metrics.acc desc", limit=2, after=after)
            assert "next_cursor" in str(error.value)
        with pytest.raises(InvalidArgument, match="another model, filter or order"):
            reg.versions_page("m", order_by="metrics.acc", limit=2, after=cursor)
        with pytest.raises(InvalidArgument, match="another model, filter or order"):
            reg.versions_page("m", where="metrics.acc > 0", order_by="metrics.acc desc", limit=2, after=cursor)
        with pytest.raises(InvalidArgument, match="not both"):
            reg.versions_page("m", order_by="metrics.acc desc", limit=2, offset=2, after=cursor)
        with pytest.raises(InvalidArgument, match="a str"):
            reg.versions_page("m", limit=2, after=12)  # type: ignore[arg-type]
        follow = reg.versions_page("m", order_by="metrics.acc desc", limit=2, after=cursor)
        assert [mv.version for mv in follow.versions] == [2, 1] and follow.next_cursor is None


@contextmanager
def statements(reg: Registry) -> Iterator[list[tuple[str, Any]]]:
    """The statements the registry's engine sends, with their parameters."""
    seen: list[tuple[str, Any]] = []

    def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        seen.append((statement, parameters))

    engine = reg._catalog.engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def plans(reg: Registry, seen: list[tuple[str, Any]], touching: str) -> list[str]:
    """The plan of each recorded statement that reads ``touching`` ordered and limited, as text."""
    found = []
    engine = reg._catalog.engine
    with engine.connect() as connection:
        if engine.dialect.name == "postgresql":  # the tables are tiny: ask whether an index-ordered plan exists
            connection.exec_driver_sql("SET enable_seqscan = off")
            connection.exec_driver_sql("SET enable_sort = off")
        for statement, parameters in seen:
            if touching not in statement or "LIMIT" not in statement.upper():
                continue
            prefix = "EXPLAIN QUERY PLAN " if engine.dialect.name == "sqlite" else "EXPLAIN "
            rows = connection.exec_driver_sql(prefix + statement, parameters).all()
            found.append("\n".join(str(row[-1]) for row in rows))
    return found


@pytest.mark.parametrize("engine_kind", ["sqlite", "postgresql"])
def test_a_top_n_read_walks_an_index_and_sorts_no_whole_model(engine_kind: str, tmp_path: Path) -> None:
    """EXPLAIN QUERY PLAN (SQLite) / EXPLAIN (PostgreSQL): the metric's index is read in order; no full sort."""
    if engine_kind == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'catalog.db'}"])
    else:
        from tests.servers import fresh_database

        urls = fresh_database("postgresql")
    for url in urls:
        with Registry(catalog=url, store=tmp_path / "store") as reg:
            populate(reg)
            with statements(reg) as seen:
                reg.versions_page("m", order_by="metrics.acc desc", limit=3)
                reg.versions_page("m", order_by="metrics.acc", limit=3)
                reg.search("m", where="tags.team = 'cv' and metrics.loss > 0.5", order_by="metrics.acc desc", limit=2)
                assert reg.best("m", "acc").version == 23 and reg.best("m", "acc", mode="min").version == 21
            metric_plans = plans(reg, seen, "sort_metric")
            assert len(metric_plans) == 5
            for plan in metric_plans:
                assert "ix_latest_metrics_model_id" in plan, plan
                if engine_kind == "sqlite":
                    assert "TEMP B-TREE" not in plan, plan  # not even of a tie group: ties come out by version
                    assert "LIST SUBQUERY" not in plan, plan  # filters probe per row, not read whole first
                else:
                    assert plan.splitlines()[0].startswith("Limit"), plan
                    assert "Sort" not in plan and "Seq Scan" not in plan, plan
            with statements(reg) as seen:
                reg.versions_page("m", order_by="version desc", limit=3)
            (version_plan,) = plans(reg, seen, "ORDER BY versions.version DESC")
            assert "ORDER BY" not in version_plan if engine_kind == "sqlite" else "Sort" not in version_plan


def test_metric_names_are_the_models_own_read_by_index(tmp_path: Path) -> None:
    with Registry(tmp_path / "r") as reg:
        populate(reg)
        reg.register("m", [0], format="pickle", metrics={"zeta": 1.0})
        reg.delete_version("m", 24)  # the only version with zeta
        with statements(reg) as seen:
            assert reg.metric_names("m") == ["acc", "loss"]
        assert reg.metric_names("o") == ["acc", "other"]
        scans = plans(reg, seen, "latest_metrics")
        assert scans and all("ix_latest_metrics_model_id (model_id=?" in plan for plan in scans), scans


def test_a_catalog_of_the_previous_head_with_data_upgrades_on_every_engine(catalog_url: str, tmp_path: Path) -> None:
    """latest_metrics.model_id filled from versions, live_versions counted; down and up again keeps it all."""
    engine = create_engine(catalog_url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), PREVIOUS_HEAD)
    store = tmp_path / "store"
    digest, data = write_blob(store, {"old": True})
    now = datetime(2026, 1, 1)  # noqa: DTZ001  (the catalog stores naive UTC)

    def row(connection: Any, table_name: str, **values: object) -> None:
        columns = [column(key, JSON() if key in ("params", "environment") else None) for key in values]
        connection.execute(insert(table(table_name, *columns)), values)

    with engine.begin() as connection:
        row(connection, "blobs", digest=digest, size=len(data), created_at=now)
        for name, count in (("a", 4), ("b", 2)):
            row(connection, "models", name=name, last_version=count, created_at=now)
            model = connection.execute(text(f"SELECT id FROM models WHERE name = '{name}'")).scalar_one()
            for number in range(1, count + 1):
                deleted = now if (name, number) == ("a", 2) else None
                row(connection, "versions", model_id=model, version=number, blob_digest=digest, size=len(data),
                    format="pickle", params={}, environment={}, created_at=now, deleted_at=deleted)  # fmt: skip
                version_id = connection.execute(
                    text(f"SELECT id FROM versions WHERE model_id = {model} AND version = {number}")
                ).scalar_one()
                row(connection, "latest_metrics", version_id=version_id, key=f"{name}_acc", value=number / 10)
    engine.dispose()
    with Registry(catalog=catalog_url, store=store, upgrade=True) as reg:
        assert reg.metric_names("a") == ["a_acc"] and reg.metric_names("b") == ["b_acc"]
        assert reg.versions_page("a").total == 3 and reg.versions_page("b").total == 2
        top = reg.versions_page("a", order_by="metrics.a_acc desc", limit=2)
        assert [mv.ref for mv in top.versions] == ["a:4", "a:3"]
        assert [
            mv.ref for mv in reg.versions_page("a", order_by="metrics.a_acc desc", after=top.next_cursor).versions
        ] == ["a:1"]
        assert reg.load("a:4") == {"old": True}
    engine = create_engine(catalog_url)
    with engine.begin() as connection:
        config = migrate.alembic_config(connection)
        command.downgrade(config, PREVIOUS_HEAD)
        command.upgrade(config, "head")
        command.check(config)
        assert connection.execute(text("SELECT COUNT(*) FROM latest_metrics WHERE model_id IS NULL")).scalar() == 0
    engine.dispose()
    with Registry(catalog=catalog_url, store=store) as reg:
        assert reg.versions_page("a").total == 3 and reg.metric_names("b") == ["b_acc"]
