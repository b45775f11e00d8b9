"""Shared fixtures: real registry directories in temporary folders, real fitted models.

A brand-new registry costs one Alembic migration (about a quarter of a
second), so the session migrates one template catalog and each test that
wants an empty registry gets a copy of that file — still a real SQLite
database in a real directory.
"""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from registry.locations import CATALOG_FILE_NAME


@pytest.fixture(scope="session", autouse=True)
def _scratch_working_directory(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Path]:
    """Every test runs in a scratch directory, not the checkout (why: :mod:`tests.scratch`)."""
    scratch = tmp_path_factory.mktemp("working-directory")
    before = os.getcwd()
    os.chdir(scratch)
    try:
        yield scratch
    finally:
        os.chdir(before)


@pytest.fixture(autouse=True)
def _own_cache_dir(tmp_path_factory: pytest.TempPathFactory, monkeypatch: pytest.MonkeyPatch) -> None:
    """Never the user's cache: a keyed registry remembers the catalog states it saw there (anti-rollback)."""
    if not os.environ.get("MODELSHELF_CACHE"):
        monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path_factory.mktemp("cache")))


#: The S3-protocol servers every test using the ``s3`` fixture runs against: the store must not be tuned to one.
S3_SERVERS = ("moto", "s3rver")


@pytest.fixture(scope="session")
def moto_server() -> Iterator[Any]:
    """moto's S3 server, started once for the session."""
    from tests.servers import run_moto

    with run_moto() as server:
        yield server


@pytest.fixture(scope="session")
def s3rver_server() -> Iterator[Any]:
    """s3rver, started once for the session (skipped, or failed in CI, where it is not installed)."""
    from tests.servers import run_s3rver

    with run_s3rver() as server:
        yield server


#: Fixtures that reach a server (an S3 protocol server, PostgreSQL or MariaDB): every test using one is slow.
SERVER_FIXTURES = frozenset(
    {"s3", "moto_server", "s3rver_server", "s3rver", "bucket", "server_url", "postgres_url", "engine_url"}
)

#: Parameter values that name a server backend (``"postgresql+s3"``, ``"mariadb"``…): such a case is slow.
SERVER_KINDS = frozenset({"postgresql", "mariadb", "s3", "s3rver", "moto"})


def _names_a_server(value: object) -> bool:
    return isinstance(value, str) and bool(SERVER_KINDS & set(value.split("+")))


#: Thread pools of the native libraries, one thread each unless the caller says otherwise (see pytest_configure).
SINGLE_THREADED = ("OMP_NUM_THREADS", "OPENBLAS_NUM_THREADS", "MKL_NUM_THREADS")


def pytest_configure(config: pytest.Config) -> None:
    """Tell :mod:`tests.lanes` whether this run is the fast lane; one native thread; temporary directories in RAM.

    The tests fit and predict on iris-sized data, where OpenMP's second
    thread only waits: with the cores shared by other jobs, a
    HistGradientBoostingClassifier fit took 0.07-2 s on two threads and
    0.04 s on one. The variables are read when numpy and scikit-learn load
    their libraries, which no module imported so far has done; child
    processes inherit them. pytest makes its base temporary directory on
    first use, after this hook, so the root chosen here
    (:func:`tests.scratch.ram_temp_root`) applies to every ``tmp_path``.
    """
    from tests import lanes
    from tests.scratch import ram_temp_root

    lanes.fast_lane = "not slow" in (config.getoption("markexpr", "") or "")
    for variable in SINGLE_THREADED:
        os.environ.setdefault(variable, "1")
    root = ram_temp_root()
    if root is not None and config.getoption("basetemp", None) is None:
        os.environ["PYTEST_DEBUG_TEMPROOT"] = root


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The fast lane's policy, in one place: ``-m "not slow"`` leaves out what is slow by nature.

    Slow by nature: servers (found here from the fixtures and parameters a test
    uses), and the modules and tests :data:`tests.lanes.SLOW` names (process
    pools, subprocesses, git repositories, lint runs, big artifacts).
    Everything still runs by default; a test can also carry
    ``@pytest.mark.slow`` itself.
    """
    from tests.lanes import is_slow

    slow = pytest.mark.slow
    for item in items:
        params = getattr(getattr(item, "callspec", None), "params", {})
        if (
            SERVER_FIXTURES & set(getattr(item, "fixturenames", ()))
            or any(_names_a_server(value) for value in params.values())
            or is_slow(item.path.name, item.originalname if isinstance(item, pytest.Function) else item.name)
        ):
            item.add_marker(slow)


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Every test that uses ``s3`` (directly or through a fixture) runs once per server of :data:`S3_SERVERS`."""
    if "s3" in metafunc.fixturenames:
        metafunc.parametrize("s3", S3_SERVERS, indirect=True)


@pytest.fixture
def s3(request: pytest.FixtureRequest) -> Iterator[str]:
    """An S3-protocol server's endpoint, the AWS variables pointing at it for this test.

    Parametrized over :data:`S3_SERVERS`; requested by name at run time
    (``request.getfixturevalue("s3")``) it is moto's, and ``s3rver`` is the other.
    """
    from tests.servers import s3_environment

    server = request.getfixturevalue(f"{getattr(request, 'param', 'moto')}_server")
    with s3_environment(server) as endpoint:
        yield endpoint


@pytest.fixture
def s3rver(s3rver_server: Any) -> Iterator[str]:
    """s3rver's endpoint, the AWS variables pointing at it for this test (for run-time requests)."""
    from tests.servers import s3_environment

    with s3_environment(s3rver_server) as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def template_home(tmp_path_factory: pytest.TempPathFactory) -> Path:
    home = tmp_path_factory.mktemp("template")
    Registry(home).close()
    return home


@pytest.fixture
def home(tmp_path: Path, template_home: Path) -> Path:
    """An empty, migrated registry directory of this test's own."""
    path = tmp_path / "registry"
    path.mkdir()
    shutil.copyfile(template_home / CATALOG_FILE_NAME, path / CATALOG_FILE_NAME)
    return path


@pytest.fixture
def reg(home: Path) -> Iterator[Registry]:
    with Registry(home) as registry:
        yield registry


@pytest.fixture(scope="session")
def iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


@pytest.fixture(scope="session")
def knn(iris: tuple[Any, Any]) -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = iris
    return KNeighborsClassifier(n_neighbors=3).fit(X, y)


@pytest.fixture(scope="session")
def pipeline(iris: tuple[Any, Any]) -> Any:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    return make_pipeline(StandardScaler(), LogisticRegression(C=0.5, max_iter=300)).fit(X, y)


def blob_files(home: Path) -> list[Path]:
    """Every published blob under a registry directory."""
    return sorted(p for p in (home / "blobs").rglob("*") if p.is_file())


def temp_files(home: Path) -> list[Path]:
    """Every temporary file left under a registry directory."""
    tmp = home / "tmp"
    return sorted(tmp.iterdir()) if tmp.exists() else []


@pytest.fixture(scope="session")
def built_wheel(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The project built as a wheel, once per run: the packaging tests all read the same one."""
    wheels = tmp_path_factory.mktemp("wheels")
    root = Path(__file__).resolve().parents[1]
    subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q", "-w", str(wheels), str(root)],
        check=True,
        capture_output=True,
    )
    (wheel,) = wheels.glob("modelshelf-*.whl")
    return wheel


def sql(home: Path, *statements: str) -> None:
    """Run ``statements`` on the SQLite catalog of ``home`` directly, as an attacker with the file would."""
    with sqlite3.connect(home / CATALOG_FILE_NAME) as db:
        for statement in statements:
            db.execute(statement)
