"""Two processes promoting at once under gates, on SQLite, PostgreSQL and MariaDB: one
order-consistent outcome.

m:1 (accuracy 0.90) is in production; m:2 (0.95) and m:3 (0.93) both pass
``no_regression("accuracy", 0.005)`` against m:1, but m:3 fails it against
m:2. Promoted at the same moment, the only outcomes consistent with *some*
order are: m:2 first (then m:3 is refused), or m:3 first (then m:2 passes
against it). Either way production ends at m:2, and every decision in the
trail compared with the target the alias had right then. Gates checked
before the transaction that moves the alias would let both compare with
m:1 and the last writer win: production at m:3, below m:2 by more than
the tolerance.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from tests import workers
from tests.servers import fresh_database

ACCURACY = {1: 0.90, 2: 0.95, 3: 0.93}
ROUNDS = 3


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from fresh_database("postgresql")


@pytest.fixture
def pool() -> Iterator[ProcessPoolExecutor]:
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("fork")) as executor:
        yield executor


def race(options: dict[str, Any], pool: ProcessPoolExecutor) -> None:
    for round_ in range(ROUNDS):
        name = f"m{round_}"
        with Registry(**options) as reg:
            for version, accuracy in ACCURACY.items():
                alias = "production" if version == 1 else None
                reg.register(name, {"v": version}, format="pickle", metrics={"accuracy": accuracy}, alias=alias)
        start_at = time.time() + 0.5
        futures = {v: pool.submit(workers.promote_at, options, name, v, start_at, 0.3) for v in (2, 3)}
        outcomes = {version: future.result(timeout=60) for version, future in futures.items()}
        with Registry(**options) as reg:
            assert reg.get(f"{name}@production").version == 2, outcomes
            decisions = [
                e for e in reg.events(name) if e.alias == "production" and e.action in ("alias.promote", "alias.refuse")
            ]
        assert len(decisions) == 2
        target = 1
        for event in decisions:  # each compared with the alias's target at its moment in the trail
            assert event.old == target
            assert event.new["verdicts"][0]["numbers"]["current"] == ACCURACY[target]
            if event.action == "alias.promote":
                target = event.version
        if outcomes[3] == "promoted":
            assert outcomes[2] == "promoted" and [e.version for e in decisions] == [3, 2]
        else:
            assert outcomes == {2: "promoted", 3: "refused"} and [e.version for e in decisions] == [2, 3]


def test_two_processes_promoting_at_once_on_sqlite(home: Path, pool: ProcessPoolExecutor) -> None:
    race({"home": str(home)}, pool)


@pytest.mark.parametrize("server", ["postgresql", "mariadb"])
def test_two_processes_promoting_at_once_on_a_server_catalog(
    server: str, tmp_path: Path, pool: ProcessPoolExecutor
) -> None:
    with contextlib.closing(fresh_database(server)) as database:  # dropped when the test ends, pass or fail
        race({"catalog": next(database), "store": str(tmp_path / "store")}, pool)


def test_a_protection_holds_on_postgresql_and_raw_sql_cannot_lift_it(
    postgres_url: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The stored gates round-trip through PostgreSQL's JSON, and the seal covers them there too."""
    from sqlalchemy import create_engine, text

    from registry import PromotionRefused, UntrustedArtifact

    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))
    options: dict[str, Any] = {"catalog": postgres_url, "store": str(tmp_path / "store"), "signing_key": "k" * 32}
    with Registry(**options) as reg:
        for version, accuracy in ACCURACY.items():
            reg.register("m", {"v": version}, format="pickle", metrics={"accuracy": accuracy})
        reg.protect_alias("m", "production", require=["no_regression:accuracy:0.005", "tagged:team=cv"])
        with pytest.raises(PromotionRefused, match="tagged:team=cv failed"):
            reg.set_alias("m", "production", 2)
        reg.set_tags("m", 3, {"team": "cv"})
        assert reg.set_alias("m", "production", 3).version == 3
    engine = create_engine(postgres_url)
    with engine.begin() as connection:
        connection.execute(text("DELETE FROM alias_protection"))
    engine.dispose()
    with Registry(**options) as reg, pytest.raises(UntrustedArtifact, match="protection of alias 'production'"):
        reg.set_alias("m", "production", 1)
