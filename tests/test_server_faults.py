"""Server faults: catalog connections killed or cut mid-transaction, an object store that stops answering.

Faults are real: a PostgreSQL backend terminated from another session
(``pg_terminate_backend``), a TCP proxy between the registry and the server
that closes every connection through it, an S3 endpoint (a proxy in front of
moto) that takes a request and never answers. Where the test decides when a
fault lands, it does so from a SQLAlchemy event on the registry's own engine,
so the fault hits exactly the statement meant, every run.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import threading
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
from sqlalchemy import Engine, create_engine, event, text
from sqlalchemy.engine import make_url

from registry import CatalogError, CommitOutcomeUnknown, Registry
from registry.catalog import engine as catalog_engine
from tests.proxies import Proxy, proxy
from tests.servers import fresh_bucket, fresh_database


@pytest.fixture
def server_url(request: pytest.FixtureRequest) -> Iterator[str]:
    yield from fresh_database(request.param)


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from fresh_database("postgresql")


class Retries(logging.Handler):
    """Counts the retries the catalog logs."""

    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.count = 0

    def emit(self, record: logging.LogRecord) -> None:
        if record.name == catalog_engine.log.name and record.getMessage().startswith("lost the catalog connection"):
            self.count += 1


@contextlib.contextmanager
def counting_retries() -> Iterator[Retries]:
    handler = Retries()
    logger = catalog_engine.log
    level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)
        logger.setLevel(level)


@pytest.fixture
def retries() -> Iterator[Retries]:
    with counting_retries() as handler:
        yield handler


def backend_pid(dbapi_connection: Any) -> int:
    return int(dbapi_connection.info.backend_pid)  # psycopg 3


class Terminator:
    """Terminates, from another session, the backend about to run a statement that ``hit`` selects."""

    def __init__(self, admin_url: str, hit: Callable[[str], bool]) -> None:
        self.admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        self.hit = hit
        self.injected = 0

    def before_execute(self, conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        if self.hit(statement):
            self.kill(conn.connection.dbapi_connection)

    def kill(self, dbapi_connection: Any) -> None:
        with self.admin.connect() as admin:
            # the second argument waits (ms) until the backend is gone, so the next statement meets a dead one
            killed = admin.execute(
                text("SELECT pg_terminate_backend(:pid, 10000)"), {"pid": backend_pid(dbapi_connection)}
            ).scalar()
        assert killed
        self.injected += 1

    def close(self) -> None:
        self.admin.dispose()


def once_per(marker: str, every: int = 1) -> Callable[[str], bool]:
    """Select the first statement containing ``marker``, then every ``every``-th after a miss: see the uses."""
    state = {"seen": 0}

    def hit(statement: str) -> bool:
        if marker not in statement:
            return False
        state["seen"] += 1
        return state["seen"] % (every + 1) == 1  # 1st, (every+2)th, ...: each hit's retry goes through

    return hit


def live_versions(reg: Registry, name: str) -> list[int]:
    return [mv.version for mv in reg.versions(name)]


def test_a_transaction_whose_connection_is_terminated_before_commit_runs_again(
    postgres_url: str, tmp_path: Path, retries: Retries
) -> None:
    """Every registration and load has its connection terminated once mid-transaction; each still succeeds once."""
    with Registry(catalog=postgres_url, store=tmp_path / "store") as reg:
        engine = reg._catalog.engine
        terminator = Terminator(postgres_url, once_per("INSERT INTO versions"))
        event.listen(engine, "before_cursor_execute", terminator.before_execute)
        try:
            for i in range(5):
                assert reg.register("m", {"i": i}, format="pickle").version == i + 1
            assert terminator.injected == 5 and retries.count == 5
            terminator.hit = once_per("FROM versions")
            for i in range(5):
                assert reg.load(f"m:{i + 1}") == {"i": i}
        finally:
            event.remove(engine, "before_cursor_execute", terminator.before_execute)
            terminator.close()
        assert terminator.injected == 10 and retries.count == 10
        assert live_versions(reg, "m") == [1, 2, 3, 4, 5]
        report = reg.verify(deep=True)
        assert report.ok, report.problems


def test_a_commit_that_never_reached_postgres_is_found_aborted_and_run_again(
    postgres_url: str, tmp_path: Path, retries: Retries
) -> None:
    """The backend is terminated as the COMMIT is about to be sent; txid_status then says aborted: safe to rerun."""
    with Registry(catalog=postgres_url, store=tmp_path / "store") as reg:
        reg.register("m", {"i": 0}, format="pickle")
        engine = reg._catalog.engine
        terminator = Terminator(postgres_url, lambda statement: False)
        hits = {"left": 1}

        def kill_at_commit(conn: Any) -> None:
            if hits["left"]:
                hits["left"] -= 1
                terminator.kill(conn.connection.dbapi_connection)

        event.listen(engine, "commit", kill_at_commit)
        try:
            assert reg.register("m", {"i": 1}, format="pickle").version == 2
        finally:
            event.remove(engine, "commit", kill_at_commit)
            terminator.close()
        assert terminator.injected == 1 and retries.count == 1
        assert live_versions(reg, "m") == [1, 2] and reg.load("m:2") == {"i": 1}


def commit_marker(url: str) -> bytes:
    """The bytes of the COMMIT each driver sends: a simple-query message (PostgreSQL), a COM_QUERY (MySQL)."""
    return b"COMMIT\x00" if url.startswith("postgresql") else b"\x03COMMIT"


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_a_commit_whose_answer_is_lost(server_url: str, tmp_path: Path, retries: Retries) -> None:
    """The COMMIT reaches the server, the answer never comes back: it did commit.

    PostgreSQL is asked (txid_status) and the registration succeeds, once.
    MariaDB cannot say, so the error says the outcome is unknown and how to
    check, and nothing is retried (a rerun would register the bytes twice).
    """
    parsed = make_url(server_url)
    with proxy(parsed.host or "127.0.0.1", parsed.port or 0) as cutter:
        with Registry(catalog=proxied(server_url, cutter), store=tmp_path / "store") as reg:
            reg.register("m", {"i": 0}, format="pickle")
            engine = reg._catalog.engine
            armed = {"left": 1}

            def arm(_conn: Any) -> None:  # the COMMIT about to be sent is this registration's
                if armed["left"]:
                    armed["left"] -= 1
                    cutter.cut_on_reply(commit_marker(server_url))

            event.listen(engine, "commit", arm)
            try:
                if server_url.startswith("postgresql"):
                    assert reg.register("m", {"i": 1}, format="pickle").version == 2
                else:
                    with pytest.raises(CommitOutcomeUnknown, match="may or may not have been recorded") as caught:
                        reg.register("m", {"i": 1}, format="pickle")
                    assert isinstance(caught.value, CatalogError) and "modelshelf versions" in str(caught.value)
            finally:
                event.remove(engine, "commit", arm)
            assert armed["left"] == 0 and cutter.cuts >= 1 and retries.count == 0
            assert live_versions(reg, "m") == [1, 2] and reg.load("m:2") == {"i": 1}  # recorded exactly once


def test_a_connection_that_keeps_dying_fails_after_the_bounded_retries(
    postgres_url: str, tmp_path: Path, retries: Retries
) -> None:
    with Registry(catalog=postgres_url, store=tmp_path / "store") as reg:
        reg.register("m", {"i": 0}, format="pickle")
        engine = reg._catalog.engine
        terminator = Terminator(postgres_url, lambda statement: "INSERT INTO versions" in statement)
        event.listen(engine, "before_cursor_execute", terminator.before_execute)
        try:
            with pytest.raises(CatalogError, match="was lost before the change committed") as caught:
                reg.register("m", {"i": 1}, format="pickle")
        finally:
            event.remove(engine, "before_cursor_execute", terminator.before_execute)
            terminator.close()
        assert not isinstance(caught.value, CommitOutcomeUnknown)
        assert f"tried {catalog_engine.RETRIES + 1} times" in str(caught.value)
        assert terminator.injected == catalog_engine.RETRIES + 1 and retries.count == catalog_engine.RETRIES
        assert live_versions(reg, "m") == [1]


def proxied(url: str, through: Proxy) -> str:
    return make_url(url).set(host="127.0.0.1", port=through.port).render_as_string(hide_password=False)


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_connections_cut_by_the_network_mid_transaction_are_retried(
    server_url: str, tmp_path: Path, retries: Retries
) -> None:
    """A proxy closes every connection to the server in the middle of each registration and of each load."""
    parsed = make_url(server_url)
    with proxy(parsed.host or "127.0.0.1", parsed.port or (5432 if "postgres" in server_url else 3306)) as cutter:
        with Registry(catalog=proxied(server_url, cutter), store=tmp_path / "store") as reg:
            engine = reg._catalog.engine
            for marker in ("INSERT INTO versions", "FROM versions"):
                hit = once_per(marker)

                def cut(_conn: Any, _cursor: Any, statement: str, *_args: Any, hit: Any = hit) -> None:
                    if hit(statement):
                        assert cutter.cut() >= 1

                event.listen(engine, "before_cursor_execute", cut)
                try:
                    for i in range(4):
                        if marker.startswith("INSERT"):
                            assert reg.register("m", {"i": i}, format="pickle").version == i + 1
                        else:
                            assert reg.load(f"m:{i + 1}") == {"i": i}
                finally:
                    event.remove(engine, "before_cursor_execute", cut)
            assert retries.count == 8
            assert live_versions(reg, "m") == [1, 2, 3, 4]


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_server_catalogs_wait_for_a_lock_as_long_as_sqlite_does(server_url: str, tmp_path: Path) -> None:
    with Registry(catalog=server_url, store=tmp_path / "store") as reg:
        engine: Engine = reg._catalog.engine
        with engine.connect() as connection:
            if engine.dialect.name == "postgresql":
                waits = connection.execute(text("SELECT setting FROM pg_settings WHERE name = 'lock_timeout'"))
                assert int(waits.scalar_one()) == int(catalog_engine.LOCK_TIMEOUT * 1000)  # milliseconds
            else:
                waits = connection.execute(text("SELECT @@SESSION.innodb_lock_wait_timeout"))
                assert int(waits.scalar_one()) == int(catalog_engine.LOCK_TIMEOUT)


# -- an object store that stops answering ---------------------------------------


def _register_through(endpoint: str, catalog: str, bucket: str, cache: str, result: Any) -> None:
    """Writer 1, in its own process (the S3 endpoint is read from its environment)."""
    os.environ["AWS_ENDPOINT_URL"] = endpoint
    os.environ["MODELSHELF_CACHE"] = cache
    try:
        with Registry(catalog=catalog, store=bucket) as reg:
            result.put(reg.register("shared", {"writer": 1}, format="pickle").version)
    except BaseException as exc:
        result.put(f"{type(exc).__name__}: {exc}")


@pytest.mark.parametrize("server_url", ["postgresql", "mariadb"], indirect=True)
def test_an_object_store_outage_of_one_writer_does_not_block_another(server_url: str, s3: str, tmp_path: Path) -> None:
    """Writer 1's S3 endpoint hangs on its upload (the push); writer 2 registers the same model meanwhile."""
    bucket = fresh_bucket()
    Registry(catalog=server_url, store=bucket).close()
    endpoint = urlsplit(s3)
    context = multiprocessing.get_context("fork")
    result = context.Queue()
    with proxy(endpoint.hostname or "127.0.0.1", endpoint.port or 80) as stalling:
        stalling.hold(b"put /")  # uploads (pushing, before any catalog lock) hang; lookups go through
        writer1 = context.Process(
            target=_register_through,
            args=(f"http://127.0.0.1:{stalling.port}", server_url, bucket, str(tmp_path / "cache-1"), result),
        )
        writer1.start()
        try:
            assert stalling.holding.wait(60), "writer 1 never reached the upload"
            done = threading.Event()
            outcome: list[Any] = []

            def writer2() -> None:
                try:
                    with Registry(catalog=server_url, store=bucket) as reg:
                        outcome.append(reg.register("shared", {"writer": 2}, format="pickle").version)
                except BaseException as exc:
                    outcome.append(exc)
                done.set()

            threading.Thread(target=writer2, daemon=True).start()
            # Bounded only so that the old behaviour fails instead of hanging: writer 2 waited on the row lock.
            finished = done.wait(30)
            still_stuck = stalling.holding.is_set() and writer1.is_alive()
            assert finished, "writer 2 was blocked by writer 1's object-store outage"
            assert still_stuck and outcome == [1]
        finally:
            stalling.release()
            writer1.join(60)
    assert result.get(timeout=5) == 2
    with Registry(catalog=server_url, store=bucket) as reg:
        assert reg.load("shared:1") == {"writer": 2}
        assert reg.load("shared:2") == {"writer": 1}
        report = reg.verify(deep=True)
        assert report.ok, report.problems


