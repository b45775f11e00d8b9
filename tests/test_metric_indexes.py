"""Metric indexes in version order: ``metrics`` and ``latest_metrics`` repeat the version's number.

A catalog of the previous head, with data, upgrades on every engine: the
copies are filled from ``versions``, history and tie order read through
them give what they gave before, and down and up again keeps it all.
"""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest
from alembic import command
from sqlalchemy import JSON, column, create_engine, insert, table, text

from registry import Registry
from registry.catalog import migrate
from tests.old_catalogs import write_blob

PREVIOUS_HEAD = "e5b3a1c9d7f2"  # the head before metrics.model_id/version and latest_metrics.version


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    from tests.servers import fresh_database

    yield from fresh_database(request.param)


def _old_catalog(url: str, store: Path) -> None:
    """Models ``a`` (5 versions, the 3rd deleted) and ``b`` (2), with histories and ties, at the previous head."""
    engine = create_engine(url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), PREVIOUS_HEAD)
    digest, data = write_blob(store, {"old": True})
    now = datetime(2026, 1, 1)  # noqa: DTZ001  (the catalog stores naive UTC)

    def row(connection: Any, table_name: str, **values: object) -> None:
        columns = [column(key, JSON() if key in ("params", "environment") else None) for key in values]
        connection.execute(insert(table(table_name, *columns)), values)

    with engine.begin() as connection:
        row(connection, "blobs", digest=digest, size=len(data), created_at=now)
        for name, count in (("a", 5), ("b", 2)):
            live = count - (name == "a")
            row(connection, "models", name=name, last_version=count, live_versions=live, created_at=now)
            model = connection.execute(text(f"SELECT id FROM models WHERE name = '{name}'")).scalar_one()
            for number in range(1, count + 1):
                deleted = now if (name, number) == ("a", 3) else None
                row(connection, "versions", model_id=model, version=number, blob_digest=digest, size=len(data),
                    format="pickle", params={}, environment={}, created_at=now, deleted_at=deleted)  # fmt: skip
                version_id = connection.execute(
                    text(f"SELECT id FROM versions WHERE model_id = {model} AND version = {number}")
                ).scalar_one()
                tied = 0.5 if number % 2 else 0.25  # a: 1, 3, 5 tie at 0.5 and 2, 4 at 0.25
                for step, value in ((None, tied), (1, tied + 1)):
                    row(connection, "metrics", version_id=version_id, key="acc", value=value, step=step, timestamp=now)
                row(connection, "latest_metrics", version_id=version_id, key="acc", value=tied, model_id=model)
    engine.dispose()


def _check(reg: Registry) -> None:
    history = reg.metrics_history("a", "acc")
    assert [(p.version, p.step, p.value) for p in history] == [
        (number, step, (0.5 if number % 2 else 0.25) + (step or 0)) for number in (1, 2, 4, 5) for step in (None, 1)
    ]
    assert [p.version for p in reg.metrics_history("b", "acc")] == [1, 1, 2, 2]
    down = reg.versions_page("a", order_by="metrics.acc desc", limit=2)
    assert [mv.version for mv in down.versions] == [1, 5]
    rest = reg.versions_page("a", order_by="metrics.acc desc", limit=2, after=down.next_cursor)
    assert [mv.version for mv in rest.versions] == [2, 4] and rest.next_cursor is None
    assert [mv.version for mv in reg.versions_page("a", order_by="metrics.acc").versions] == [2, 4, 1, 5]
    assert reg.best("a", "acc").version == 5  # on a tie the newest


def test_a_catalog_of_the_previous_head_with_data_upgrades_on_every_engine(catalog_url: str, tmp_path: Path) -> None:
    store = tmp_path / "store"
    _old_catalog(catalog_url, store)
    with Registry(catalog=catalog_url, store=store, upgrade=True) as reg:
        _check(reg)
        reg.register("a", [6], format="pickle", metrics={"acc": 0.5})  # written with the copies by the new code
        assert [mv.version for mv in reg.versions_page("a", order_by="metrics.acc desc", limit=3).versions] == [1, 5, 6]
        reg.delete_version("a", 6)
    engine = create_engine(catalog_url)
    copies = (
        "SELECT COUNT(*) FROM {table} JOIN versions ON versions.id = {table}.version_id"
        " WHERE {table}.version = versions.version AND {table}.model_id = versions.model_id"
    )
    with engine.begin() as connection:
        for name in ("metrics", "latest_metrics"):
            total = connection.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar()
            assert total and connection.execute(text(copies.format(table=name))).scalar() == total
        config = migrate.alembic_config(connection)
        command.downgrade(config, PREVIOUS_HEAD)
        command.upgrade(config, "head")
        command.check(config)
        for name in ("metrics", "latest_metrics"):
            total = connection.execute(text(f"SELECT COUNT(*) FROM {name}")).scalar()
            assert connection.execute(text(copies.format(table=name))).scalar() == total
    engine.dispose()
    with Registry(catalog=catalog_url, store=store) as reg:
        _check(reg)
