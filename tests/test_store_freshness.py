"""An object store's existence checks ask the server, never a listing remembered from earlier.

fsspec shares one filesystem instance between the clients of a process that
open the same URL; each client here gets its own (the instance cache is
cleared after each open), as a client on another machine would, so what one
deletes is not forgotten by another's memory of the bucket unless that other
asks the server.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import Registry
from tests.servers import fresh_bucket, fresh_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    yield from fresh_database("postgresql")


@pytest.fixture
def bucket(s3: str) -> str:
    return fresh_bucket()


def open_client(catalog: str, bucket: str, cache: Path) -> Registry:
    """A client with its own cache and its own filesystem instance, as on a machine of its own."""
    saved = os.environ.get("MODELSHELF_CACHE")
    os.environ["MODELSHELF_CACHE"] = str(cache)
    try:
        reg = Registry(catalog=catalog, store=bucket)
    finally:
        if saved is None:
            os.environ.pop("MODELSHELF_CACHE", None)
        else:
            os.environ["MODELSHELF_CACHE"] = saved
    type(reg._store._fs).clear_instance_cache()  # the next client must not share this one's memory
    return reg


def test_bytes_freed_by_another_client_after_a_listing_are_uploaded_again(
    postgres_url: str, bucket: str, tmp_path: Path
) -> None:
    """Defect 1: A registers and verifies; B deletes; A registers the same bytes: the object must be in the bucket."""
    payload = {"weights": list(range(500))}
    a = open_client(postgres_url, bucket, tmp_path / "cache-a")
    b = open_client(postgres_url, bucket, tmp_path / "cache-b")
    try:
        first = a.register("first", payload, format="pickle")
        assert a.verify().ok  # lists the bucket
        b.delete_version("first", 1)  # the last reference: B frees the blob
        assert b._store.size_of(first.checksum.removeprefix("sha256:")) is None
        second = a.register("second", payload, format="pickle")
        assert second.checksum == first.checksum
        assert a.verify().ok and a.verify(deep=True).ok
    finally:
        a.close()
        b.close()
    fresh = open_client(postgres_url, bucket, tmp_path / "cache-c")
    try:
        report = fresh.verify(deep=True)
        assert report.ok, report.problems
        assert fresh.load("second") == payload
    finally:
        fresh.close()


def test_verify_reports_an_object_lost_from_the_bucket_after_a_listing(
    postgres_url: str, bucket: str, tmp_path: Path
) -> None:
    """The same memory made a lost object look present, then its hash a mismatch and its directory a stray file."""
    a = open_client(postgres_url, bucket, tmp_path / "cache-a")
    other = open_client(postgres_url, bucket, tmp_path / "cache-b")
    try:
        mv = a.register("m", {"v": 1}, format="pickle")
        digest = mv.checksum.removeprefix("sha256:")
        assert a.verify(deep=True).ok  # lists the bucket
        other._store._fs.rm(str(other._store.path_of(digest)))  # the object is lost, behind A's back
        for deep in (False, True):
            report = a.verify(deep=deep)
            assert [(p.kind, p.ref) for p in report.problems] == [("missing_blob", "m:1")], report.problems
        assert a._store.size_of(digest) is None and a._store.hash_of(digest) is None
        assert list(a._store.blobs()) == []
    finally:
        a.close()
        other.close()
