"""One read: the bytes that are unpickled are the bytes that were hashed, in every mode.

The attacker here can write the store's files (a shared disk, another
account with access to the cache) but not the process's memory. The race
they would win — rewrite the start of a large blob right after its hash was
computed, then put its mtime back — is made deterministic by doing the
rewrite from inside the hash comparison (``check_hash`` as the local store calls it), the one
moment a real attacker has to hit by timing.
"""

from __future__ import annotations

import os
import pickle
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry import CorruptedArtifact, Registry
from registry.store import local, reading
from tests.markers import Marker
from tests.servers import fresh_bucket

KEY = "a-very-secret-signing-key-of-32-bytes"


def rewrite_start(blob: Path, payload: bytes) -> None:
    """Overwrite the first bytes of ``blob`` in place and put its mtime back, as a careful attacker would."""
    before = blob.stat()
    os.chmod(blob, 0o644)
    with open(blob, "r+b") as file:  # same inode, same size: only the start changes
        file.write(payload)
    os.chmod(blob, before.st_mode)
    os.utime(blob, ns=(before.st_atime_ns, before.st_mtime_ns))


def evil_pickle(mark: Path) -> bytes:
    """A complete pickle that writes ``mark`` when loaded; whatever follows its STOP is never read."""
    return pickle.dumps(Marker(mark), protocol=pickle.HIGHEST_PROTOCOL)


@pytest.fixture(params=["local", "s3", "s3rver"])
def registry_factory(request: pytest.FixtureRequest, tmp_path: Path, monkeypatch) -> Iterator[Callable[..., Registry]]:
    """Registries over a local store, or over S3 (moto or s3rver) read through this machine's verified cache."""
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))
    opened: list[Registry] = []

    def open_registry(signing_key: str | None = None) -> Registry:
        if request.param == "local":
            reg = Registry(tmp_path / "registry", signing_key=signing_key)
        else:
            request.getfixturevalue(request.param)  # moto's server, or s3rver
            if not hasattr(open_registry, "bucket"):
                open_registry.bucket = fresh_bucket()  # type: ignore[attr-defined]
            catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
            reg = Registry(catalog=catalog, store=open_registry.bucket, signing_key=signing_key)  # type: ignore[attr-defined]
        opened.append(reg)
        return reg

    yield open_registry
    for reg in opened:
        reg.close()


def local_file(reg: Registry, digest: str) -> Path:
    """The file a load reads: the store's blob, or the cached copy of a remote one."""
    store = reg._store
    return Path(store.cache.path_of(digest) if hasattr(store, "cache") else store.path_of(digest))


def rewrite_after_the_hash(monkeypatch, blob: Path, payload: bytes) -> list[int]:
    """Make the next hash comparison (SHA-256 or BLAKE3) rewrite ``blob`` right after it passes; count the rewrites."""
    done: list[int] = []

    def then_rewrite(original: Callable[..., None]) -> Callable[..., None]:
        def check_then_rewrite(*args: Any) -> None:
            original(*args)
            if not done:
                rewrite_start(blob, payload)
                done.append(1)

        return check_then_rewrite

    monkeypatch.setattr(local, "check_hash", then_rewrite(local.check_hash))
    monkeypatch.setattr(local, "check_blake3", then_rewrite(local.check_blake3))
    return done


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
@pytest.mark.parametrize("signing_key", [None, KEY], ids=["no key", "signing key"])
def test_a_blob_rewritten_right_after_its_hash_never_reaches_the_unpickler(
    registry_factory, monkeypatch, tmp_path: Path, knn, iris, fmt: str, signing_key: str | None
) -> None:
    mark = tmp_path / "mark"
    reg = registry_factory(signing_key)
    mv = reg.register("m", knn, format=fmt)
    blob = local_file(reg, mv.digest)
    payload = evil_pickle(mark)
    assert len(payload) < mv.size
    rewrites = rewrite_after_the_hash(monkeypatch, blob, payload)

    model = reg.load("m")

    assert rewrites == [1], "the attack ran: the blob was rewritten after its hash passed"
    assert not mark.exists(), "the rewritten bytes were unpickled"
    assert (model.predict(iris[0]) == knn.predict(iris[0])).all()
    assert blob.read_bytes().startswith(payload)  # the file really holds the attacker's bytes now
    if hasattr(reg._store, "cache"):  # a cached copy: hashed, discarded and downloaded again from the bucket
        assert (reg.load("m").predict(iris[0]) == knn.predict(iris[0])).all()
        assert not blob.read_bytes().startswith(payload)
    else:
        with pytest.raises(CorruptedArtifact):  # the store's own copy: the next load hashes it and refuses it
            reg.load("m")
    assert not mark.exists()


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
@pytest.mark.parametrize("which", ["first", "repeated"])
def test_a_blob_rewritten_as_the_unpickler_starts_is_not_what_it_reads(
    registry_factory, monkeypatch, tmp_path: Path, knn, iris, fmt: str, which: str
) -> None:
    """The latest possible moment: verification is over, the deserializer is about to read."""
    from registry import formats

    mark = tmp_path / "mark"
    reg = registry_factory()
    mv = reg.register("m", knn, format=fmt)
    if which == "repeated":
        reg.load("m")  # a load before: the next one must not trust anything it learned
    blob = local_file(reg, mv.digest)
    original = formats.load

    def rewrite_then_load(*args: Any, **kwargs: Any) -> Any:
        rewrite_start(blob, evil_pickle(mark))
        return original(*args, **kwargs)

    monkeypatch.setattr(formats, "load", rewrite_then_load)
    model = reg.load("m")
    assert not mark.exists(), "the rewritten bytes were unpickled"
    assert (model.predict(iris[0]) == knn.predict(iris[0])).all()


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
def test_a_rewrite_right_after_a_repeated_read_is_never_unpickled(
    reg: Registry, home: Path, monkeypatch, tmp_path: Path, knn, iris, fmt: str
) -> None:
    """A file loaded before, rewritten right after this load's read: the memory holds (and hashed) the old bytes."""
    mark = tmp_path / "mark"
    mv = reg.register("m", knn, format=fmt)
    reg.load("m")
    blob = reg._store.path_of(mv.digest)
    original = local.read_once

    def read_then_rewrite(source: Any, memory: Any, **how: Any) -> str:
        result = original(source, memory, **how)
        rewrite_start(blob, evil_pickle(mark))  # after the read and its hash, before anything is unpickled
        return result

    monkeypatch.setattr(local, "read_once", read_then_rewrite)
    model = reg.load("m")
    assert not mark.exists()
    assert (model.predict(iris[0]) == knn.predict(iris[0])).all()  # the memory held the verified bytes
    monkeypatch.setattr(local, "read_once", original)
    with pytest.raises(CorruptedArtifact):
        reg.load("m")
    assert not mark.exists()


