"""Nothing that walks, lists, writes or deletes follows a symbolic link below a store's (or a cache's) root.

Each test builds real directories and real links: a ``tmp/``, ``blobs``,
``blobs/sha256`` or fan-out directory replaced by a link to a directory
outside the store, or a link in place of a blob. The outside directory's
files must survive ``gc`` and ``cache clear``, never be listed, and never
receive a blob; ``verify`` reports the link.
"""

from __future__ import annotations

import os
import stat
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from registry import store as stores
from registry.cli import cli
from registry.errors import StoreError
from registry.locations import CATALOG_FILE_NAME
from registry.store import LocalBlobStore, clear_cache
from tests.cli_helpers import run_cli

MODEL = {"weights": list(range(50))}


def old(path: Path) -> None:
    then = time.time() - 7200
    os.utime(path, (then, then), follow_symlinks=False)


def outside_dir(tmp_path: Path, names: list[str]) -> Path:
    """A directory outside every store, holding old files that nothing of modelshelf may touch."""
    outside = tmp_path / "outside"
    outside.mkdir()
    for name in names:
        (outside / name).write_bytes(b"precious " + name.encode())
        old(outside / name)
    return outside


def contents(directory: Path) -> list[str]:
    return sorted(str(p.relative_to(directory)) for p in directory.rglob("*"))


def digest_of(tmp_path: Path, template_home: Path, obj: object) -> str:
    """The digest ``obj`` gets when registered (pickles are deterministic), learnt in a scratch registry."""
    import shutil

    scratch = tmp_path / "scratch"
    scratch.mkdir()
    shutil.copyfile(template_home / CATALOG_FILE_NAME, scratch / CATALOG_FILE_NAME)
    with Registry(scratch) as reg:
        return reg.register("m", obj, format="pickle").digest


def symlink_kinds(report) -> list[str]:
    return [p.detail.split(" is a symbolic link")[0] for p in report.problems if p.kind == "symlink"]


def test_a_linked_tmp_is_neither_listed_nor_emptied_by_gc(reg: Registry, home: Path, tmp_path: Path) -> None:
    reg.register("m", MODEL, format="pickle")
    outside = outside_dir(tmp_path, ["a.tmp", "b.tmp"])
    (home / "tmp").rmdir()
    (home / "tmp").symlink_to(outside, target_is_directory=True)

    preview = reg.gc(dry_run=True, min_age=0)
    assert not any(str(outside) in entry or "tmp" in entry for entry in preview.removed), preview.removed
    report = reg.gc(dry_run=False, min_age=0)
    assert not any("tmp" in entry for entry in report.removed)
    assert contents(outside) == ["a.tmp", "b.tmp"]
    assert (home / "tmp").is_symlink()  # reported, left alone

    verified = reg.verify(deep=True)
    assert not verified.ok and symlink_kinds(verified) == [str(home / "tmp")]
    assert "remove the link" in next(p.detail for p in verified.problems if p.kind == "symlink")
    assert not any(p.kind == "stale_temp" for p in verified.problems)


def test_the_gc_command_on_a_linked_tmp(reg: Registry, home: Path, tmp_path: Path) -> None:
    reg.register("m", MODEL, format="pickle")
    outside = outside_dir(tmp_path, ["x.tmp"])
    (home / "tmp").rmdir()
    (home / "tmp").symlink_to(outside, target_is_directory=True)
    runner = CliRunner()
    dry = runner.invoke(cli, ["--home", str(home), "gc", "--dry-run", "--min-age", "0"])
    assert dry.exit_code == 0 and "x.tmp" not in dry.output, dry.output
    real = runner.invoke(cli, ["--home", str(home), "gc", "--min-age", "0"])
    assert real.exit_code == 0 and "x.tmp" not in real.output
    assert contents(outside) == ["x.tmp"]
    result = runner.invoke(cli, ["--home", str(home), "verify"])
    assert result.exit_code != 0 and "symlink" in result.output


def test_writing_refuses_a_linked_tmp(reg: Registry, home: Path, tmp_path: Path) -> None:
    outside = outside_dir(tmp_path, [])
    (home / "tmp").symlink_to(outside, target_is_directory=True)
    with pytest.raises(StoreError, match="symbolic link"):
        reg.register("m", MODEL, format="pickle")
    assert contents(outside) == []
    assert reg.models() == []


@pytest.mark.parametrize("linked", [("blobs",), ("blobs", "sha256")], ids=["blobs", "blobs-sha256"])
def test_a_linked_blobs_directory_is_reported_never_emptied_nor_written(
    reg: Registry, home: Path, tmp_path: Path, template_home: Path, linked: tuple[str, ...]
) -> None:
    """The outside directory looks like a blob tree; nothing in it is a blob of this store."""
    digest = digest_of(tmp_path, template_home, MODEL)
    outside = tmp_path / "outside"
    fake = outside.joinpath(*(("sha256",) if linked == ("blobs",) else ()), "ee")
    fake.mkdir(parents=True)
    planted = fake / ("e" * 62)
    planted.write_bytes(b"not ours")
    old(planted)
    home.joinpath(*linked[:-1]).mkdir(parents=True, exist_ok=True)
    home.joinpath(*linked).symlink_to(outside, target_is_directory=True)

    assert reg.gc(dry_run=True, min_age=0).removed == []
    assert reg.gc(dry_run=False, min_age=0).removed == []
    assert planted.read_bytes() == b"not ours"
    report = reg.verify()
    assert symlink_kinds(report) == [str(home.joinpath(*linked))]
    assert not any(p.kind == "orphan_blob" for p in report.problems)

    with pytest.raises(StoreError, match="symbolic link"):
        reg.register("m", MODEL, format="pickle")
    assert not any(digest[2:] in p for p in contents(outside)), "a blob was published through the link"


