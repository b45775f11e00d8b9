"""A selective equality starts a search's read: as many rows read as returned, not the model's every version."""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event

from registry import Registry
from registry.catalog.search import drives
from registry.query import parse_filter


def _populate(reg: Registry) -> None:
    for number in range(1, 41):
        reg.register(
            "m",
            [number],
            format="pickle",
            params={"k": number % 4, "solver": "lbfgs" if number % 2 else "saga"},
            metrics={"acc": (number % 3) / 2},
            tags={"team": "cv" if number % 5 else "nlp"},
        )
    reg.delete_version("m", 9)
    reg.register("other", [0], format="pickle", params={"k": 1}, metrics={"acc": 0.5})  # same values, another model


def _expected(reg: Registry, keep: Any) -> list[str]:
    return [mv.ref for mv in reg.versions("m") if keep(mv)]


@pytest.mark.parametrize("engine_kind", ["sqlite", "postgresql", "mariadb"])
def test_driven_searches_return_what_a_walk_returns(engine_kind: str, tmp_path: Path) -> None:
    if engine_kind == "sqlite":
        urls = iter([f"sqlite:///{tmp_path / 'catalog.db'}"])
    else:
        from tests.servers import fresh_database

        urls = fresh_database(engine_kind)
    for url in urls:
        with Registry(catalog=url, store=tmp_path / "store") as reg:
            _populate(reg)
            cases = {
                "params.k = 1": lambda mv: mv.params["k"] == 1,
                "params.k in (1, 2) and tags.team = 'cv'": lambda mv: (
                    mv.params["k"] in (1, 2) and mv.tags["team"] == "cv"
                ),
                "metrics.acc = 0.5 and params.solver = 'saga'": lambda mv: (
                    mv.metrics["acc"] == 0.5 and mv.params["solver"] == "saga"
                ),
            }
            for where, keep in cases.items():
                assert [mv.ref for mv in reg.search("m", where=where)] == _expected(reg, keep), where
                assert [mv.ref for mv in reg.search("m", where=where, limit=100)] == _expected(reg, keep), where


def test_a_selective_equality_starts_the_read_on_sqlite(tmp_path: Path) -> None:
    """EXPLAIN QUERY PLAN: the read starts at the param's index, not at the model's whole version index."""
    with Registry(tmp_path / "r") as reg:
        _populate(reg)
        seen: list[tuple[str, Any]] = []

        def record(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
            seen.append((statement, parameters))

        engine = reg._catalog.engine
        event.listen(engine, "before_cursor_execute", record)
        try:
            reg.search("m", where="params.k = 1")
        finally:
            event.remove(engine, "before_cursor_execute", record)
        ((statement, parameters),) = [(s, p) for s, p in seen if "param_values" in s]
        with sqlite3.connect(tmp_path / "r" / "catalog.db") as db:
            plan = " | ".join(row[3] for row in db.execute("EXPLAIN QUERY PLAN " + statement, parameters))
        assert "ix_param_values_key_number" in plan and "SEARCH versions USING INTEGER PRIMARY KEY" in plan, plan
        assert "sqlite_autoindex_versions_1" not in plan, plan  # no walk of the model's versions


def test_which_filters_drive() -> None:
    driving = ["params.k = 1", "params.k in (1, 2)", "metrics.acc = 0.5", "tags.team = 'cv' and params.flag = true"]
    walking = [
        "params.solver = 'saga'",  # indexed by key only: reaches every version having the key
        "tags.team = 'cv'",
        "not params.k = 1",
        "params.k != 1",
        "params.k not in (1, 2)",
        "params.k = 1 or tags.team = 'cv'",
        "metrics.acc > 0.5",
        "version > 3",
    ]
    assert all(drives(parse_filter(where)) for where in driving)
    assert not any(drives(parse_filter(where)) for where in walking)
