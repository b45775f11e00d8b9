"""Real database servers for the scale-out tests: a fresh database per test, dropped afterwards.

PostgreSQL and MariaDB are found through MODELSHELF_TEST_POSTGRES_URL and
MODELSHELF_TEST_MARIADB_URL (administrative URLs; defaults: the local
servers on 127.0.0.1 with trust authentication). The S3 side is two
independent implementations, moto's server (Python) and s3rver (Node, from
npm), each started once per session on a free port of 127.0.0.1. Where a server is not
reachable the test is skipped with the reason, unless
MODELSHELF_REQUIRE_SERVERS=1 (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest
from sqlalchemy import create_engine, text
from sqlalchemy.engine import make_url

ADMIN_URLS = {
    "postgresql": os.environ.get(
        "MODELSHELF_TEST_POSTGRES_URL", "postgresql+psycopg://postgres@127.0.0.1:5432/postgres"
    ),
    "mariadb": os.environ.get("MODELSHELF_TEST_MARIADB_URL", "mysql+pymysql://root@127.0.0.1:3306/test"),
}


def _unavailable(kind: str, reason: str, hint: str = "set MODELSHELF_TEST_*_URL to point at one") -> None:
    skip_or_fail(f"no {kind} server for the scale-out tests ({reason}); {hint}")


def skip_or_fail(message: str) -> None:
    """Skip a test whose real environment (a server, a mount) cannot be had here, or fail where CI needs it."""
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


@dataclass(frozen=True)
class S3Server:
    """A running S3-protocol server and the settings a user would give any S3-compatible service."""

    kind: str
    endpoint: str
    environment: dict[str, str]


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextlib.contextmanager
def _serving(kind: str, command: list[str], port: int) -> Iterator[None]:
    """Run ``command`` until the test session ends; wait until it accepts connections on ``port``."""
    server = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 30
        while True:
            try:
                socket.create_connection(("127.0.0.1", port), timeout=0.2).close()
                break
            except OSError:
                if time.monotonic() > deadline or server.poll() is not None:
                    _unavailable("S3", f"{kind}'s server did not start ({' '.join(command[:2])} …)")
                time.sleep(0.1)
        yield
    finally:
        server.terminate()
        server.wait(timeout=10)


@contextlib.contextmanager
def run_moto() -> Iterator[S3Server]:
    """moto's server mode on a free port of 127.0.0.1 (it accepts any credentials)."""
    try:
        import moto.server  # noqa: F401
    except ImportError as exc:
        _unavailable("S3", f"moto is not installed: {exc}")
    port = _free_port()
    with _serving("moto", [sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p", str(port)], port):
        endpoint = f"http://127.0.0.1:{port}"
        yield S3Server("moto", endpoint, {**S3_ENVIRONMENT, "AWS_ENDPOINT_URL": endpoint})


#: Where .ci/run installs s3rver (``npm install --prefix .ci-node``), relative to the repository.
S3RVER_INSTALLED = Path(__file__).resolve().parent.parent / ".ci-node" / "node_modules" / ".bin" / "s3rver"


def s3rver_command() -> str | None:
    """The s3rver executable: $MODELSHELF_S3RVER, else the one .ci/run installs, else one on PATH."""
    named = os.environ.get("MODELSHELF_S3RVER")
    if named:
        return named
    if S3RVER_INSTALLED.exists():
        return str(S3RVER_INSTALLED)
    return shutil.which("s3rver")


@contextlib.contextmanager
def run_s3rver() -> Iterator[S3Server]:
    """s3rver (the npm package, an independent S3 implementation in Node) on a free port of 127.0.0.1.

    What it needs, set as a user would for any S3-compatible server: its
    fixed credentials (``S3RVER``/``S3RVER``; it checks signatures),
    ``AWS_ENDPOINT_URL``, and path-style addressing (it serves virtual-host
    buckets only under its own domain), given in a shared AWS config file
    (``AWS_CONFIG_FILE``; botocore has no variable for it).
    """
    command = s3rver_command()
    if command is None:
        _unavailable(
            "S3",
            "s3rver is not installed",
            "install it with `npm install --no-save --prefix .ci-node s3rver@3` (as .ci/run does; Node 18+), "
            "or set MODELSHELF_S3RVER to its executable",
        )
    with tempfile.TemporaryDirectory(prefix="s3rver-") as scratch:
        data, config = Path(scratch) / "data", Path(scratch) / "aws-config"
        data.mkdir()
        config.write_text("[default]\nregion = us-east-1\ns3 =\n    addressing_style = path\n")
        port = _free_port()
        with _serving("s3rver", [command, "-d", str(data), "-a", "127.0.0.1", "-p", str(port), "--silent"], port):
            endpoint = f"http://127.0.0.1:{port}"
            environment = {
                **S3_ENVIRONMENT,
                "AWS_ACCESS_KEY_ID": "S3RVER",
                "AWS_SECRET_ACCESS_KEY": "S3RVER",
                "AWS_ENDPOINT_URL": endpoint,
                "AWS_CONFIG_FILE": str(config),
            }
            yield S3Server("s3rver", endpoint, environment)


@contextlib.contextmanager
def s3_environment(server: S3Server) -> Iterator[str]:
    """Point every new S3 client at ``server`` (its variables set, s3fs's cached clients dropped); yield its endpoint.

    s3fs keeps one client per set of arguments, and the endpoint comes from
    the environment, not the arguments: without the reset a client made for
    one server would be reused for the other.
    """
    import s3fs

    keys = {*server.environment, "AWS_CONFIG_FILE"}
    saved = {key: os.environ.get(key) for key in keys}
    os.environ.pop("AWS_CONFIG_FILE", None)
    os.environ.update(server.environment)
    s3fs.S3FileSystem.clear_instance_cache()
    try:
        yield server.endpoint
    finally:
        s3fs.S3FileSystem.clear_instance_cache()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


@contextlib.contextmanager
def s3_server() -> Iterator[str]:
    """moto's server, with the AWS variables s3fs reads set while it runs; yields its endpoint URL."""
    with run_moto() as server, s3_environment(server) as endpoint:
        yield endpoint


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
