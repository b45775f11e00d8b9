"""The same contract on every catalog engine: SQLite, and the real PostgreSQL and MariaDB servers."""

from __future__ import annotations

import json
import multiprocessing
import threading
import time
from collections.abc import Iterator
from concurrent.futures import ProcessPoolExecutor
from datetime import timedelta
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import Connection, create_engine, event, text

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
from registry.catalog.engine import write_transaction
from registry.errors import CatalogError
from tests import workers
from tests.servers import fresh_bucket, fresh_database

#: ``s3`` is moto's server, ``s3rver`` the independent Node implementation (see tests/servers.py).
BACKENDS = ["sqlite+local", "postgresql+s3", "sqlite+s3rver", "mariadb+local"]


@pytest.fixture(params=BACKENDS)
def backend(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[tuple[str, str]]:
    """(catalog URL, store location) for one combination of engines."""
    catalog_kind, store_kind = request.param.split("+")
    store = str(tmp_path / "store")
    if store_kind in ("s3", "s3rver"):
        request.getfixturevalue(store_kind)
        store = fresh_bucket()
    if catalog_kind == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}", store
    else:
        for url in fresh_database(catalog_kind):
            yield url, store


@pytest.fixture
def catalog_url(backend: tuple[str, str]) -> str:
    return backend[0]


@pytest.fixture
def reg(backend: tuple[str, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))
    with Registry(catalog=backend[0], store=backend[1]) as registry:
        yield registry


def corrupt(reg: Registry, digest: str) -> None:
    """Flip one byte of a stored blob, wherever the store keeps it."""
    store = reg._store
    if hasattr(store, "cache"):  # an object store: rewrite the object, drop the cached copy
        key = str(store.path_of(digest))
        data = bytearray(store._fs.cat(key))
        data[-3] ^= 1
        store._fs.pipe(key, bytes(data))
        store.cache.delete(digest)
        return
    blob = store.path_of(digest)
    blob.chmod(0o644)
    data = bytearray(blob.read_bytes())
    data[-3] ^= 1
    blob.write_bytes(bytes(data))


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
    corrupt(reg, mv.digest)
    with pytest.raises(CorruptedArtifact):
        reg.load("m")
    cache = tmp_path / "cache" / "blobs"
    assert not any(p.is_file() for p in cache.rglob("*")) if cache.exists() else True  # nothing unverified kept
    report = reg.verify()
    assert [p.kind for p in report.problems] == ["checksum_mismatch"]


def test_search_best_lineage_and_trail(reg: Registry, iris) -> None:
    """Search compiles to the same answers on every engine: typed params, missing keys, like, ordering."""
    X, y = iris
    rows = [
        ({"k": 1, "solver": "lbfgs", "fit": True}, {"acc": 0.91}, {"team": "cv"}),
        ({"k": 3, "solver": "LBFGS", "fit": False}, {"acc": 0.97, "f1": 0.9}, {"team": "cv"}),
        ({"k": "3", "solver": None}, {"acc": 0.93}, {}),
    ]
    for params, metrics, tags in rows:
        reg.register("m", [params["k"]], format="pickle", params=params, metrics=metrics, tags=tags, data=(X, y))
    reg.register("n", [1], format="pickle", metrics={"acc": 0.99}, parent="m:2")

    def refs(**query: object) -> list[str]:
        return [mv.ref for mv in reg.search(**query)]

    assert refs(where="params.k = 3") == ["m:2"] and refs(where="params.k = '3'") == ["m:3"]
    assert refs(where="params.fit = true or metrics.acc > 0.98") == ["m:1", "n:1"]
    assert refs(where="params.solver like 'lb%' and tags.team = 'cv'") == ["m:1", "m:2"]
    assert refs(where="params.solver is null") == ["m:3", "n:1"]
    assert refs(where="tags.team != 'cv'") == [] and refs(where="not tags.team = 'cv'") == ["m:3", "n:1"]
    assert refs(order_by="metrics.f1 desc, metrics.acc desc", limit=3) == ["m:2", "n:1", "m:3"]
    assert refs(name="m", where="created_at >= '2000-01-01' and version in (1, 3)") == ["m:1", "m:3"]
    data = reg.get("m:1").lineage.data
    assert refs(where=f"lineage.data = '{data}'") == ["m:1", "m:2", "m:3"]
    assert refs(where="lineage.parent = 'm:2'") == ["n:1"] and reg.ancestors("n") == ["m:2"]
    assert reg.best("m", "acc").ref == "m:2" and reg.best("m", "acc", mode="min", where="params.k = 3").ref == "m:2"
    reg.set_alias("m", "production", 1)
    reg.set_alias("m", "production", 2)
    reg.set_tags("m", 2, {"stage": "prod"})
    reg.delete_version("m", 2)
    actions = [(e.action, e.version) for e in reg.events("m")][3:]
    assert actions == [("alias.set", 1), ("alias.move", 2), ("tags.set", 2), ("alias.delete", 2), ("version.delete", 2)]
    assert [(p.version, p.until is None) for p in reg.alias_history("m", "production")] == [(1, False), (2, False)]
    assert reg.get("m:1").input_signature is None and reg.get("m:1").lineage.data_shape == (150, 4)


