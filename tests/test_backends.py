"""The same contract on every catalog engine: SQLite, and the real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import multiprocessing
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import create_engine, text

from registry import (
    AliasNotFound,
    CorruptedArtifact,
    InvalidName,
    ModelNotFound,
    Registry,
    SchemaVersionError,
    VersionNotFound,
)
from registry.catalog import migrate
from registry.errors import CatalogError
from tests import workers
from tests.servers import fresh_database

BACKENDS = ["sqlite", "postgresql", "mariadb"]


@pytest.fixture(params=BACKENDS)
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
    else:
        yield from fresh_database(request.param)


@pytest.fixture
def reg(catalog_url: str, tmp_path: Path) -> Iterator[Registry]:
    with Registry(catalog=catalog_url, store=tmp_path / "store") as registry:
        yield registry


def test_register_and_fetch_every_way(reg: Registry, knn, iris) -> None:
    import numpy as np

    X, _ = iris
    first = reg.register("iris-knn", knn, metrics={"accuracy": 0.97}, tags={"team": "cv"}, description="kNN")
    reg.register("iris-knn", {"plain": True}, format="pickle", alias="production")
    reg.register("iris-knn", [3], format="pickle")
    assert np.array_equal(reg.load("iris-knn:1").predict(X), knn.predict(X))
    assert reg.load("iris-knn@production") == {"plain": True} == reg.load("iris-knn", alias="production")
    assert reg.load("iris-knn") == [3] == reg.load("iris-knn:latest")
    back = reg.get("iris-knn:1")
    assert back == first
    assert back.created_at.utcoffset() == timedelta(0) and back.params["n_neighbors"] == 3
    assert [mv.version for mv in reg.versions("iris-knn")] == [1, 2, 3]
    assert reg.models() == ["iris-knn"]


def test_metrics_history(reg: Registry) -> None:
    for i in range(3):
        reg.register("m", {"i": i}, format="pickle", metrics={"acc": i / 10})
    reg.log_metrics("m", 2, {"acc": 0.5}, step=20)
    reg.log_metrics("m", 2, {"acc": 0.4}, step=10)
    assert [(p.version, p.step, p.value) for p in reg.metrics_history("m", "acc")] == [
        (1, None, 0.0),
        (2, None, 0.1),
        (2, 10, 0.4),
        (2, 20, 0.5),
        (3, None, 0.2),
    ]
    assert reg.get("m:2").metrics == {"acc": 0.4}


def test_errors(reg: Registry) -> None:
    reg.register("m", [1], format="pickle")
    with pytest.raises(ModelNotFound):
        reg.get("nope")
    with pytest.raises(VersionNotFound):
        reg.get("m:9")
    with pytest.raises(AliasNotFound):
        reg.get("m@production")
    with pytest.raises(InvalidName):
        reg.register("../x", [1])
    with pytest.raises(ValueError):
        reg.register("m", [1], metrics={"nan": float("nan")})
    assert [mv.version for mv in reg.versions("m")] == [1]


def test_delete_and_numbering(reg: Registry, tmp_path: Path) -> None:
    reg.register("m", {"shared": 1}, format="pickle", alias="production")
    reg.register("n", {"shared": 1}, format="pickle")
    reg.delete_version("m", 1)
    with pytest.raises(VersionNotFound, match="deleted"):
        reg.get("m:1")
    assert reg.load("n") == {"shared": 1}  # the shared blob stays
    assert reg.register("m", [2], format="pickle").version == 2
    reg.set_alias("m", "production", 2)
    assert reg.get("m@production").version == 2


def test_integrity(reg: Registry, tmp_path: Path) -> None:
    mv = reg.register("m", {"v": 1}, format="pickle")
    blob = tmp_path / "store" / "blobs" / "sha256" / mv.digest[:2] / mv.digest[2:]
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[-3] ^= 1
    blob.write_bytes(bytes(data))
    with pytest.raises(CorruptedArtifact):
        reg.load("m")
    report = reg.verify()
    assert [p.kind for p in report.problems] == ["checksum_mismatch"]


def test_migrations_agree_with_the_orm(reg: Registry, catalog_url: str) -> None:
    engine = create_engine(catalog_url)
    with engine.connect() as connection:
        command.check(migrate.alembic_config(connection))
    engine.dispose()
    assert reg.verify(deep=True).ok


def test_a_newer_catalog_is_refused(reg: Registry, catalog_url: str, tmp_path: Path) -> None:
    engine = create_engine(catalog_url)
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="newer"):
        Registry(catalog=catalog_url, store=tmp_path / "store")


@pytest.fixture
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from fresh_database(request.param)


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_concurrent_writers_on_a_server(server_url: str, tmp_path: Path) -> None:
    """8 processes × 25 registrations of one name: versions 1..200, each loading its own object."""
    store = str(tmp_path / "store")
    Registry(catalog=server_url, store=store).close()
    with ProcessPoolExecutor(8, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [pool.submit(workers.register_many_to, server_url, store, "shared", w, 25) for w in range(8)]
        done = [row for future in futures for row in future.result()]
    assert sorted(version for version, _, _ in done) == list(range(1, 201))
    with Registry(catalog=server_url, store=store) as reg:
        for version, writer, i in done:
            assert reg.load(f"shared:{version}") == {"writer": writer, "i": i}


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_clients_creating_one_catalog_at_once_migrate_it_once(server_url: str, tmp_path: Path) -> None:
    start_at = time.time() + 1.0
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [
            pool.submit(workers.open_url_and_count_migrations, server_url, str(tmp_path / "s"), start_at)
            for _ in range(4)
        ]
        assert sum(future.result() for future in futures) == 1


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="server is running"):
        Registry(catalog="postgresql+psycopg://nobody@127.0.0.1:1/none", store=tmp_path / "s")
