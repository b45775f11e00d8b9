"""``Registry(..., read_only=True)`` in a writable directory: every read works, every write is refused first.

Here the directory could be written, so a refusal that left a temporary
file, a new blob or changed catalog bytes behind would show: the refusal
must come before anything is touched. ``test_read_only_mount.py`` runs the
same calls on a real read-only mount.
"""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from registry import ReadOnlyRegistry, Registry
from tests.read_only_cases import READS, WRITES, fill, read_everything, snapshot


@pytest.fixture(scope="module")
def template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("read-only-template")
    fill(root / "registry", root / "files")
    return root


@pytest.fixture
def filled(template: Path, tmp_path: Path) -> Path:
    """A copy of the filled registry (and its files) of this test's own."""
    for part in ("registry", "files"):
        shutil.copytree(template / part, tmp_path / part)
    return tmp_path / "registry"


def test_every_read_works_read_only(filled: Path, tmp_path: Path) -> None:
    with Registry(filled, read_only=True) as reg:
        assert reg.read_only
        read_everything(reg, tmp_path / "out")


def test_every_public_method_is_a_read_or_a_write() -> None:
    """A new method of Registry must be classified, so that a new write cannot escape the refusal tests."""
    public = {name for name, value in vars(Registry).items() if not name.startswith("_") and callable(value)}
    assert public - set(WRITES) - READS == set(), "add each new method to WRITES or READS in tests/read_only_cases.py"
    assert set(WRITES) & READS == set()


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_write_is_refused_before_anything_is_touched(filled: Path, tmp_path: Path, write: str) -> None:
    before = {name: data for name, data in snapshot(filled).items() if not name.endswith(("-wal", "-shm"))}
    with Registry(filled, read_only=True) as reg:
        with pytest.raises(ReadOnlyRegistry, match="opened read-only") as caught:
            WRITES[write](reg, tmp_path / "files")
        assert caught.value.operation == write
        assert isinstance(caught.value, PermissionError)
        assert [mv.version for mv in reg.versions("m")] == [1, 2]
    after = {name: data for name, data in snapshot(filled).items() if not name.endswith(("-wal", "-shm"))}
    assert after == before  # no tmp/ file, no blob, not one catalog byte


def test_the_catalog_refuses_writes_itself_too(filled: Path) -> None:
    """Behind the registry's refusal, the read-only catalog refuses any write transaction (a second guard)."""
    with Registry(filled, read_only=True) as reg:
        with pytest.raises(ReadOnlyRegistry):
            reg._catalog.set_alias("m", "staging", 1)
        with reg._catalog.engine.connect() as connection, pytest.raises(Exception, match="readonly"):
            connection.exec_driver_sql("CREATE TABLE intruder (x INTEGER)")  # SQLite's mode=ro underneath


def test_an_older_schema_is_not_upgraded_read_only(filled: Path) -> None:
    from registry import SchemaVersionError

    with Registry(filled) as reg:
        with reg._catalog.engine.begin() as connection:
            connection.exec_driver_sql("UPDATE alembic_version SET version_num = '2395150adee6'")  # the first
    with pytest.raises(SchemaVersionError, match="older than this modelshelf"):
        Registry(filled, read_only=True, upgrade=True)


def test_a_keyed_registry_serves_read_only_and_remembers_what_it_saw(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    key = "k" * 32
    home = tmp_path / "keyed"
    with Registry(home, signing_key=key) as reg:
        reg.register("m", [1], format="pickle")
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELSHELF_CACHE", str(cache))
    with Registry(home, signing_key=key, read_only=True) as reg:
        assert reg.load("m") == [1]
    assert list((cache / "catalog-state").glob("*.json"))  # the anti-rollback memory is the client's, and kept
