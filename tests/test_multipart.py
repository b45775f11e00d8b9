"""Uploads to S3-protocol servers go straight to the content address: one PUT, or parallel parts, never half a blob.

Run against both real servers (moto's and s3rver, see tests/servers.py).
What the client sends is read from botocore's own ``before-call`` events on
the store's real client; nothing is mocked. The part size is lowered to
S3's minimum (5 MiB) so that a few megabytes make a multipart upload.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import signal
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import Registry, StoreError
from registry.store import LocalStagedBlob, multipart, open_store
from tests.servers import fresh_bucket, s3_environment

PART = 5 * 2**20  # S3's smallest part


@pytest.fixture
def bucket(s3: str) -> str:
    return fresh_bucket()


@pytest.fixture
def small_parts(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(multipart, "PART_SIZE", PART)
    monkeypatch.setattr(multipart, "PART_CONCURRENCY", 3)


def server_kind(request: pytest.FixtureRequest) -> str:
    return str(request.node.callspec.params["s3"])


@contextlib.contextmanager
def s3_calls(reg: Registry) -> Iterator[list[str]]:
    """The names of the S3 operations the store's client sends while the block runs, in order."""
    client = reg._store._fs.connect()  # type: ignore[attr-defined]
    seen: list[str] = []

    def note(model: Any, **_: Any) -> None:
        seen.append(model.name)

    client.meta.events.register("before-call.s3", note)
    try:
        yield seen
    finally:
        client.meta.events.unregister("before-call.s3", note)


def objects(reg: Registry) -> list[str]:
    fs = reg._store._fs  # type: ignore[attr-defined]
    fs.invalidate_cache()
    return sorted(fs.find(reg.store_location.removeprefix("s3://")))


def unfinished(reg: Registry) -> list[dict[str, Any]]:
    """The server's own list of unfinished multipart uploads in the bucket."""
    fs = reg._store._fs  # type: ignore[attr-defined]
    bucket = reg.store_location.removeprefix("s3://").split("/")[0]
    return list(fs.call_s3("list_multipart_uploads", Bucket=bucket).get("Uploads") or [])


def test_a_blob_larger_than_a_part_goes_up_in_parallel_parts_and_round_trips(
    bucket: str, small_parts: None, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, request: pytest.FixtureRequest
) -> None:
    payload = {"weights": os.urandom(3 * PART - 123)}
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache-writer"))
    with Registry(catalog=catalog, store=bucket) as reg, s3_calls(reg) as seen:
        mv = reg.register("big", payload, format="pickle")
        digest = mv.checksum.removeprefix("sha256:")
        parts = -(-mv.size // PART)
        assert parts == 3
        writes = [name for name in seen if name not in ("HeadObject", "ListObjectsV2")]
        assert writes == ["CreateMultipartUpload", *["UploadPart"] * parts, "CompleteMultipartUpload"]
        assert "CopyObject" not in seen and "PutObject" not in seen  # no temporary key, no second pass
        assert reg._store.hash_of(digest) == digest  # the server's bytes are the catalog's
        info = reg._store._fs.info(str(reg._store.path_of(digest)))  # type: ignore[attr-defined]
        assert info["size"] == mv.size
        if server_kind(request) == "moto":  # s3rver gives multipart objects a plain MD5 ETag
            assert info["ETag"].strip('"').endswith(f"-{parts}")
        assert objects(reg) == [str(reg._store.path_of(digest))]  # nothing under tmp/
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache-reader"))
    with Registry(catalog=catalog, store=bucket) as reader:
        assert reader.load("big") == payload
        assert reader.verify(deep=True).ok


def test_small_blobs_still_go_up_in_one_put(bucket: str, small_parts: None, tmp_path: Path) -> None:
    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=bucket) as reg, s3_calls(reg) as seen:
        mv = reg.register("small", {"weights": os.urandom(2 * PART - 4096)}, format="pickle")
        assert mv.size < 2 * PART
        assert [name for name in seen if name not in ("HeadObject", "ListObjectsV2")] == ["PutObject"]
        seen.clear()
        reg.register("small", {"weights": b"x"}, format="pickle")
        reg.register("again", reg.load("small:1"), format="pickle")  # bytes already there: nothing is sent
        assert seen.count("PutObject") == 1


class BreaksAfter:
    """The staged file, read normally until ``reads`` reads, then failing the way a dying disk or a Ctrl-C does."""

    def __init__(self, file: Any, reads: int, error: BaseException) -> None:
        self._file, self._left, self._error = file, reads, error

    def read(self, size: int = -1) -> bytes:
        if self._left == 0:
            raise self._error
        self._left -= 1
        return bytes(self._file.read(size))

    def __enter__(self) -> BreaksAfter:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self._file.close()


