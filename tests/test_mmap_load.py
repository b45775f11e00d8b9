"""``load(ref, mmap=True)``: large arrays as read-only views of the verified store file, shared between processes.

The attacker here can write the store's files only where modelshelf lets
someone other than this process's user or root write them (a file owned
by another account, or with a group or world write bit): there a mapping
could change under a running model, so the load is refused before anything
is mapped. Swapped bytes are refused as in a plain load.
"""

from __future__ import annotations

import os
import pickle
import stat
from pathlib import Path
from typing import Any

import joblib
import numpy as np
import pytest
from sklearn.neighbors import KNeighborsClassifier

from registry import CorruptedArtifact, InvalidArgument, Registry, UnmappableBlob, UntrustedArtifact
from registry.store import MemoryStore

KEY = "mmap-load-signing-key-of-32-bytes!!"


@pytest.fixture(scope="module")
def wide() -> tuple[Any, Any]:
    """A kNN model whose training data (about 2 MB) is one large array, as a model that keeps its data has."""
    rng = np.random.default_rng(0)
    X = rng.standard_normal((5000, 50))
    return KNeighborsClassifier(algorithm="brute").fit(X, rng.integers(0, 2, 5000)), X


def mapped_files(array: np.ndarray) -> list[str]:
    """The files whose mapping holds ``array``'s data in this process (from /proc/self/maps)."""
    address = array.__array_interface__["data"][0]
    found = []
    with open("/proc/self/maps") as maps:
        for line in maps:
            fields = line.split()
            start, end = (int(part, 16) for part in fields[0].split("-"))
            if start <= address < end and len(fields) >= 6:
                found.append(fields[5])
    return found


def make_writable_by_others(path: Path) -> None:
    os.chmod(path, 0o666)


@pytest.mark.parametrize("safe", [False, True], ids=["joblib", "safe"])
@pytest.mark.parametrize("key", [None, KEY], ids=["no key", "signing key"])
def test_large_arrays_are_read_only_views_of_the_store_file(home: Path, wide, safe: bool, key: str | None) -> None:
    model, X = wide
    with Registry(home, signing_key=key) as reg:
        mv = reg.register("knn", model)
        loaded = reg.load("knn", mmap=True, safe=safe)
        assert (loaded.predict(X[:50]) == model.predict(X[:50])).all()
        data = loaded._fit_X
        assert not data.flags.writeable  # read-only: nothing can change the shared pages through it
        assert mapped_files(data) == [str(reg._store.path_of(mv.digest))]  # the page cache's copy, not a private one
        plain = reg.load("knn")._fit_X
        assert plain.flags.writeable and mapped_files(plain) != [str(reg._store.path_of(mv.digest))]


def test_a_swapped_blob_is_refused_before_anything_is_unpickled(reg: Registry, tmp_path: Path, wide) -> None:
    mark = tmp_path / "pwned"
    mv = reg.register("knn", wide[0])
    path = reg._store.path_of(mv.digest)
    os.chmod(path, 0o644)
    path.write_bytes(pickle.dumps(_Evil(str(mark))).ljust(mv.size, b"."))
    os.chmod(path, 0o444)
    with pytest.raises(CorruptedArtifact):
        reg.load("knn", mmap=True)
    assert not mark.exists()


def test_a_store_file_others_can_write_is_never_mapped(reg: Registry, wide) -> None:
    """A group or world write bit (or an ACL, which shows as one) lets someone rewrite the pages after the hash."""
    mv = reg.register("knn", wide[0])
    path = reg._store.path_of(mv.digest)
    make_writable_by_others(path)
    with pytest.raises(UntrustedArtifact, match="lets its group or others write it.*without mmap=True") as refused:
        reg.load("knn", mmap=True)
    assert isinstance(refused.value, UnmappableBlob)  # the file, not the version: callers may fall back to a copy
    assert reg.load("knn")._fit_X.flags.writeable  # a plain load reads a private copy: it still works


