"""The local cache of an object store is only a copy: a cached file that fails its check is fetched again.

Against the real S3-protocol server(s) of the ``s3`` fixture. A cached blob
of the right size with other bytes (damaged, or planted in a shared cache
under the right name), a link in its place, or a file of another size is
hashed, discarded and downloaded again; :class:`CorruptedArtifact` is raised
only when the object store's own copy is bad, and then says so.
"""

from __future__ import annotations

import hashlib
import os
import stat
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import CorruptedArtifact, Registry
from registry.errors import StoreError
from tests.servers import fresh_bucket

MODEL = {"weights": list(range(2000)), "name": "true model"}


@pytest.fixture
def writer(s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[Registry]:
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))
    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=fresh_bucket()) as reg:
        yield reg


def cached(reg: Registry, digest: str) -> Path:
    return Path(reg._store.cache.path_of(digest))


def overwrite(path: Path, data: bytes) -> None:
    """Replace a cached file's bytes in place (same inode), as a damaged disk or another user would."""
    path.chmod(0o644)
    path.write_bytes(data)
    path.chmod(0o444)


def flipped(data: bytes) -> bytes:
    damaged = bytearray(data)
    damaged[len(damaged) // 2] ^= 0xFF
    return bytes(damaged)


def read_every_way(reg: Registry, way: str, tmp_path: Path) -> Any:
    if way == "load":
        return reg.load("m")
    if way == "fetch":
        target = tmp_path / "fetched.pkl"
        reg.fetch("m", path=target)
        return target.read_bytes()
    with reg.open_artifact("m") as stream:
        return stream.read()


def expected(way: str, blob: bytes) -> Any:
    return MODEL if way == "load" else blob


@pytest.mark.parametrize("way", ["load", "fetch", "open_artifact"])
def test_a_damaged_cached_blob_of_the_right_size_is_fetched_again(writer: Registry, tmp_path: Path, way: str) -> None:
    mv = writer.register("m", MODEL, format="pickle")
    path = cached(writer, mv.digest)
    blob = path.read_bytes()
    overwrite(path, flipped(blob))  # the registering machine's own cached copy, same size

    assert read_every_way(writer, way, tmp_path) == expected(way, blob)
    assert hashlib.sha256(path.read_bytes()).hexdigest() == mv.digest  # repaired in place
    assert stat.S_IMODE(path.stat().st_mode) == 0o444
    assert writer.verify(deep=True).ok


def test_a_file_planted_in_a_shared_cache_under_the_right_name_is_hashed_and_replaced(
    writer: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    mv = writer.register("m", MODEL, format="pickle")
    shared = tmp_path / "shared-cache"
    planted = shared / "blobs" / "sha256" / mv.digest[:2] / mv.digest[2:]
    planted.parent.mkdir(parents=True)
    planted.write_bytes(b"\x80" + b"E" * (mv.size - 1))  # another machine never fetched it; someone planted this
    planted.chmod(0o444)
    monkeypatch.setenv("MODELSHELF_CACHE", str(shared))
    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=writer.store_location) as reader:
        assert reader.load("m") == MODEL
    assert hashlib.sha256(planted.read_bytes()).hexdigest() == mv.digest


def test_a_link_in_place_of_a_cached_blob_is_replaced_never_followed(writer: Registry, tmp_path: Path) -> None:
    mv = writer.register("m", MODEL, format="pickle")
    path = cached(writer, mv.digest)
    decoy = tmp_path / "decoy"
    decoy.write_bytes(flipped(path.read_bytes()))
    path.unlink()
    path.symlink_to(decoy)

    assert writer.load("m") == MODEL
    assert not path.is_symlink() and hashlib.sha256(path.read_bytes()).hexdigest() == mv.digest
    assert decoy.read_bytes() == flipped(path.read_bytes())  # the link's target was not written to


def test_a_cached_file_of_another_size_is_fetched_again(writer: Registry) -> None:
    mv = writer.register("m", MODEL, format="pickle")
    path = cached(writer, mv.digest)
    overwrite(path, path.read_bytes()[:-5])
    assert writer.load("m") == MODEL
    assert path.stat().st_size == mv.size


def test_only_a_bad_copy_in_the_object_store_is_reported_as_corruption(writer: Registry) -> None:
    mv = writer.register("m", MODEL, format="pickle")
    store = writer._store
    key = str(store.path_of(mv.digest))
    store._fs.pipe(key, flipped(store._fs.cat(key)))  # the bucket's own copy, same size
    overwrite(cached(writer, mv.digest), flipped(cached(writer, mv.digest).read_bytes()))  # and the cached one

    with pytest.raises(CorruptedArtifact, match="object store's own copy") as raised:
        writer.load("m")
    assert "m:1" in str(raised.value)
    assert not cached(writer, mv.digest).exists()  # the bad copy was discarded, nothing unverified was cached
    with pytest.raises(CorruptedArtifact, match="object store's own copy"):
        writer.load("m")


def test_a_linked_cache_fanout_receives_nothing_when_registering_or_fetching(
    s3: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    bucket = fresh_bucket()
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "writer-cache"))
    with Registry(catalog=catalog, store=bucket) as writer:
        mv = writer.register("m", MODEL, format="pickle")
    outside = tmp_path / "outside"
    outside.mkdir()
    cache = tmp_path / "reader-cache"
    (cache / "blobs" / "sha256").mkdir(parents=True)
    (cache / "blobs" / "sha256" / mv.digest[:2]).symlink_to(outside, target_is_directory=True)
    monkeypatch.setenv("MODELSHELF_CACHE", str(cache))
    with Registry(catalog=catalog, store=bucket) as reader:
        with pytest.raises(StoreError, match="symbolic link"):
            reader.load("m")
        # The same bytes again: the version is recorded (the bucket holds the bytes) and its local copy,
        # which would land in the linked directory, is skipped: the cache is filled only after the commit.
        assert reader.register("m", MODEL, format="pickle").version == 2
        assert [p.kind for p in reader.verify(deep=False).problems] == ["symlink"]
    assert os.listdir(outside) == []


