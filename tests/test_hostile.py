"""Broken environments: links out of the store, read-only disks, full disks. A clear error, nothing half-written.

The faults are real: a read-only bind mount and a tiny tmpfs. Creating them
needs root (or CAP_SYS_ADMIN); elsewhere these tests skip and say why. CI
runs as root, where they run.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import uuid
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import pytest

from registry import CorruptedArtifact, Registry, StoreError
from registry.errors import CatalogError
from tests.conftest import blob_files, temp_files


def _mount(*args: str) -> None:
    subprocess.run(["mount", *args], check=True, capture_output=True)


@pytest.fixture
def mounts() -> Iterator[list[Path]]:
    mounted: list[Path] = []
    yield mounted
    for point in reversed(mounted):
        subprocess.run(["umount", "-l", str(point)], capture_output=True)


def mount_or_skip(mounted: list[Path], point: Path, *args: str) -> None:
    if os.geteuid() != 0 or shutil.which("mount") is None:
        pytest.skip("needs root to mount a read-only or tiny filesystem (CI runs as root)")
    try:
        _mount(*args, str(point))
    except subprocess.CalledProcessError as exc:
        pytest.skip(f"this machine refuses mounts: {exc.stderr.decode().strip()}")
    mounted.append(point)


def read_only(mounted: list[Path], directory: Path) -> None:
    mount_or_skip(mounted, directory, "--bind", str(directory))
    _mount("-o", "remount,bind,ro", str(directory))


def test_a_blob_that_is_a_symlink_out_of_the_store_is_refused(reg: Registry, home: Path, tmp_path: Path) -> None:
    mv = reg.register("m", {"v": 1}, format="pickle")
    (blob,) = blob_files(home)
    outside = tmp_path / "outside.pkl"
    shutil.copyfile(blob, outside)  # even identical bytes: a link is not something modelshelf writes
    blob.unlink()
    blob.symlink_to(outside)
    with pytest.raises(CorruptedArtifact, match="symbolic link"):
        reg.load("m")
    assert reg.get("m").checksum == mv.checksum


def test_a_fanout_directory_that_is_a_symlink_is_refused(reg: Registry, home: Path, tmp_path: Path) -> None:
    reg.register("m", {"v": 1}, format="pickle")
    (blob,) = blob_files(home)
    elsewhere = tmp_path / "elsewhere"
    shutil.copytree(blob.parent, elsewhere)
    shutil.rmtree(blob.parent)
    blob.parent.symlink_to(elsewhere)
    with pytest.raises(CorruptedArtifact, match="symbolic link"):
        reg.load("m")


def test_a_read_only_store_is_a_clear_error_and_the_catalog_is_unchanged(tmp_path: Path, mounts) -> None:
    store = tmp_path / "store"
    catalog = f"sqlite:///{tmp_path / 'catalog' / 'c.db'}"
    with Registry(catalog=catalog, store=store) as reg:
        reg.register("m", {"v": 1}, format="pickle")
    read_only(mounts, store)
    with Registry(catalog=catalog, store=store) as reg:
        with pytest.raises(StoreError, match="blob store") as caught:
            reg.register("m", {"v": 2}, format="pickle")
        assert "writable" in str(caught.value)
        assert [mv.version for mv in reg.versions("m")] == [1]
        assert reg.load("m") == {"v": 1}  # a read-only replica still serves
        assert reg.verify().ok
        with pytest.warns(UserWarning, match="gc"):  # the version goes; its bytes wait for gc
            reg.delete_version("m", 1)
        assert reg.models() == []
    with Registry(catalog=catalog, store=tmp_path / "writable") as reg:
        assert reg.register("m", {"v": 2}, format="pickle").version == 2  # the failed attempt used no number
        assert reg.load("m") == {"v": 2}


def test_a_read_only_catalog_is_a_clear_error(tmp_path: Path, mounts) -> None:
    home = tmp_path / "reg"
    with Registry(home) as reg:
        reg.register("m", {"v": 1}, format="pickle")
    read_only(mounts, home)
    with pytest.raises(CatalogError, match="not writable.*fix the permissions"):
        Registry(home)


def test_a_registry_under_a_read_only_directory_cannot_be_created(tmp_path: Path, mounts) -> None:
    parent = tmp_path / "ro"
    parent.mkdir()
    read_only(mounts, parent)
    with pytest.raises(CatalogError, match="writable location"):
        Registry(parent / "new")


def test_a_full_disk_leaves_no_row_and_no_partial_blob(tmp_path: Path, mounts) -> None:
    store = tmp_path / "small"
    store.mkdir()
    mount_or_skip(mounts, store, "-t", "tmpfs", "-o", "size=2m,nr_inodes=1k,mode=0755", f"ms-{uuid.uuid4().hex[:8]}")
    catalog = f"sqlite:///{tmp_path / 'c.db'}"
    with Registry(catalog=catalog, store=store) as reg:
        reg.register("m", {"small": True}, format="pickle")
        for fmt in ("joblib", "pickle"):
            with pytest.raises(StoreError, match="free space"):
                reg.register("m", np.ones(1_000_000), format=fmt)  # 8 MB into 2 MB
        assert [mv.version for mv in reg.versions("m")] == [1]
        assert len(blob_files(store)) == 1 and temp_files(store) == []
        assert reg.verify().ok and reg.verify().problems == []
        assert reg.register("m", {"small": "again"}, format="pickle").version == 2
