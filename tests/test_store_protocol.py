"""Every store implements BlobStore the same way: one test body per protocol method, run on each backend.

The remote store runs here on fsspec's in-process ``memory://`` filesystem
(real fsspec code, no server); the S3 servers are exercised in
test_backends.py. A Registry on a MemoryStore runs the whole life of a
version (register, load, verify, gc, delete) with a real SQLite catalog.
"""

from __future__ import annotations

import contextlib
import hashlib
import secrets
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import CorruptedArtifact, InvalidArgument, Registry, StoreError
from registry.maintenance import WastePlan, plan_waste
from registry.store import BlobStore, LocalBlobStore, MemoryStore, StagedBlob, open_store
from registry.store.remote import RemoteBlobStore

BACKENDS = ["local", "memory", "remote"]


@pytest.fixture(params=BACKENDS)
def store(request: pytest.FixtureRequest, tmp_path: Path) -> BlobStore:
    if request.param == "local":
        return LocalBlobStore(tmp_path / "store")
    if request.param == "memory":
        return MemoryStore()
    return RemoteBlobStore(f"memory://modelshelf-{secrets.token_hex(6)}/store", tmp_path / "cache")


def put(store: BlobStore, data: bytes) -> str:
    with store.stage(lambda file: file.write(data)) as staged:
        staged.push()
        staged.publish()
    return staged.digest


def damage(store: BlobStore, digest: str, data: bytes) -> None:
    """Put other bytes of the same size under ``digest``, as a disk fault or an attacker would."""
    if isinstance(store, MemoryStore):
        store.objects[digest] = data
    elif isinstance(store, RemoteBlobStore):
        with store._fs.open(str(store.path_of(digest)), "wb") as file:
            file.write(data)
        store.cache.delete(digest)  # the verified cached copy would otherwise be read
    else:
        path = Path(store.path_of(digest))
        path.chmod(0o644)
        path.write_bytes(data)


def test_every_store_satisfies_the_protocols(store: BlobStore) -> None:
    assert isinstance(store, BlobStore)
    with store.stage(lambda file: file.write(b"x")) as staged:
        assert isinstance(staged, StagedBlob)


@pytest.mark.parametrize(
    "hostile", ["../" * 3 + "etc/passwd", "ab/../../" + "0" * 55, "A" * 64, "0" * 63, "0" * 64 + "/", "", 7]
)
def test_no_store_lets_a_digest_from_a_tampered_catalog_name_a_path(store: BlobStore, hostile: object) -> None:
    """A catalog row edited to hold a path is refused by every store before any file or key is touched."""
    for use in (
        lambda: store.path_of(hostile),  # type: ignore[arg-type]
        lambda: store.size_of(hostile),  # type: ignore[arg-type]
        lambda: store.delete(hostile),  # type: ignore[arg-type]
        lambda: store.open_verified(hostile, 1).__enter__(),  # type: ignore[arg-type]
    ):
        with pytest.raises(CorruptedArtifact, match="not 64 hex characters"):
            use()


def test_stage_push_publish_read_back(store: BlobStore, tmp_path: Path) -> None:
    data = b"model bytes " * 100
    digest = hashlib.sha256(data).hexdigest()
    assert store.size_of(digest) is None and store.hash_of(digest) is None
    with store.stage(lambda file: file.write(data)) as staged:
        assert (staged.digest, staged.size) == (digest, len(data))
        staged.push()
        staged.publish()
        staged.publish()  # a transaction run again publishes again
    assert store.size_of(digest) == len(data) and store.hash_of(digest) == digest
    assert digest[2:] in str(store.path_of(digest))
    with store.open_verified(digest, len(data)) as reader:
        assert reader.read() == data
    store.copy_out(digest, len(data), tmp_path / "out.bin")
    assert (tmp_path / "out.bin").read_bytes() == data
    assert [(b.digest, b.size) for b in store.blobs()] == [(digest, len(data))]
    assert list(store.temporary_files()) == [] and list(store.links()) == []
    assert isinstance(store.location, str) and store.location


def test_unpublished_bytes_leave_nothing(store: BlobStore) -> None:
    with store.stage(lambda file: file.write(b"never recorded")) as staged:
        assert len(list(store.temporary_files())) >= (0 if isinstance(store, RemoteBlobStore) else 1)
    assert store.size_of(staged.digest) is None
    assert list(store.blobs()) == [] and list(store.temporary_files()) == []