def test_a_cache_filled_under_umask_000_is_writable_by_nobody_else(
    writer: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    writer.register("m", MODEL, format="pickle")
    cache = tmp_path / "fresh" / "cache"
    monkeypatch.setenv("MODELSHELF_CACHE", str(cache))
    previous = os.umask(0)
    try:
        with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=writer.store_location) as reader:
            assert reader.load("m") == MODEL
    finally:
        os.umask(previous)
    made = [tmp_path / "fresh", cache, *cache.rglob("*")]
    assert any(path.is_file() for path in made)
    loose = {str(path): oct(stat.S_IMODE(path.stat().st_mode)) for path in made if path.stat().st_mode & 0o022}
    assert loose == {}


def test_a_link_swapped_in_for_the_staging_directory_before_the_upload_poisons_nothing(
    writer: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between hashing the staged file and uploading it, someone replaces the cache's tmp/ with a link.

    The race cannot be timed for real, so the swap runs just before the
    upload; what the upload then reads is the real filesystem.
    """
    from registry.store import remote

    original = remote.RemoteBlobStore._upload
    outside = tmp_path / "outside"

    def swap_then_upload(store: Any, local: Any, key: str) -> None:
        tmp = local.temp_path.parent
        tmp.rename(tmp.with_name("tmp-hashed"))
        outside.mkdir()
        (outside / local.temp_path.name).write_bytes(b"\x80" + b"P" * (local.size - 1))  # same size, other bytes
        tmp.symlink_to(outside, target_is_directory=True)
        original(store, local, key)

    monkeypatch.setattr(remote.RemoteBlobStore, "_upload", swap_then_upload)
    with pytest.raises(StoreError, match="symbolic link"):
        writer.register("m", MODEL, format="pickle")
    assert writer.models() == []
    found = writer._store._fs.find(writer.store_location.removeprefix("s3://"))
    assert [key for key in found if "/blobs/" in key] == [], "foreign bytes were published under a digest"
