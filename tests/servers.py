"""Real database servers for the scale-out tests: a fresh database per test, dropped afterwards.

PostgreSQL and MariaDB are found through MODELSHELF_TEST_POSTGRES_URL and
MODELSHELF_TEST_MARIADB_URL (administrative URLs; defaults: the local
servers on 127.0.0.1 with trust authentication). The S3 side is moto's
server, started by the tests on a free port of 127.0.0.1. Where a server is not
reachable the test is skipped with the reason, unless
MODELSHELF_REQUIRE_SERVERS=1 (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import contextlib
import os
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ADMIN_URLS = {
    "postgresql": os.environ.get(
        "MODELSHELF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get("MODELSHELF_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def _unavailable(kind: str, reason: str) -> None:
    message = f"no {kind} server for the scale-out tests ({reason}); set MODELSHELF_TEST_*_URL to point at one"
    if os.environ.get("MODELSHELF_REQUIRE_SERVERS") == "1":
        pytest.fail(message)
    pytest.skip(message)


def fresh_database(kind: str) -> Iterator[str]:
    """Create an empty database on the ``kind`` server; yield its URL; drop it afterwards."""
    admin_url = make_url(ADMIN_URLS[kind])
    name = f"modelshelf_t_{uuid.uuid4().hex[:10]}"
    try:
        admin = create_engine(admin_url, isolation_level="AUTOCOMMIT")
        with admin.connect() as connection:
            connection.execute(text(f"CREATE DATABASE {name}"))
    except Exception as exc:  # unreachable, no driver, no rights
        _unavailable(kind, f"{type(exc).__name__}: {str(exc).splitlines()[0]}")
    try:
        yield admin_url.set(database=name).render_as_string(hide_password=False)
    finally:
        with admin.connect() as connection:
            if kind == "postgresql":
                connection.execute(text(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)"))
            else:
                connection.execute(text(f"DROP DATABASE IF EXISTS {name}"))
        admin.dispose()


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """A real S3-protocol HTTP server (moto's server mode) on 127.0.0.1; yields its endpoint URL.

    The AWS variables s3fs reads (endpoint, dummy credentials, region) are set
    while it runs, as a user would set them for any S3-compatible service.
    """
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        _unavailable("S3", f"moto is not installed: {exc}")
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    server = subprocess.Popen(
        [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    _unavailable("S3", "moto's server did not start")
                time.sleep(0.1)
        saved = {key: os.environ.get(key) for key in S3_ENVIRONMENT}
        os.environ.update(S3_ENVIRONMENT, AWS_ENDPOINT_URL=endpoint)
        try:
            yield endpoint
        finally:
            for key, value in saved.items():
                if value is None:
                    os.environ.pop(key, None)
                else:
                    os.environ[key] = value
    finally:
        server.terminate()
        server.wait(timeout=10)


S3_ENVIRONMENT = {
    "AWS_ACCESS_KEY_ID": "modelshelf-test",
    "AWS_SECRET_ACCESS_KEY": "modelshelf-test-secret",
    "AWS_DEFAULT_REGION": "us-east-1",
    "AWS_ENDPOINT_URL": "",
}


def fresh_bucket() -> str:
    """A new, empty bucket on the running S3 server; returns an s3:// URL with a prefix in it."""
    import fsspec

    name = f"modelshelf-{uuid.uuid4().hex[:10]}"
    fs = fsspec.filesystem("s3", skip_instance_cache=True)
    fs.mkdir(name)
    return f"s3://{name}/registry"