def test_migrations_agree_with_the_orm(reg: Registry, catalog_url: str) -> None:
    engine = create_engine(catalog_url)
    with engine.connect() as connection:
        command.check(migrate.alembic_config(connection))
    engine.dispose()
    assert reg.verify(deep=True).ok


def test_a_newer_catalog_is_refused(reg: Registry, backend: tuple[str, str]) -> None:
    engine = create_engine(backend[0])
    with engine.begin() as connection:
        connection.execute(text("UPDATE alembic_version SET version_num = 'ffffffffffff'"))
    engine.dispose()
    with pytest.raises(SchemaVersionError, match="newer"):
        Registry(catalog=backend[0], store=backend[1])


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
def test_concurrent_alias_moves_leave_one_unbroken_trail(server_url: str, tmp_path: Path) -> None:
    store = str(tmp_path / "store")
    with Registry(catalog=server_url, store=store) as reg:
        for i in range(5):
            reg.register("m", {"i": i}, format="pickle")
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
        moves = [[1 + (w + j) % 5 for j in range(5)] for w in range(4)]
        futures = [pool.submit(workers.move_alias_at, server_url, store, "m", versions, 5) for versions in moves]
        assert sum(future.result() for future in futures) == 100
    with Registry(catalog=server_url, store=store) as reg:
        assert 1 <= workers.check_alias_trail(reg, "m", "production") <= 100


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_clients_creating_one_catalog_at_once_migrate_it_once(server_url: str, tmp_path: Path) -> None:
    start_at = time.time() + 1.0
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [
            pool.submit(workers.open_url_and_count_migrations, server_url, str(tmp_path / "s"), start_at)
            for _ in range(4)
        ]
        assert sum(future.result() for future in futures) == 1


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_imports_naming_models_in_opposite_orders_do_not_deadlock(server_url: str, tmp_path: Path) -> None:
    """Each import is one transaction; taking its models' locks as it went let two of them wait on each other."""

    names = [f"m{i}" for i in range(6)]
    with Registry(tmp_path / "source") as source:
        for name in names:
            for i in range(2):
                source.register(name, {"name": name, "i": i}, format="pickle")
        source.export_bundle([f"{name}:1" for name in names], tmp_path / "forward.tar")
        source.export_bundle([f"{name}:2" for name in reversed(names)], tmp_path / "backward.tar")
    store = str(tmp_path / "store")
    Registry(catalog=server_url, store=store).close()
    start_at = time.time() + 0.5
    with ProcessPoolExecutor(2, mp_context=multiprocessing.get_context("fork")) as pool:
        futures = [
            pool.submit(workers.import_bundle_at, server_url, store, str(tmp_path / bundle), start_at)
            for bundle in ("forward.tar", "backward.tar")
        ]
        created = [ref for future in futures for ref in future.result()]
    assert len(created) == 12
    with Registry(catalog=server_url, store=store) as reg:
        loaded = sorted((obj["name"], obj["i"]) for obj in (reg.load(ref) for ref in created))
        assert loaded == sorted((name, i) for name in names for i in range(2))


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_a_deadlock_the_server_breaks_is_named_as_one(server_url: str) -> None:
    """Two transactions locking two rows in opposite orders: the server aborts one, and says so, not "stayed locked"."""
    engine = create_engine(server_url)
    with engine.begin() as connection:
        connection.execute(text("CREATE TABLE pair (id INTEGER PRIMARY KEY)"))
        connection.execute(text("INSERT INTO pair (id) VALUES (1), (2)"))
    both_hold_one = threading.Barrier(2, timeout=15)
    outcomes: list[str] = []

    def lock(first: int, second: int) -> None:
        try:
            with write_transaction(engine) as connection:
                connection.execute(text("SELECT id FROM pair WHERE id = :id FOR UPDATE"), {"id": first})
                both_hold_one.wait()
                connection.execute(text("SELECT id FROM pair WHERE id = :id FOR UPDATE"), {"id": second})
            outcomes.append("committed")
        except CatalogError as exc:
            outcomes.append(str(exc))

    threads = [threading.Thread(target=lock, args=order, daemon=True) for order in ((1, 2), (2, 1))]
    try:
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(30)
            assert not thread.is_alive()
    finally:
        engine.dispose()
    assert len(outcomes) == 2 and sorted(outcomes)[0] == "committed"
    assert "waiting for each other (a deadlock) and rolled it back: retry it" in sorted(outcomes)[1]


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_a_server_lock_wait_timeout_is_named_as_one(server_url: str) -> None:
    engine = create_engine(server_url)
    try:
        with engine.begin() as connection:
            connection.execute(text("CREATE TABLE held (id INTEGER PRIMARY KEY)"))
            connection.execute(text("INSERT INTO held (id) VALUES (1)"))
        with engine.connect() as holder, holder.begin():
            holder.execute(text("SELECT id FROM held WHERE id = 1 FOR UPDATE"))
            with pytest.raises(CatalogError, match="stayed locked by another writer past the server's lock wait"):
                with write_transaction(engine) as waiter:
                    if engine.dialect.name == "postgresql":
                        waiter.execute(text("SET LOCAL lock_timeout = '200ms'"))
                    else:
                        waiter.execute(text("SET SESSION innodb_lock_wait_timeout = 1"))
                    waiter.execute(text("SELECT id FROM held WHERE id = 1 FOR UPDATE"))
    finally:
        engine.dispose()