def test_a_failing_writer_leaves_nothing(store: BlobStore) -> None:
    def write(file) -> None:
        file.write(b"half")
        raise RuntimeError("serializer failed")

    with pytest.raises(RuntimeError, match="serializer failed"):
        store.stage(write)
    assert list(store.blobs()) == [] and list(store.temporary_files()) == []


def test_same_bytes_are_stored_once(store: BlobStore) -> None:
    assert put(store, b"same") == put(store, b"same")
    assert len(list(store.blobs())) == 1


def test_damaged_bytes_are_never_handed_on(store: BlobStore, tmp_path: Path) -> None:
    digest = put(store, b"good bytes")
    damage(store, digest, b"evil bytes")
    assert store.hash_of(digest) == hashlib.sha256(b"evil bytes").hexdigest()
    with pytest.raises(CorruptedArtifact), store.open_verified(digest, 10):
        pass
    with pytest.raises(CorruptedArtifact):
        store.copy_out(digest, 10, tmp_path / "out.bin")
    assert not (tmp_path / "out.bin").exists()
    with pytest.raises(CorruptedArtifact):  # the wrong size is refused before any hashing
        with store.open_verified(digest, 11):
            pass


def test_delete_quarantine_and_remove_file(store: BlobStore) -> None:
    kept, moved = put(store, b"kept"), put(store, b"moved")
    where = store.quarantine(moved)
    assert where is not None and moved in where
    assert store.size_of(moved) is None and store.quarantine(moved) is None
    assert [b.digest for b in store.blobs()] == [kept]  # quarantine is never listed as a blob
    assert store.delete(kept) is True and store.delete(kept) is False
    assert list(store.blobs()) == []
    leftover = put(store, b"stray")
    (file,) = store.blobs()
    store.remove_file(file)
    assert store.size_of(leftover) is None


def test_open_store_is_typed_as_the_protocol(tmp_path: Path) -> None:
    assert isinstance(open_store(tmp_path / "s"), BlobStore)


# -- progress is passed in ----------------------------------------------------


def recorder() -> tuple[dict[str, list[int]], object]:
    seen: dict[str, list[int]] = {}

    @contextlib.contextmanager
    def reporter(description: str, total: int) -> Iterator:
        counts = seen.setdefault(description.split()[0], [total, 0])
        yield lambda count: counts.__setitem__(1, counts[1] + count)

    return seen, reporter


def test_progress_goes_to_the_reporter_given(tmp_path: Path) -> None:
    seen, reporter = recorder()
    url = f"memory://modelshelf-{secrets.token_hex(6)}/store"
    store = RemoteBlobStore(url, tmp_path / "cache", progress=reporter)
    data = bytes(5 * 1024 * 1024)
    digest = put(store, data)
    put(store, b"small")  # below the threshold: no report
    assert seen == {"uploading": [len(data), len(data)]}
    reader = RemoteBlobStore(url, tmp_path / "other-cache", progress=reporter)
    with reader.open_verified(digest, len(data)) as file:
        assert len(file.read()) == len(data)
    assert seen["downloading"] == [len(data), len(data)]
    quiet = RemoteBlobStore(url, tmp_path / "third-cache")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no reporter, no global: nothing reported and no warning
        quiet.copy_out(digest, len(data), tmp_path / "copy.bin")