def test_a_linked_fanout_directory_receives_no_blob(
    reg: Registry, home: Path, tmp_path: Path, template_home: Path
) -> None:
    digest = digest_of(tmp_path, template_home, MODEL)
    outside = outside_dir(tmp_path, ["keep"])
    (home / "blobs" / "sha256").mkdir(parents=True)
    (home / "blobs" / "sha256" / digest[:2]).symlink_to(outside, target_is_directory=True)

    with pytest.raises(StoreError, match="symbolic link"):
        reg.register("m", MODEL, format="pickle")
    assert contents(outside) == ["keep"]
    assert reg.models() == []
    assert list(LocalBlobStore(home).temporary_files()) == []  # nothing half-written left behind
    report = reg.verify()
    assert symlink_kinds(report) == [str(home / "blobs" / "sha256" / digest[:2])]
    assert reg.gc(dry_run=False, min_age=0).removed == [] and contents(outside) == ["keep"]


def test_a_linked_blob_file_is_reported_and_gc_leaves_its_target(reg: Registry, home: Path, tmp_path: Path) -> None:
    mv = reg.register("m", MODEL, format="pickle")
    blob = reg._store.path_of(mv.digest)
    outside = tmp_path / "outside"
    outside.mkdir()
    target = outside / "copy"
    target.write_bytes(blob.read_bytes())  # the right bytes: only the link is wrong
    blob.chmod(0o644)
    blob.unlink()
    blob.symlink_to(target)

    report = reg.verify(deep=True)
    assert not report.ok
    assert symlink_kinds(report) == [str(blob)]
    assert f"sha256:{mv.digest}" in next(p.detail for p in report.problems if p.kind == "symlink")
    reg.delete_version("m", 1)  # frees the blob: the name (the link itself) goes, never what it points to
    reg.gc(dry_run=False, min_age=0)
    assert not blob.is_symlink() and target.read_bytes().startswith(b"\x80")


def test_cache_clear_never_deletes_through_a_linked_fanout(tmp_path: Path, monkeypatch) -> None:
    cache = tmp_path / "cache"
    sha = cache / "blobs" / "sha256"
    sha.mkdir(parents=True)
    (sha / "aa").mkdir()
    own = sha / "aa" / ("a" * 62)
    own.write_bytes(b"cached")
    outside = outside_dir(tmp_path, ["b" * 62, "notes.txt"])
    (sha / "bb").symlink_to(outside, target_is_directory=True)

    assert clear_cache(cache) == (1, len(b"cached"))
    assert not own.exists()
    assert contents(outside) == sorted(["b" * 62, "notes.txt"])
    assert stores.cache_links(cache) == [sha / "bb"]

    (sha / "aa" / ("c" * 62)).write_bytes(b"again")
    monkeypatch.setenv("MODELSHELF_CACHE", str(cache))
    result = run_cli(None, "cache", "clear")
    assert result.exit_code == 0 and "removed 1 file" in result.output
    assert str(sha / "bb") in result.output  # the link is named, not entered
    assert contents(outside) == sorted(["b" * 62, "notes.txt"])
    info = run_cli(None, "cache", "info")
    assert "0 blobs" in info.output and str(sha / "bb") in info.output


def test_directories_and_files_are_not_writable_by_others_whatever_the_umask(tmp_path: Path) -> None:
    store = LocalBlobStore(tmp_path / "store")
    seen: list[int] = []
    previous = os.umask(0)
    try:

        def write(file) -> None:
            file.write(b"bytes")
            (temp,) = (tmp_path / "store" / "tmp").iterdir()
            seen.append(stat.S_IMODE(temp.stat().st_mode))

        with store.stage(write) as staged:
            staged.publish()
    finally:
        os.umask(previous)
    assert seen and seen[0] & 0o077 == 0, oct(seen[0])  # while written: the owner's alone
    for path in [store.root / "tmp", *(store.root / "blobs").rglob("*")]:
        mode = stat.S_IMODE(path.lstat().st_mode)
        assert mode & 0o022 == 0, f"{path} is {oct(mode)}"
    assert stat.S_IMODE(store.path_of(staged.digest).stat().st_mode) == 0o444


def test_the_catalog_state_memory_in_the_cache_is_not_writable_by_others_whatever_the_umask(tmp_path: Path) -> None:
    from registry.trust.freshness import StateMemory

    cache = tmp_path / "new" / "cache"
    previous = os.umask(0)
    try:
        StateMemory(cache).observe("0" * 32, "m", 3)
    finally:
        os.umask(previous)
    written = cache / "catalog-state" / f"{'0' * 32}.json"
    assert written.exists()
    for path in [tmp_path / "new", cache, cache / "catalog-state", written]:
        mode = stat.S_IMODE(path.stat().st_mode)
        assert mode & 0o022 == 0, f"{path} is {oct(mode)}"