@pytest.mark.skipif(not hasattr(os, "geteuid") or os.geteuid() != 0, reason="needs root to give the file away")
def test_a_store_file_owned_by_another_account_is_never_mapped(reg: Registry, wide) -> None:
    """Its owner can chmod it and rewrite the bytes under the mapped arrays of every worker."""
    mv = reg.register("knn", wide[0])
    os.chown(reg._store.path_of(mv.digest), 54321, -1)
    with pytest.raises(UntrustedArtifact, match="owned by uid 54321"):
        reg.load("knn", mmap=True)


def test_mmap_refuses_a_pickle_artifact_before_reading_it(reg: Registry, wide) -> None:
    mv = reg.register("p", wide[0], format="pickle")
    os.chmod(reg._store.path_of(mv.digest), 0o666)  # were it read, this would be refused as untrusted
    with pytest.raises(InvalidArgument, match="'pickle' format.*format='joblib'"):
        reg.load("p", mmap=True)


def test_mmap_refuses_a_compressed_artifact_and_says_what_to_do(reg: Registry, tmp_path: Path, wide) -> None:
    path = tmp_path / "knn.joblib"
    joblib.dump(wide[0], path, compress=3)
    reg.register_file("c", path, check=False)
    with pytest.raises(InvalidArgument, match="registered compressed.*without mmap=True.*compress=0"):
        reg.load("c", mmap=True)
    assert reg.load("c").n_neighbors == wide[0].n_neighbors


def test_mmap_refuses_a_store_with_no_file_to_map(tmp_path: Path) -> None:
    with Registry(tmp_path / "home", store=MemoryStore()) as reg:
        reg.register("m", {"w": np.arange(10)})
        with pytest.raises(InvalidArgument, match="keeps no file this machine can map"):
            reg.load("m", mmap=True)


@pytest.mark.parametrize("value", ["yes", 1, None])
def test_mmap_must_be_a_bool(reg: Registry, value: object) -> None:
    reg.register("m", {"w": 1})
    with pytest.raises(InvalidArgument, match="mmap must be True or False"):
        reg.load("m", mmap=value)  # type: ignore[arg-type]


def test_a_small_artifact_loads_with_mmap_too(reg: Registry) -> None:
    reg.register("m", {"w": np.arange(10)})
    assert reg.load("m", mmap=True)["w"].tolist() == list(range(10))


def test_the_mapping_is_what_was_hashed(reg: Registry, wide, monkeypatch: pytest.MonkeyPatch) -> None:
    """The digest is computed over the mapping the loader reads, not over a separate read of the file."""
    from registry.store import local

    seen: list[Any] = []
    original = local.hash_memory

    def recording(memory: Any, *, fast: bool) -> str:
        seen.append(memory)
        return original(memory, fast=fast)

    monkeypatch.setattr(local, "hash_memory", recording)
    mv = reg.register("knn", wide[0])
    loaded = reg.load("knn", mmap=True)
    (memory,) = seen
    assert len(memory) == mv.size and memory.closed is False
    base = np.frombuffer(memory, dtype=np.uint8)
    assert np.shares_memory(loaded._fit_X, base)


def test_mmap_on_an_object_store_says_why_it_cannot(s3: str, tmp_path: Path) -> None:
    from tests.servers import fresh_bucket

    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=fresh_bucket()) as reg:
        reg.register("m", {"w": np.arange(100_000)})
        with pytest.raises(InvalidArgument, match="object store is read through a private verified copy"):
            reg.load("m", mmap=True)
        assert reg.load("m")["w"][-1] == 99_999


class _Evil:
    def __init__(self, mark: str) -> None:
        self.mark = mark

    def __reduce__(self) -> Any:
        return (open, (self.mark, "w"))


def test_read_only_mode_bits_alone_are_what_the_store_writes() -> None:
    """The check asks for what the store creates: 0444 files, owned by the writer."""
    from registry.store.mapping import outside_writers

    info = os.stat_result((stat.S_IFREG | 0o444, 0, 0, 1, os.geteuid(), 0, 10, 0, 0, 0))
    assert outside_writers(info) is None
    assert "group or others" in str(outside_writers(os.stat_result((stat.S_IFREG | 0o664, 0, 0, 1, 0, 0, 10, 0, 0, 0))))