def test_a_rewrite_in_the_middle_of_the_read_is_refused(reg: Registry, monkeypatch, tmp_path: Path, knn) -> None:
    """Half old bytes, half new: the hash of what landed in memory cannot match."""
    mark = tmp_path / "mark"
    mv = reg.register("m", knn, format="pickle")
    blob = reg._store.path_of(mv.digest)
    monkeypatch.setattr(reading, "CHUNK", 256)
    original = local.read_once

    class RewritingSource:
        def __init__(self, source: Any) -> None:
            self.source, self.reads = source, 0

        def readinto(self, buffer: Any) -> int:
            self.reads += 1
            if self.reads == 2:
                rewrite_start(blob, bytes(256) + evil_pickle(mark))
            return int(self.source.readinto(buffer))

    monkeypatch.setattr(
        local, "read_once", lambda source, memory, **how: original(RewritingSource(source), memory, **how)
    )
    with pytest.raises(CorruptedArtifact):
        reg.load("m")
    assert not mark.exists()


@pytest.fixture
def hash_count(monkeypatch) -> list[int]:
    """How many hashes loads start (every hash of a load goes through reading._sha256 or reading._blake3)."""
    calls: list[int] = []

    def counted(original: Callable[[], Any]) -> Callable[[], Any]:
        def count() -> Any:
            calls.append(1)
            return original()

        return count

    monkeypatch.setattr(reading, "_sha256", counted(reading._sha256))
    monkeypatch.setattr(reading, "_blake3", counted(reading._blake3))
    return calls


def test_every_load_hashes_even_after_a_write_that_moves_no_timestamp(reg: Registry, hash_count: list[int]) -> None:
    """A write through a shared writable mapping whose page is already dirty changes neither mtime nor ctime.

    An identity shortcut (skip the hash while device, inode, size, mtime and
    ctime are unchanged) would then unpickle bytes nobody verified; so
    every load hashes what it read.
    """
    import mmap
    import stat

    mv = reg.register("m", {"v": "A" * 200}, format="pickle")
    path = reg._store.path_of(mv.digest)
    os.chmod(path, stat.S_IRUSR | stat.S_IWUSR)
    with open(path, "r+b") as file:
        mapping = mmap.mmap(file.fileno(), 0, access=mmap.ACCESS_WRITE)
    try:
        mapping[0:1] = mapping[0:1]  # dirty the page with the same byte
        os.chmod(path, stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH)
        assert reg.load("m") == {"v": "A" * 200}
        before = os.stat(path)
        offset = mapping.find(b"A" * 200)
        mapping[offset : offset + 200] = b"B" * 200  # no page fault: no timestamp moves
        after = os.stat(path)
        assert (after.st_mtime_ns, after.st_ctime_ns, after.st_ino) == (
            before.st_mtime_ns,
            before.st_ctime_ns,
            before.st_ino,
        )
        with pytest.raises(CorruptedArtifact):
            reg.load("m")
    finally:
        mapping.close()
    assert len(hash_count) == 2  # both loads hashed