def _migration_lock_is_free(connection: Connection) -> bool:
    if connection.dialect.name == "postgresql":
        return bool(
            connection.execute(
                text("SELECT pg_try_advisory_xact_lock(:key)"), {"key": migrate.MIGRATION_LOCK_KEY}
            ).scalar()
        )
    name = migrate.migration_lock_name(connection.engine.url.database or "")
    return connection.execute(text("SELECT IS_FREE_LOCK(:name)"), {"name": name}).scalar() == 1


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_the_migration_lock_is_held_until_the_migration_has_committed(server_url: str) -> None:
    """A client that waited for the lock must read the finished schema, not the revision its holder has not committed.

    MySQL and MariaDB commit DDL implicitly but not Alembic's last update of
    ``alembic_version``: a lock given up before the final commit let a second
    client run the last migration again (seen as a rare failure above).
    """
    engine, observer = create_engine(server_url), create_engine(server_url)
    free_at_commit: list[bool] = []

    def look_from_another_session(_: Connection) -> None:
        with observer.connect() as other:
            free_at_commit.append(_migration_lock_is_free(other))
            other.rollback()

    event.listen(engine, "commit", look_from_another_session)
    try:
        migrate.ensure_schema(engine, server_url, upgrade=False)
        with observer.connect() as other:
            assert migrate.current_revision(other) == migrate.HEAD_REVISION
            assert _migration_lock_is_free(other)  # and given up afterwards
    finally:
        engine.dispose()
        observer.dispose()
    assert free_at_commit == [False]


