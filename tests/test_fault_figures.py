"""The fault figures for issue 12's note: faults injected, operations failed, retried, anything lost.

A registration loop (80 registrations of one model, then 30 loads) runs
while another thread keeps breaking its catalog connections: on PostgreSQL by
``pg_terminate_backend`` from an administrative session, on PostgreSQL and
MariaDB by a TCP proxy that cuts every connection through it. The faults land
wherever they happen to (the deterministic cases are in
``test_server_faults.py``); whatever the timing, every operation must succeed
or fail with ``CatalogError``, the versions must be contiguous, every version
must load its own object and ``verify`` must find nothing wrong. Run with
``-s`` to see the figures::

    python -m pytest tests/test_fault_figures.py -s -p no:randomly
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from registry import CatalogError, CommitOutcomeUnknown, Registry
from tests.proxies import proxy
from tests.servers import fresh_database
from tests.test_server_faults import Retries, counting_retries, proxied

pytestmark = pytest.mark.slow

REGISTRATIONS = 80
LOADS = 30
APPLICATION = "modelshelf-under-fault"
#: Seconds between two faults: several per second, so that most transactions meet at most one.
INTERVAL = 0.2


@pytest.fixture
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from fresh_database(request.param)


@pytest.fixture
def counted() -> Iterator[Retries]:
    """The catalog's retries, counted from its log."""
    with counting_retries() as handler:
        yield handler


@dataclass
class Figures:
    faults: int = 0
    registered: int = 0
    loaded: int = 0
    failed: int = 0
    unknown_outcome: int = 0
    retried: int = 0
    lost: int = 0

    def line(self, what: str) -> str:
        return (
            f"{what}: {self.faults} faults injected; {REGISTRATIONS} registrations ({self.registered} ok), "
            f"{LOADS} loads ({self.loaded} ok); {self.failed} failed with CatalogError "
            f"({self.unknown_outcome} of them outcome unknown at COMMIT); {self.retried} retried; {self.lost} lost"
        )


def run_under_fault(reg: Registry, inject: Callable[[], int], retries: Retries) -> Figures:
    """Register and load while ``inject`` (returning the faults it caused) is called in a loop on a thread."""
    figures = Figures()
    stop = threading.Event()

    def keep_breaking() -> None:
        while not stop.wait(INTERVAL):
            figures.faults += inject()

    breaker = threading.Thread(target=keep_breaking, daemon=True)
    breaker.start()
    registered: dict[int, int] = {}
    try:
        for i in range(REGISTRATIONS):
            try:
                registered[reg.register("m", {"i": i}, format="pickle").version] = i
                figures.registered += 1
            except CommitOutcomeUnknown:
                figures.failed += 1
                figures.unknown_outcome += 1
            except CatalogError:
                figures.failed += 1
        for n in range(LOADS):
            version = sorted(registered)[n % len(registered)]
            try:
                assert reg.load(f"m:{version}") == {"i": registered[version]}
                figures.loaded += 1
            except CatalogError:
                figures.failed += 1
    finally:
        stop.set()
        breaker.join(10)
    figures.retried = retries.count
    versions = [mv.version for mv in reg.versions("m")]
    assert versions == list(range(1, len(versions) + 1))  # contiguous, never a number given twice
    assert set(registered) <= set(versions)
    # every recorded version, committed or of unknown outcome, loads an object this loop registered
    figures.lost = sum(1 for version in registered if reg.load(f"m:{version}") != {"i": registered[version]})
    assert len(versions) - len(registered) <= figures.unknown_outcome
    report = reg.verify(deep=True)
    assert report.ok, report.problems  # no row without its blob
    return figures


@pytest.mark.parametrize("server_url", ["postgresql"], indirect=True)
def test_figures_with_postgres_backends_terminated(
    server_url: str, tmp_path: Path, counted: Retries, capsys: pytest.CaptureFixture[str]
) -> None:
    admin = create_engine(server_url, isolation_level="AUTOCOMMIT")
    victim = make_url(server_url).update_query_dict({"application_name": APPLICATION})

    def terminate() -> int:
        with admin.connect() as connection:
            return len(
                connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE application_name = :name AND pid <> pg_backend_pid()"
                    ),
                    {"name": APPLICATION},
                ).all()
            )

    try:
        with Registry(catalog=victim.render_as_string(hide_password=False), store=tmp_path / "store") as reg:
            figures = run_under_fault(reg, terminate, counted)
    finally:
        admin.dispose()
    with capsys.disabled():
        print("\n" + figures.line("PostgreSQL, pg_terminate_backend"))
    assert figures.faults > 0 and figures.lost == 0


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_figures_with_connections_cut_by_a_proxy(
    server_url: str, tmp_path: Path, counted: Retries, capsys: pytest.CaptureFixture[str]
) -> None:
    parsed = make_url(server_url)
    with proxy(parsed.host or "127.0.0.1", parsed.port or 0) as cutter:
        with Registry(catalog=proxied(server_url, cutter), store=tmp_path / "store") as reg:
            figures = run_under_fault(reg, cutter.cut, counted)
    with capsys.disabled():
        print("\n" + figures.line(f"{parsed.get_backend_name()}, TCP proxy cutting connections"))
    assert figures.faults > 0 and figures.lost == 0