@pytest.mark.parametrize("store_kind", ["s3", "local"])
def test_a_blob_freed_between_a_lost_transaction_and_its_retry_is_not_trusted(
    postgres_url: str,
    store_kind: str,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    retries: Retries,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """The retry runs under a new lock: a delete committed in between freed the bytes, and the retry must notice.

    An object store has the staged file still, and uploads it again; a local
    store renamed it onto the blob the delete removed, and refuses with a
    clear error. Either way no row points at a missing blob.
    """
    from registry import StoreError

    store = str(tmp_path / "store")
    if store_kind == "s3":
        request.getfixturevalue("s3")
        store = fresh_bucket()
    payload = {"shared": list(range(100))}
    with Registry(catalog=postgres_url, store=store) as writer, Registry(catalog=postgres_url, store=store) as other:
        if store_kind == "s3":
            type(other._store._fs).clear_instance_cache()
        writer.register("first", payload, format="pickle")
        engine = writer._catalog.engine
        terminator = Terminator(postgres_url, once_per("INSERT INTO versions", every=100))

        def kill_then_free(conn: Any, cursor: Any, statement: str, *args: Any) -> None:
            if terminator.hit(statement):
                terminator.kill(conn.connection.dbapi_connection)  # the writer's locks are released here
                other.delete_version("first", 1)  # the last live reference: the blob is freed

        event.listen(engine, "before_cursor_execute", kill_then_free)
        try:
            if store_kind == "s3":
                assert writer.register("second", payload, format="pickle").version == 1
            else:
                with pytest.raises(StoreError, match="removed .* by a concurrent delete"):
                    writer.register("second", payload, format="pickle")
        finally:
            event.remove(engine, "before_cursor_execute", kill_then_free)
            terminator.close()
        assert terminator.injected == 1 and retries.count == 1
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "fresh-cache"))  # loads come from the store
    with Registry(catalog=postgres_url, store=store) as fresh:
        if store_kind == "s3":
            type(fresh._store._fs).clear_instance_cache()
            assert fresh.load("second") == payload
        else:
            assert fresh.models() == []
        report = fresh.verify(deep=True)
        assert report.ok, report.problems