@pytest.mark.parametrize("server_url", ["mariadb"], indirect=True)
def test_a_client_stuck_migrating_is_named_after_the_wait_and_other_catalogs_go_on(
    server_url: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(migrate, "MIGRATION_WAIT", 1)
    engine = create_engine(server_url)
    this_catalog = migrate.migration_lock_name(engine.url.database or "")
    try:
        with engine.connect() as stuck:
            stuck.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": this_catalog})
            with pytest.raises(CatalogError, match="migrating the catalog .* for more than 1 s"):
                migrate.ensure_schema(engine, "the test catalog", upgrade=False)
            stuck.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": this_catalog})
        with engine.connect() as connection:
            assert migrate.current_revision(connection) is None  # nothing was half-created meanwhile
        with engine.connect() as other_catalog_migrating:  # locks are server-wide; this one names another database
            lock = migrate.migration_lock_name("another_catalog")
            other_catalog_migrating.execute(text("SELECT GET_LOCK(:name, 0)"), {"name": lock})
            migrate.ensure_schema(engine, "the test catalog", upgrade=False)  # goes on without waiting for it
            other_catalog_migrating.execute(text("SELECT RELEASE_LOCK(:name)"), {"name": lock})
        with engine.connect() as connection:
            assert migrate.current_revision(connection) == migrate.HEAD_REVISION
    finally:
        engine.dispose()


def test_an_unreachable_server_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(CatalogError, match="server is running"):
        Registry(catalog="postgresql+psycopg://nobody@127.0.0.1:1/none", store=tmp_path / "s")


@pytest.fixture
def bucket(s3: str) -> str:
    return fresh_bucket()


def test_another_machine_reads_through_its_own_verified_cache(bucket: str, tmp_path: Path, monkeypatch) -> None:
    from click.testing import CliRunner

    from registry.cli import cli

    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache-a"))
    with Registry(catalog=catalog, store=bucket) as writer:
        mv = writer.register("m", {"v": list(range(1000))}, format="pickle")
        objects = writer._store._fs.find(bucket.removeprefix("s3://"))
        assert [key.rsplit("/", 3)[-3] for key in objects] == ["sha256"] and len(objects) == 1  # no temp left
        modified = writer._store._fs.info(objects[0])["LastModified"]
        writer.register("m", {"v": list(range(1000))}, format="pickle")  # the same bytes: not uploaded again
        assert writer._store._fs.info(objects[0])["LastModified"] == modified
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache-b"))
    runner = CliRunner()
    assert "0 blobs" in runner.invoke(cli, ["cache", "info"]).output
    with Registry(catalog=catalog, store=bucket) as reader:
        assert reader.load("m:1") == {"v": list(range(1000))}
        assert reader.verify(deep=True).ok
    info = json.loads(runner.invoke(cli, ["cache", "info", "--json"]).output)
    assert info == {"path": str(tmp_path / "cache-b"), "blobs": 1, "bytes": mv.size}
    assert "removed 1 file" in runner.invoke(cli, ["cache", "clear"]).output
    with Registry(catalog=catalog, store=bucket) as reader:  # downloaded and verified again
        assert reader.load("m:2") == {"v": list(range(1000))}


def test_processes_fetching_one_blob_at_once(bucket: str, tmp_path: Path, monkeypatch) -> None:
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    with Registry(catalog=catalog, store=bucket) as writer:
        writer.register("m", {"blob": bytes(3_000_000)}, format="pickle")
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "shared-cache"))
    with ProcessPoolExecutor(4, mp_context=multiprocessing.get_context("fork")) as pool:
        sizes = list(pool.map(workers.load_size, [catalog] * 8, [bucket] * 8, ["m"] * 8))
    assert sizes == [3_000_000] * 8
    cached = [p for p in (tmp_path / "shared-cache" / "blobs").rglob("*") if p.is_file()]
    assert len(cached) == 1 and list((tmp_path / "shared-cache" / "tmp").iterdir()) == []


def test_large_transfers_report_progress(bucket: str, tmp_path: Path, monkeypatch) -> None:
    import contextlib

    seen: dict[str, list[int]] = {}

    @contextlib.contextmanager
    def reporter(description: str, total: int):
        counts = seen.setdefault(description.split()[0], [total, 0])
        yield lambda count: counts.__setitem__(1, counts[1] + count)

    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    with Registry(catalog=catalog, store=bucket, progress=reporter) as reg:
        mv = reg.register("big", {"blob": bytes(6_000_000)}, format="pickle")
        reg.register("small", {"blob": b"x"}, format="pickle")
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "other-cache"))
    with Registry(catalog=catalog, store=bucket, progress=reporter) as reg:
        assert len(reg.load("big")["blob"]) == 6_000_000
        reg.load("small")
    assert seen == {"uploading": [mv.size, mv.size], "downloading": [mv.size, mv.size]}  # small ones stay quiet
