"""Real database servers for the scale-out tests: a fresh database per test, dropped afterwards.

PostgreSQL and MariaDB are found through MODELSHELF_TEST_POSTGRES_URL and
MODELSHELF_TEST_MARIADB_URL (administrative URLs; defaults: the local
servers on 127.0.0.1 with trust authentication). Where a server is not
reachable the test is skipped with the reason, unless
MODELSHELF_REQUIRE_SERVERS=1 (CI sets it), which turns the skip into a failure.
"""

from __future__ import annotations

import os
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