@pytest.mark.parametrize("error", [OSError(5, "Input/output error"), KeyboardInterrupt()], ids=["OSError", "interrupt"])
def test_a_failure_mid_upload_leaves_no_object_and_no_unfinished_upload(
    bucket: str,
    small_parts: None,
    tmp_path: Path,
    monkeypatch: pytest.MonkeyPatch,
    request: pytest.FixtureRequest,
    error: BaseException,
) -> None:
    """Three parts are sent, reading the fourth fails: the upload is aborted, and nothing has a final name."""
    original = LocalStagedBlob.open
    monkeypatch.setattr(LocalStagedBlob, "open", lambda staged: BreaksAfter(original(staged), 3, error))
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))
    payload = {"weights": os.urandom(5 * PART)}
    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=bucket) as reg:
        with s3_calls(reg) as seen, pytest.raises(StoreError if isinstance(error, OSError) else KeyboardInterrupt):
            reg.register("big", payload, format="pickle")
        assert seen.count("UploadPart") == 3 and "CompleteMultipartUpload" not in seen
        assert seen[-1] == "AbortMultipartUpload"
        assert reg.models() == []
        assert objects(reg) == [], "a failed upload left an object behind"
        assert list((tmp_path / "cache" / "blobs").rglob("*")) == []
        assert list((tmp_path / "cache" / "tmp").iterdir()) == []
        if server_kind(request) == "moto":  # s3rver neither lists nor aborts multipart uploads
            assert unfinished(reg) == []
        monkeypatch.setattr(LocalStagedBlob, "open", original)
        mv = reg.register("big", payload, format="pickle")  # the same bytes, now whole
        assert reg._store.hash_of(mv.checksum.removeprefix("sha256:")) == mv.checksum.removeprefix("sha256:")
        assert reg.gc(dry_run=False, min_age=0).removed == []  # s3rver: no listing of uploads, and no error


#: A writer that stops for good (to be killed) once the server has acknowledged its first part of four.
KILLED_WRITER = """
import os, sys, time
from registry import Registry
from registry.store import multipart, open_store
multipart.PART_SIZE, multipart.PART_CONCURRENCY = 5 * 2**20, 1  # one part in flight: exactly one is stored
store = open_store(sys.argv[1], sys.argv[2])
def stall(**_):
    print("part sent", flush=True)
    time.sleep(600)
store._fs.connect().meta.events.register("after-call.s3.UploadPart", stall)
Registry(catalog=sys.argv[3], store=store).register("m", {"weights": os.urandom(4 * 5 * 2**20)}, format="pickle")
"""


@pytest.fixture
def moto_bucket(moto_server: Any) -> Iterator[str]:
    """A bucket on moto's server: s3rver does not list unfinished uploads, so gc cannot find them there."""
    with s3_environment(moto_server):
        yield fresh_bucket()


def test_gc_aborts_the_unfinished_upload_of_a_killed_writer_once_it_is_old_enough(
    moto_bucket: str, tmp_path: Path
) -> None:
    catalog = f"sqlite:///{tmp_path / 'catalog.db'}"
    with Registry(catalog=catalog, store=moto_bucket):
        pass  # the catalog exists before the writer starts
    writer = subprocess.Popen(
        [sys.executable, "-c", KILLED_WRITER, moto_bucket, str(tmp_path / "writer-cache"), catalog],
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert writer.stdout is not None and writer.stdout.readline() == "part sent\n"
    finally:
        os.kill(writer.pid, signal.SIGKILL)
        writer.wait()
    with Registry(catalog=catalog, store=open_store(moto_bucket, tmp_path / "cache")) as reg:
        assert reg.models() == [] and objects(reg) == []  # killed mid-upload: no object under any name
        (left,) = unfinished(reg)
        key = f"{moto_bucket.removeprefix('s3://').split('/')[0]}/{left['Key']}"
        assert "/blobs/sha256/" in key
        kept = reg.gc(dry_run=False)  # within the grace period: it may be a writer still sending parts
        assert kept.removed == [] and [path for path, _ in kept.kept] == [f"{key}?uploadId={left['UploadId']}"]
        assert len(unfinished(reg)) == 1
        dry = reg.gc(min_age=0)
        assert dry.removed == [f"{key}?uploadId={left['UploadId']}"] and dry.freed_bytes == PART
        assert len(unfinished(reg)) == 1  # a dry run aborts nothing
        report = reg.gc(dry_run=False, min_age=0)
        assert report.removed == dry.removed and report.freed_bytes == dry.freed_bytes
        assert unfinished(reg) == [] and objects(reg) == []
        assert reg.verify().ok


def test_gc_keeps_an_upload_whose_first_part_is_still_on_its_way(moto_bucket: str, tmp_path: Path) -> None:
    """moto dates every upload's start in 2010: without a part to date it by, gc must not take it for a dead one."""
    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=moto_bucket) as reg:
        fs = reg._store._fs  # type: ignore[attr-defined]
        bucket, _, prefix = moto_bucket.removeprefix("s3://").partition("/")
        key = f"{prefix}/blobs/sha256/ab/{'c' * 62}".lstrip("/")
        started = fs.call_s3("create_multipart_upload", Bucket=bucket, Key=key)  # another writer, just begun
        report = reg.gc(dry_run=False)  # the default grace period
        assert report.removed == []
        assert [entry["UploadId"] for entry in unfinished(reg)] == [started["UploadId"]]


def test_hash_of_an_uploaded_blob_is_the_content_address(bucket: str, small_parts: None, tmp_path: Path) -> None:
    """The direct upload names the object by the hash of the staged bytes: the server's copy hashes to its name."""
    data = os.urandom(2 * PART + 1)
    with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}", store=bucket) as reg:
        store = reg._store
        with store.stage(lambda file: file.write(data)) as staged:
            assert staged.digest == hashlib.sha256(data).hexdigest()
            assert objects(reg) == []  # staging alone sends nothing
            staged.push()
            staged.publish()
        assert store.hash_of(staged.digest) == staged.digest and store.size_of(staged.digest) == len(data)


def test_parts_grow_so_that_no_upload_needs_more_than_s3s_10000() -> None:
    assert multipart.part_size(3 * PART) == multipart.PART_SIZE
    for size in (multipart.PART_SIZE * multipart.MAX_PARTS + 1, 5 * 2**40):
        part = multipart.part_size(size)
        assert part > multipart.PART_SIZE and -(-size // part) <= multipart.MAX_PARTS
