"""``model_summaries`` (what ``modelshelf models`` lists): its "updated" time follows every change of a model."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import event, text

from registry import Registry
from registry.catalog.reads import _SUMMARIES


def _updated(reg: Registry) -> dict[str, datetime | None]:
    return {summary.name: summary.updated_at for summary in reg.model_summaries()}


CHANGES: dict[str, Callable[[Registry], Any]] = {
    "alias set": lambda reg: reg.set_alias("a", "production", 1),
    "alias moved": lambda reg: reg.set_alias("a", "staging", 1),
    "alias removed": lambda reg: reg.delete_alias("a", "staging"),
    "tags set": lambda reg: reg.set_tags("a", 1, {"reviewed": "yes"}),
    "tags removed": lambda reg: reg.set_tags("a", 1, remove=["team"]),
    "metrics logged": lambda reg: reg.log_metrics("a", 1, {"accuracy": 0.5}, step=1),
    "version registered": lambda reg: reg.register("a", {"w": 3}, format="pickle"),
    "version deleted": lambda reg: reg.delete_version("a", 2),
}


@pytest.mark.parametrize("change", list(CHANGES))
def test_updated_is_the_time_of_the_last_change_of_any_kind(reg: Registry, change: str) -> None:
    reg.register("a", {"w": 1}, format="pickle", tags={"team": "cv"})
    reg.register("a", {"w": 2}, format="pickle", alias="staging")
    reg.register("b", {"w": 1}, format="pickle")
    before = _updated(reg)
    CHANGES[change](reg)
    after = _updated(reg)
    assert after["a"] is not None and before["a"] is not None and after["a"] > before["a"], change
    assert after["a"] == reg.events("a")[-1].at  # the newest event of the trail, whatever its kind
    assert after["b"] == before["b"]  # the other model is untouched


def test_a_deleted_latest_version_still_counts_as_a_change(reg: Registry) -> None:
    reg.register("a", {"w": 1}, format="pickle")
    first = reg.register("a", {"w": 2}, format="pickle").created_at
    reg.delete_version("a", 2)
    (summary,) = reg.model_summaries()
    assert (summary.latest_version, summary.version_count) == (1, 1)
    assert summary.updated_at is not None and summary.updated_at > first


def test_the_summaries_are_one_statement_that_seeks_the_events_index(reg: Registry) -> None:
    for name in ("a", "b", "c"):
        reg.register(name, {"w": 1}, format="pickle", alias="production")
    engine = reg._catalog.engine
    statements: list[str] = []

    def record(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement)

    event.listen(engine, "before_cursor_execute", record)
    try:
        reg.model_summaries()
    finally:
        event.remove(engine, "before_cursor_execute", record)
    queries = [s for s in statements if s.lstrip().upper().startswith("SELECT")]
    assert sum("events" in s for s in queries) == 1 and len(queries) == 2  # the summaries, then the aliases
    with engine.connect() as connection:
        compiled = str(_SUMMARIES.compile(engine, compile_kwargs={"literal_binds": True}))
        plan = " | ".join(row[3] for row in connection.execute(text(f"EXPLAIN QUERY PLAN {compiled}")))
    assert "SEARCH events USING INDEX ix_events_model_id" in plan, plan
    assert "SCAN events" not in plan, plan


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def catalog(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A fresh catalog on each engine (the server ones are in the slow lane, by their parameter)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    from tests.servers import fresh_database

    yield from fresh_database(request.param)


def test_updated_follows_an_alias_change_on_every_engine(catalog: str, tmp_path: Path) -> None:
    with Registry(catalog=catalog, store=tmp_path / "store") as reg:
        reg.register("a", {"w": 1}, format="pickle")
        reg.register("b", {"w": 1}, format="pickle")
        before = _updated(reg)
        reg.set_alias("a", "production", 1)
        after = _updated(reg)
        assert after["a"] == reg.events("a")[-1].at and after["a"] > before["a"]  # type: ignore[operator]
        assert after["b"] == before["b"] and [s.version_count for s in reg.model_summaries()] == [1, 1]