def test_bytes_changed_between_two_loads_are_hashed_and_refused(
    reg: Registry, tmp_path: Path, hash_count: list[int], knn
) -> None:
    mark = tmp_path / "mark"
    mv = reg.register("m", knn, format="joblib")
    reg.load("m")
    rewrite_start(reg._store.path_of(mv.digest), evil_pickle(mark))
    with pytest.raises(CorruptedArtifact):
        reg.load("m")
    assert len(hash_count) == 2 and not mark.exists()


def test_the_store_file_is_read_once_and_closed_before_anything_reads_the_artifact(reg: Registry, monkeypatch) -> None:
    """Whatever happens to the file while a verified artifact is open, the reader never sees it."""
    payload = {"payload": "a" * 100_000}
    mv = reg.register("m", payload, format="pickle")
    blob = reg._store.path_of(mv.digest)
    opened: list[int] = []
    original = local._open_without_links
    monkeypatch.setattr(local, "_open_without_links", lambda *args: opened.append(1) or original(*args))
    with reg.open_artifact("m") as stream:
        os.chmod(blob, 0o644)
        blob.write_bytes(bytes(mv.size))  # zeroed, same inode
        blob.unlink()
        data = stream.read()
        stream.seek(0)
        again = stream.read()
    assert opened == [1]
    assert pickle.loads(data) == pickle.loads(again) == payload


def test_fetch_writes_only_bytes_it_hashed_while_writing(reg: Registry, monkeypatch, tmp_path: Path) -> None:
    """A rewrite of the blob while it is being copied out: the copy is refused and never appears."""
    from registry.store import hashing

    mv = reg.register("m", {"blob": os.urandom(3_000_000)}, format="pickle")
    blob = reg._store.path_of(mv.digest)
    original = hashing.HashingWriter.write

    def write_then_rewrite(self: Any, data: Any) -> int:
        written = original(self, data)
        if self.size == written:  # after the first chunk, the rest of the file changes
            os.chmod(blob, 0o644)
            with open(blob, "r+b") as file:
                file.seek(2_000_000)
                file.write(b"tampered" * 1000)
        return written

    monkeypatch.setattr(hashing.HashingWriter, "write", write_then_rewrite)
    destination = tmp_path / "out.pkl"
    with pytest.raises(CorruptedArtifact):
        reg.fetch("m", destination)
    assert not destination.exists() and list(tmp_path.glob(".out.pkl*")) == []


def test_a_fifo_planted_as_a_blob_is_refused_without_hanging(reg: Registry) -> None:
    mv = reg.register("m", {"v": 1}, format="pickle")
    blob = reg._store.path_of(mv.digest)
    blob.unlink()
    os.mkfifo(blob)
    with pytest.raises(CorruptedArtifact, match="not a regular file|has 0 bytes"):
        reg.load("m")


def test_a_symbolic_link_anywhere_under_the_store_is_refused(reg: Registry, home: Path, tmp_path: Path) -> None:
    """An attacker's copy of the blob directory, linked in place of ``blobs/``: nothing is read through it."""
    mv = reg.register("m", {"v": 1}, format="pickle")
    elsewhere = tmp_path / "elsewhere"
    (home / "blobs").rename(elsewhere)
    (home / "blobs").symlink_to(elsewhere)
    assert (
        elsewhere / "sha256" / mv.digest[:2] / mv.digest[2:]
    ).is_file()  # intact bytes, reachable only through the link
    with pytest.raises(CorruptedArtifact, match="symbolic link"):
        reg.load("m")


def array_behind(array: np.ndarray) -> Any:
    """The object at the end of an array's chain of bases (itself if it owns its data)."""
    while isinstance(array, np.ndarray) and array.base is not None:
        array = array.base
    return array