def test_the_old_module_global_still_works_and_warns(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.store import remote

    seen, reporter = recorder()
    monkeypatch.setattr(remote, "progress_reporter", reporter)
    store = RemoteBlobStore(f"memory://modelshelf-{secrets.token_hex(6)}/store", tmp_path / "cache")
    with pytest.warns(FutureWarning, match="progress="):
        put(store, bytes(5 * 1024 * 1024))
    assert seen == {"uploading": [5 * 1024 * 1024, 5 * 1024 * 1024]}


# -- a Registry on a MemoryStore -------------------------------------------------


def test_a_registry_runs_on_a_memory_store(tmp_path: Path) -> None:
    store = MemoryStore()
    with Registry(tmp_path / "home", store=store) as reg:
        assert reg.store_location == store.location
        one = reg.register("m", {"v": 1}, format="pickle")
        two = reg.register("m", {"v": 2}, format="pickle")
        assert reg.load("m:1") == {"v": 1} and reg.load("m") == {"v": 2}
        assert set(store.objects) == {one.digest, two.digest}
        assert reg.verify(deep=True).ok
        reg.delete_version("m", 1)
        assert set(store.objects) == {two.digest}  # freed: no other version has its bytes
        store.objects["0" * 64] = b"orphan"
        store.mtimes["0" * 64] = 0.0
        report = reg.verify(deep=False)
        assert [p.kind for p in report.problems] == ["orphan_blob"]
        assert reg.gc(dry_run=False, min_age=0).removed == [f"sha256:{'0' * 64}"]
        assert set(store.objects) == {two.digest}
        store.objects[two.digest] = b"x" * two.size
        with pytest.raises(CorruptedArtifact):
            reg.load("m:2")
        assert [p.kind for p in reg.verify(deep=True).problems] == ["checksum_mismatch"]
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == ["catalog.db"]  # no blob touched the disk


# -- one plan for verify and gc ------------------------------------------------------


def test_verify_reports_the_plan_gc_carries_out(tmp_path: Path) -> None:
    store = MemoryStore()
    with Registry(tmp_path / "home", store=store) as reg:
        live = reg.register("m", {"v": 1}, format="pickle")
        for data, age in ((b"old orphan", 0.0), (b"young orphan", None)):
            digest = hashlib.sha256(data).hexdigest()
            store.objects[digest] = data
            if age is not None:
                store.mtimes[digest] = age
            else:
                store.mtimes[digest] = 1e12  # far in the future: within any grace period
        store.temporary["crashed"] = b"partial"
        store.mtimes["crashed"] = 0.0
        plan = plan_waste(store, [live.digest], min_age=3600)
        assert isinstance(plan, WastePlan)
        with pytest.raises(AttributeError):
            plan.blobs = ()  # type: ignore[misc]  # frozen: executing it cannot grow it
        old = hashlib.sha256(b"old orphan").hexdigest()
        assert sorted(p.kind for p in plan.problems()) == ["orphan_blob", "stale_temp"]
        assert [p.kind for p in reg.verify(deep=False).problems] == [p.kind for p in plan.problems()]
        report = reg.gc(dry_run=False)
        assert report.removed == [f"sha256:{old}", "/memory/tmp/crashed"]
        assert [reason.split(":")[0] for _, reason in report.kept] == ["younger than min_age (60 min)"]
        assert old not in store.objects and store.temporary == {}
        assert reg.load("m") == {"v": 1}


def test_progress_cannot_be_given_beside_a_store_object_it_would_never_reach(tmp_path: Path) -> None:
    _, reporter = recorder()
    with pytest.raises(InvalidArgument, match="open_store"):
        Registry(tmp_path / "home", store=MemoryStore(), progress=reporter)
    assert not (tmp_path / "home").exists()  # refused before the catalog is created


def test_a_reupload_failing_midway_leaves_nothing_under_the_content_address(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A blob freed between push and publish is uploaded again; fsspec's memory files commit on close, even on error."""
    import registry.store.remote as remote

    store = RemoteBlobStore(f"memory://modelshelf-{secrets.token_hex(6)}/store", tmp_path / "cache")
    data = secrets.token_bytes(20 * 1024 * 1024)  # three 8 MiB chunks: the failure comes after one was written
    final = str(store.path_of(hashlib.sha256(data).hexdigest()))
    with store.stage(lambda file: file.write(data)) as staged:
        staged.push()
        store._fs.rm(final)  # a concurrent delete freed it
        chunks = 0
        real_read = remote._Counting.read

        def failing_read(self: object, size: int = -1) -> bytes:  # the network dies after the first chunk
            nonlocal chunks
            chunks += 1
            if chunks > 1:
                raise ConnectionResetError("connection reset by peer")
            return real_read(self, size)  # type: ignore[arg-type]

        monkeypatch.setattr(remote._Counting, "read", failing_read)
        with pytest.raises(StoreError, match="publish"):
            staged.publish()
        assert chunks == 2
        assert not store._fs.exists(final), "part of a blob was committed under its content address"
        assert store._fs.find(f"{store._root}/tmp") == []  # nor anything left under a temporary name
        monkeypatch.setattr(remote._Counting, "read", real_read)
        staged.publish()  # the staged file stays: the next try uploads it whole
    with store.open_verified(staged.digest, len(data)) as file:
        assert file.read() == data
