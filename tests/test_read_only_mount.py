"""A registry on a real read-only mount, as a serving container sees it.

The registry is written in a writable directory first, then bind-mounted
read-only (``mount --bind`` and ``mount -o remount,ro,bind``: needs root, as
CI has). Where mounting is impossible the tests skip with the reason, or
fail under ``MODELSHELF_REQUIRE_SERVERS=1`` (CI), like the server tests.
"""

from __future__ import annotations

import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import CatalogError, ReadOnlyRegistry, Registry
from tests.cli_helpers import run_cli
from tests.mounts import read_only_mount
from tests.read_only_cases import WRITES, fill, read_everything, snapshot


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The writable directory holding a filled registry (closed: no -wal or -shm beside its catalog)."""
    home = tmp_path / "registry"
    fill(home, tmp_path / "files")
    assert not list(home.glob("catalog.db-*"))
    return home


@pytest.fixture
def mounted(source: Path, tmp_path: Path) -> Iterator[Path]:
    """``source`` seen through a read-only bind mount (:func:`tests.mounts.read_only_mount`); unmounted afterwards."""
    with read_only_mount(source, tmp_path / "mounted") as target:
        yield target


def test_a_plain_open_says_to_open_it_read_only(mounted: Path) -> None:
    with pytest.raises(CatalogError, match=r"read_only=True"):
        Registry(mounted)


def test_every_read_works_and_nothing_changes(mounted: Path, source: Path, tmp_path: Path) -> None:
    before = snapshot(source)
    with Registry(mounted, read_only=True) as reg:
        read_everything(reg, tmp_path / "out")
    assert snapshot(source) == before  # not even a -wal or -shm: the catalog was read as immutable


def test_a_mode_ro_uri_reads_the_mount_too(mounted: Path) -> None:
    url = f"sqlite:///file:{mounted / 'catalog.db'}?mode=ro&uri=true"
    with Registry(catalog=url, store=str(mounted)) as reg:
        assert reg.read_only
        assert reg.load("m@production") == [1, 2]


@pytest.mark.parametrize("write", sorted(WRITES))
def test_every_write_is_refused_with_the_error(mounted: Path, source: Path, tmp_path: Path, write: str) -> None:
    before = snapshot(source)
    with Registry(mounted, read_only=True) as reg:
        with pytest.raises(ReadOnlyRegistry, match="opened read-only"):
            WRITES[write](reg, tmp_path / "files")
    assert snapshot(source) == before


def test_the_cli_reads_the_mount_and_refuses_writes(mounted: Path, source: Path, tmp_path: Path) -> None:
    before = snapshot(source)
    for args in (
        ["versions", "m"],
        ["show", "m@production", "--json"],
        ["history", "m"],
        ["search", "metrics.accuracy > 0.92"],
        ["verify"],
        ["log", "m"],
        ["fetch", "m:1", "-o", str(tmp_path / "m1.pkl")],
    ):
        result = run_cli(mounted, "--read-only", *args)
        assert result.exit_code == 0, (args, result.output)
    assert (tmp_path / "m1.pkl").is_file()
    listed = run_cli(mounted, "versions", "m", env={"MODELSHELF_READ_ONLY": "1"})
    assert listed.exit_code == 0, listed.output
    refused = run_cli(mounted, "--read-only", "alias", "set", "m", "staging", "1")
    assert refused.exit_code == 1
    assert "opened read-only" in refused.stderr
    current = run_cli(mounted, "db", "current")  # a look at the schema needs no --read-only
    assert current.exit_code == 0 and "up to date" in current.output, current.output
    plain = run_cli(mounted, "versions", "m")
    assert plain.exit_code == 1 and "--read-only" in plain.stderr  # the one-line error says what to do
    assert snapshot(source) == before


WRITER = """
import sys
from registry import Registry
with Registry(sys.argv[1]) as reg:
    for value in (3, 4):
        reg.register("m", [value], format="pickle")
        print("registered", flush=True)
        sys.stdin.readline()
"""


def test_a_reader_on_the_mount_sees_what_a_writer_of_the_directory_adds(mounted: Path, source: Path) -> None:
    """The serving-container case: the writer has the catalog open (so -wal/-shm exist), the reader is on ro."""
    writer = subprocess.Popen(
        [sys.executable, "-c", WRITER, str(source)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(sys.path)},
    )
    try:
        assert writer.stdout is not None and writer.stdin is not None
        assert writer.stdout.readline() == "registered\n"
        assert (source / "catalog.db-shm").exists()
        with Registry(mounted, read_only=True) as reg:
            assert [mv.version for mv in reg.versions("m")] == [1, 2, 3]
            writer.stdin.write("\n")
            writer.stdin.flush()
            assert writer.stdout.readline() == "registered\n"
            assert [mv.version for mv in reg.versions("m")] == [1, 2, 3, 4]  # the same open registry sees it
            assert reg.load("m:4") == [4]
        writer.stdin.write("\n")
        writer.stdin.flush()
        assert writer.wait(timeout=60) == 0
    finally:
        if writer.poll() is None:
            writer.kill()
            writer.wait()


def test_an_unwritable_cache_only_warns_a_keyed_reader(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "keyed"
    key = "k" * 32
    with Registry(home, signing_key=key) as reg:
        reg.register("m", [1], format="pickle")
    cache = tmp_path / "cache"
    cache.mkdir()
    with read_only_mount(cache, tmp_path / "mounted") as target:
        monkeypatch.setenv("MODELSHELF_CACHE", str(target))
        with Registry(home, signing_key=key, read_only=True) as reg:
            with pytest.warns(UserWarning, match="rollbacks will not be noticed"):
                assert reg.load("m") == [1]