@pytest.mark.parametrize("memory", ["small pages", "huge pages", "unlinked temporary file"])
def test_large_joblib_arrays_are_views_of_the_verified_bytes(reg: Registry, monkeypatch, memory: str) -> None:
    from registry.store import buffer

    if memory == "unlinked temporary file":
        monkeypatch.setattr(local, "IN_MEMORY_LIMIT", 0)
    monkeypatch.setattr(buffer, "HUGE_PAGES_FROM", 0 if memory == "huge pages" else 1 << 62)
    rng = np.random.default_rng(0)
    value = {
        "c": rng.standard_normal((300, 200)),
        "f": np.asfortranarray(rng.standard_normal((200, 300))),
        "nodes": np.zeros(5000, dtype=[("left", "<i8"), ("threshold", "<f8"), ("n", "<i4")]),
        "small": np.arange(10),
        "objects": np.array([{"a": 1}, "text", 3.5] * 10_000, dtype=object),
        "big_endian": np.arange(20_000, dtype=">f8"),
    }
    reg.register("m", value, format="joblib")
    loaded = reg.load("m")
    for name in ("c", "f", "nodes"):
        assert np.array_equal(loaded[name], value[name])
        assert isinstance(array_behind(loaded[name]), memoryview), f"{name} was copied"
        assert loaded[name].flags.writeable and loaded[name].ctypes.data % 16 == 0
    assert loaded["f"].flags.f_contiguous
    for name in ("small", "objects", "big_endian"):  # small, nested pickle, foreign byte order: joblib's own path
        assert not isinstance(array_behind(loaded[name]), memoryview), f"{name} should have been copied"
        assert (loaded[name] == value[name]).all()
    assert loaded["big_endian"].dtype.isnative
    loaded["c"][0, 0] = 42.0  # writable like joblib.load's arrays; the next load is unaffected
    assert reg.load("m")["c"][0, 0] == value["c"][0, 0]


def test_the_zero_copy_loader_agrees_with_joblib_on_real_models(tmp_path: Path, iris, pipeline) -> None:
    import joblib
    from sklearn.ensemble import HistGradientBoostingClassifier, RandomForestClassifier

    from registry.formats.joblib_fast import load_joblib_unsafe
    from registry.store.buffer import VerifiedReader

    X, y = iris
    models = [
        pipeline,
        RandomForestClassifier(n_estimators=20, random_state=0).fit(X, y),
        HistGradientBoostingClassifier(max_iter=20).fit(X, y),
    ]
    for model in models:
        path = tmp_path / "model.joblib"
        joblib.dump(model, path)
        reader = VerifiedReader(bytearray(path.read_bytes()))
        ours = load_joblib_unsafe(reader)
        assert (ours.predict(X) == joblib.load(path).predict(X)).all()


def test_compressed_joblib_files_and_plain_file_objects_take_joblib_s_own_path(tmp_path: Path) -> None:
    import joblib

    from registry.formats.joblib_fast import load_joblib_unsafe
    from registry.store.buffer import VerifiedReader

    value = {"w": np.arange(100_000.0)}
    path = tmp_path / "compressed.joblib"
    joblib.dump(value, path, compress=3)
    assert np.array_equal(load_joblib_unsafe(VerifiedReader(bytearray(path.read_bytes())))["w"], value["w"])
    joblib.dump(value, path)
    with open(path, "rb") as file:
        assert np.array_equal(load_joblib_unsafe(file)["w"], value["w"])


def test_the_verified_reader_is_a_read_only_seekable_file() -> None:
    import io

    from registry.store.buffer import VerifiedReader

    reader = VerifiedReader(bytearray(b"line one\nline two\nend"))
    assert reader.readline() == b"line one\n" and reader.tell() == 9
    assert reader.peek(4)[:4] == b"line" and reader.tell() == 9
    target = bytearray(4)
    assert reader.readinto(target) == 4 and target == b"line"
    assert reader.seek(-3, io.SEEK_END) == 18 and reader.read() == b"end" and reader.read() == b""
    assert reader.readinto(bytearray(3)) == 0 and reader.peek() == b""
    view = reader.getbuffer()
    view.release()  # the caller's own view: the reader keeps working
    assert bytes(reader.getbuffer()[:4]) == b"line"
    with pytest.raises(io.UnsupportedOperation):
        reader.write(b"x")
    with pytest.raises(ValueError, match="negative seek"):
        reader.seek(-1)
    reader.close()
    with pytest.raises(ValueError, match="closed"):
        reader.read()


def test_a_shape_claiming_more_bytes_than_the_buffer_holds_gets_no_view() -> None:
    """A view never allocates; a wrapper announcing more data than follows is left to joblib's reader."""
    from types import SimpleNamespace

    from registry.formats.joblib_fast import array_view
    from registry.store.buffer import VerifiedReader

    memory = bytearray(b"\x0f" + b"\xff" * 15 + bytes(200_000))
    reader = VerifiedReader(memory)
    whole = reader.getbuffer()
    address = np.frombuffer(whole, dtype=np.uint8).ctypes.data

    def wrapper(rows: int) -> Any:
        return SimpleNamespace(
            dtype=np.dtype("<f8"), shape=(rows,), order="C", safe_get_numpy_array_alignment_bytes=lambda: 16
        )

    assert array_view(wrapper(10**12), reader, whole, address) is None and reader.tell() == 0
    array = array_view(wrapper(25_000), reader, whole, address)
    assert array is not None and array.shape == (25_000,) and reader.tell() == 16 + 200_000
    assert not array.flags.owndata
