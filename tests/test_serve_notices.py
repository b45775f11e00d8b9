"""Alias moves told by PostgreSQL's NOTIFY: the writer sends them on commit, `modelshelf serve` reads on them.

The server tests run `modelshelf serve` as a process on a fresh database of
the real PostgreSQL server, with a poll interval far longer than the tests'
patience: a version served within it came in on a notice, which /readyz
also says (``served_on``). A notice is a hint anyone with a connection can
send; the attacker tests forge some with raw SQL and check that the served
version is only ever what the catalog says.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psycopg
import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

from registry import Registry
from registry.catalog.engine import write_transaction
from registry.catalog.notices import CHANNEL, RECONNECTED, AliasNotice, announce, parse_notice
from tests.servers import fresh_database
from tests.test_serve_server import PROBE, readyz, register_versions, server, wait_for

#: Longer than the tests' patience (tests.test_serve_server.PATIENCE): no timed read can explain a swap.
LONG_POLL = "600"


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from fresh_database("postgresql")


def libpq(url: str) -> str:
    """The URL as psycopg takes it (no ``+psycopg`` driver name)."""
    return make_url(url).set(drivername="postgresql").render_as_string(hide_password=False)


@pytest.fixture
def listener(postgres_url: str) -> Iterator[psycopg.Connection[Any]]:
    """A raw connection LISTENing on the alias channel, as any client of the database may."""
    with psycopg.connect(libpq(postgres_url), autocommit=True) as connection:
        connection.execute(f"LISTEN {CHANNEL}")
        yield connection


def told(connection: psycopg.Connection[Any], seconds: float = 0.5) -> list[dict[str, Any]]:
    """The payloads received on the channel within ``seconds`` (a silence check waits them out)."""
    return [json.loads(n.payload) for n in connection.notifies(timeout=seconds) if n.channel == CHANNEL]


def test_a_payload_names_at_most_a_model_and_an_alias_and_anything_else_names_nothing() -> None:
    assert parse_notice('{"model": "m", "alias": "production", "version": 3}') == AliasNotice("m", "production")
    for payload in ("", "not json", "[1, 2]", '"m"', '{"model": 3, "alias": null}'):
        assert parse_notice(payload) == AliasNotice(None, None)  # about anything: a read, as after a reconnection
    assert parse_notice('{"model": "m"}') == AliasNotice("m", None)
    assert RECONNECTED.concerns("m", "production") and AliasNotice("m", None).concerns("m", "production")
    assert RECONNECTED.reconnected and not parse_notice("").reconnected
    assert not AliasNotice("other", "production").concerns("m", "production")
    assert not AliasNotice("m", "staging").concerns("m", "production")


def test_every_kind_of_alias_change_is_told_once_committed_and_nothing_else_is(
    postgres_url: str, listener: psycopg.Connection[Any], tmp_path: Path
) -> None:
    production = {"model": "m", "alias": "production"}
    with Registry(catalog=postgres_url, store=str(tmp_path / "store")) as reg:
        register_versions(reg, 3)  # m:1 registered with alias="production"
        assert told(listener) == [production]
        reg.set_alias("m", "production", 2)
        reg.set_alias("m", "staging", 3)
        assert told(listener) == [production, {"model": "m", "alias": "staging"}]
        reg.set_alias("m", "production", 2)  # already there: nothing moved, nothing told
        reg.log_metrics("m", 2, {"accuracy": 0.9})
        reg.set_tags("m", 2, {"team": "a"})
        assert told(listener) == []
        reg.delete_alias("m", "staging")
        reg.delete_version("m", 2)  # drops production with it
        assert told(listener) == [{"model": "m", "alias": "staging"}, production]


def test_a_notice_is_delivered_at_commit_and_never_for_a_rollback(
    postgres_url: str, listener: psycopg.Connection[Any]
) -> None:
    engine = create_engine(postgres_url)
    try:
        with write_transaction(engine) as connection:
            announce(connection, [("m", "production")])
            assert told(listener) == []  # not yet committed
        assert told(listener) == [{"model": "m", "alias": "production"}]
        with pytest.raises(RuntimeError), write_transaction(engine) as connection:
            announce(connection, [("m", "canary")])
            raise RuntimeError("the change fails after the move was announced")
        assert told(listener) == []
    finally:
        engine.dispose()


# -- the server ----------------------------------------------------------------------------------------------


@pytest.fixture
def on_postgres(postgres_url: str, tmp_path: Path) -> dict[str, Any]:
    """A registry on the PostgreSQL database, and the command-line options naming it."""
    store = str(tmp_path / "store")
    return {"url": postgres_url, "store": store, "at": ("--catalog", postgres_url, "--store", store)}


def open_registry(where: dict[str, Any]) -> Registry:
    return Registry(catalog=where["url"], store=where["store"])


def listening(url: str, connects: int = 1) -> bool:
    notices = readyz(url)["notices"]
    return bool(notices) and notices["state"] == "listening" and notices["connects"] >= connects


def serving(url: str) -> str:
    model: str = httpx.post(url + "predict", json={"inputs": PROBE}, timeout=30).json()["model"]
    return model


def test_the_server_follows_each_move_on_its_notice_long_before_the_next_poll(
    on_postgres: dict[str, Any], tmp_path: Path
) -> None:
    with open_registry(on_postgres) as reg:
        register_versions(reg, 3)
    with server(tmp_path, "m@production", "--poll", LONG_POLL, "--no-access-log", at=on_postgres["at"]) as (
        process,
        where,
    ):
        url = where["url"]
        wait_for(lambda: listening(url), "the server to listen for notices")
        with open_registry(on_postgres) as reg:
            for target in (2, 3):
                reg.set_alias("m", "production", target)
                wait_for(lambda target=target: serving(url) == f"m:{target}", f"m:{target} to be served")
                ready = readyz(url)
                assert ready["served_on"] == "notice" and ready["reads"]["timer"] == 0
        assert ready["notices"]["received"] == 2 and ready["swaps"] == 2
        metrics = httpx.get(url + "metrics", timeout=10).text
        assert "modelshelf_serve_alias_notices_total 2" in metrics
        assert "modelshelf_serve_alias_notices_listening 1" in metrics
        process.terminate()
        process.wait(timeout=30)
        stderr = process.stderr.read() if process.stderr else ""
    assert "listening for moves of m@production in the catalog (polling every 600s too)" in stderr


def test_a_forged_notice_makes_the_server_read_the_catalog_and_serve_only_what_it_says(
    on_postgres: dict[str, Any], tmp_path: Path
) -> None:
    """Any client may NOTIFY on the channel: a payload naming a version, or garbage, is only a reason to read.

    The server opens the registry read-only: its sessions are read-only on the server, and LISTEN works in them.
    """
    with open_registry(on_postgres) as reg:
        register_versions(reg, 3)
        reg.set_alias("m", "production", 2)
    options = ("m@production", "--poll", LONG_POLL, "--read-only", "--no-access-log")
    with server(tmp_path, *options, at=on_postgres["at"]) as (_, where):
        url = where["url"]
        wait_for(lambda: listening(url), "the server to listen for notices")
        with psycopg.connect(libpq(on_postgres["url"]), autocommit=True) as attacker:
            for forged in (
                {"model": "m", "alias": "production", "version": 3},
                {"model": "m", "alias": "production", "version": 1, "checksum": "sha256:" + "0" * 64},
                "not json at all",
            ):
                before = readyz(url)["reads"]["notice"]
                payload = forged if isinstance(forged, str) else json.dumps(forged)
                attacker.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                wait_for(lambda before=before: readyz(url)["reads"]["notice"] > before, "the read the notice asks for")
                assert serving(url) == "m:2"
            ready = readyz(url)
            assert ready["swaps"] == 0 and ready["refused"] == 0 and ready["model"] == "m:2"
            # a move made behind modelshelf's back (raw SQL, no key to catch it) is served as the catalog says
            attacker.execute(
                "UPDATE aliases SET version_id = (SELECT id FROM versions WHERE version = 3) WHERE alias = 'production'"
            )
            attacker.execute("SELECT pg_notify(%s, %s)", (CHANNEL, json.dumps({"model": "m", "alias": "production"})))
            wait_for(lambda: serving(url) == "m:3", "the version the catalog now names")


def test_a_flood_of_notices_reads_the_alias_at_most_once_per_gap(on_postgres: dict[str, Any], tmp_path: Path) -> None:
    """Any role may NOTIFY: 100 notices over half a second must not cost 100 reads (and loads of a failing version)."""
    from registry.serve.routes import NOTICE_READ_GAP

    with open_registry(on_postgres) as reg:
        register_versions(reg, 2)
    with server(tmp_path, "m@production", "--poll", LONG_POLL, "--no-access-log", at=on_postgres["at"]) as (_, where):
        url = where["url"]
        wait_for(lambda: listening(url), "the server to listen for notices")
        payload = json.dumps({"model": "m", "alias": "production"})
        with psycopg.connect(libpq(on_postgres["url"]), autocommit=True) as attacker:
            started = time.monotonic()
            for _ in range(100):
                attacker.execute("SELECT pg_notify(%s, %s)", (CHANNEL, payload))
                time.sleep(0.005)
            wait_for(lambda: readyz(url)["notices"]["received"] == 100, "the notices to arrive")
            time.sleep(2 * NOTICE_READ_GAP)  # the last read the flood asked for
            elapsed = time.monotonic() - started
        reads = readyz(url)["reads"]["notice"]
        assert 1 <= reads <= elapsed / NOTICE_READ_GAP + 2, (reads, elapsed)
        assert serving(url) == "m:1"


def test_after_losing_its_listening_connection_the_server_reconnects_and_follows_on_notices_again(
    on_postgres: dict[str, Any], tmp_path: Path
) -> None:
    with open_registry(on_postgres) as reg:
        register_versions(reg, 3)
    database = make_url(on_postgres["url"]).database
    with server(tmp_path, "m@production", "--poll", LONG_POLL, "--no-access-log", at=on_postgres["at"]) as (
        process,
        where,
    ):
        url = where["url"]
        wait_for(lambda: listening(url), "the server to listen for notices")
        admin = create_engine(on_postgres["url"], isolation_level="AUTOCOMMIT")
        try:
            with admin.connect() as connection:
                ended = connection.execute(
                    text(
                        "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
                        "WHERE datname = :database AND query = :listen"
                    ),
                    {"database": database, "listen": f"LISTEN {CHANNEL}"},
                ).all()
        finally:
            admin.dispose()
        assert [row[0] for row in ended] == [True]  # the server's one listening connection, killed
        with open_registry(on_postgres) as reg:
            reg.set_alias("m", "production", 2)  # maybe while it is away: its reconnection reads the alias
        wait_for(lambda: serving(url) == "m:2", "m:2 to be served")
        wait_for(lambda: listening(url, connects=2), "the server to listen again")
        with open_registry(on_postgres) as reg:
            reg.set_alias("m", "production", 3)
        wait_for(lambda: serving(url) == "m:3", "m:3 to be served")
        ready = readyz(url)
        assert ready["served_on"] == "notice" and ready["reads"]["timer"] == 0
        assert ready["notices"]["last_error"] is not None
        process.terminate()
        process.wait(timeout=30)
        stderr = process.stderr.read() if process.stderr else ""
    assert stderr.count("the catalog connection that listens for alias moves failed") == 1
    assert stderr.count("listening for moves of m@production") == 2
