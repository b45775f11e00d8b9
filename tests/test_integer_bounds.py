"""Integers beyond what the catalog stores are refused as bad values, never handed to the database driver.

SQLite raises ``OverflowError`` for an int past 64 bits; psycopg sends it and
PostgreSQL answers "integer out of range" for a 32-bit column. Both used to
escape as raw errors; each public entry point now refuses such a value with
the error it raises for any other bad value of that parameter.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import InvalidReference, Registry
from registry.errors import CatalogError
from tests.cli_helpers import run_cli
from tests.servers import fresh_database

HOSTILE = [2**63, -(2**63) - 1, 2**70, True, 2**31]


@pytest.fixture(params=["sqlite", "postgresql", pytest.param("mariadb", marks=pytest.mark.slow)])  # ~2.5 s each
def reg(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Registry]:
    """A registry with one version of ``m``, on SQLite or on a real PostgreSQL or MariaDB server."""
    if request.param == "sqlite":
        urls: Iterator[str] = iter([f"sqlite:///{tmp_path / 'catalog.db'}"])
    else:
        urls = fresh_database(request.param)
    for url in urls:
        with Registry(catalog=url, store=str(tmp_path / "store")) as registry:
            registry.register("m", {"a": 1}, format="pickle")
            yield registry


def _entry_points(reg: Registry, tmp_path: Path) -> dict[str, tuple[Callable[[Any], object], type[Exception], str]]:
    """Each public call that takes an integer: (call with the value, the error it must raise, its message)."""
    version = (InvalidReference, "invalid version")
    return {
        "load(version=)": (lambda n: reg.load("m", version=n), *version),
        "get(version=)": (lambda n: reg.get("m", version=n), *version),
        "fetch(version=)": (lambda n: reg.fetch("m", tmp_path / "out", version=n), *version),
        "open_artifact(version=)": (lambda n: reg.open_artifact("m", version=n).__enter__(), *version),
        "ancestors(version=)": (lambda n: reg.ancestors("m", version=n), *version),
        "validate(version=)": (lambda n: reg.load("m", version=n, validate=True), *version),
        "set_alias": (lambda n: reg.set_alias("m", "prod", n), *version),
        "log_metrics(version)": (lambda n: reg.log_metrics("m", n, {"a": 1.0}), *version),
        "log_metrics(step=)": (lambda n: reg.log_metrics("m", 1, {"a": 1.0}, step=n), ValueError, "step"),
        "set_tags": (lambda n: reg.set_tags("m", n, {"a": "b"}), *version),
        "delete_version": (lambda n: reg.delete_version("m", n), *version),
        "search(limit=)": (lambda n: reg.search("m", limit=n), ValueError, "limit"),
        "events(limit=)": (lambda n: reg.events(limit=n), ValueError, "limit"),
        "search(where=version)": (lambda n: reg.search(where=f"version = {int(n)}"), ValueError, "filter"),
    }


@pytest.mark.parametrize("number", HOSTILE, ids=["2**63", "-2**63-1", "2**70", "True", "2**31"])
def test_every_integer_parameter_refuses_what_the_database_cannot_hold(
    reg: Registry, tmp_path: Path, number: int
) -> None:
    for what, (call, error, message) in _entry_points(reg, tmp_path).items():
        if what == "log_metrics(step=)" and number == 2**31:
            continue  # steps are 64-bit: 2**31 is a valid one
        if what == "search(where=version)" and number is True:
            continue  # a filter is text: "version = 1" is valid
        with pytest.raises(error, match=message) as raised:
            call(number)
        assert not isinstance(raised.value, (OverflowError, CatalogError)), f"{what}: {raised.value!r}"
    assert [mv.version for mv in reg.versions("m")] == [1]  # nothing was changed by any refused call
    assert reg.get("m").aliases == () and reg.get("m").tags == {}


@pytest.mark.parametrize(
    "args",
    [
        ["alias", "set", "m", "prod", str(2**63)],
        ["alias", "set", "m", "prod", str(2**31)],
        ["show", f"m:{2**31}"],
        ["search", "--limit", str(2**70)],
        ["log", "m", "--limit", str(2**63)],
    ],
    ids=["alias-2**63", "alias-2**31", "show-2**31", "search-limit", "log-limit"],
)
def test_the_cli_refuses_them_in_one_line_with_the_usage_exit_code(tmp_path: Path, args: list[str]) -> None:
    home = tmp_path / "home"
    with Registry(home) as registry:
        registry.register("m", {"a": 1}, format="pickle")
    result = run_cli(home, *args)
    assert result.exit_code == 2, result.output
    assert "Traceback" not in result.output and result.exception is None or isinstance(result.exception, SystemExit)
    assert len(result.output.strip().splitlines()) <= 3  # click's usage lines, or our one line
