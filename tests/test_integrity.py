"""Integrity: nothing unverified is unpickled, nothing unserializable is written."""

from __future__ import annotations

import os
import socket
import sqlite3
import threading
from pathlib import Path

import pytest

from registry import CorruptedArtifact, Registry, SerializationError
from tests.conftest import blob_files, temp_files
from tests.markers import Marker


def flip_byte(path: Path, offset: int) -> None:
    os.chmod(path, 0o644)
    data = bytearray(path.read_bytes())
    data[offset] ^= 0xFF
    path.write_bytes(bytes(data))


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
def test_marker_proves_unpickling_runs_code(reg: Registry, tmp_path: Path, fmt: str) -> None:
    """The control experiment: an intact Marker does leave its mark when loaded."""
    mark = tmp_path / "mark"
    reg.register("m", Marker(mark), format=fmt)
    assert reg.load("m") == "marked"
    assert mark.exists()


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
@pytest.mark.parametrize("where", ["first", "middle", "last"])
def test_a_flipped_byte_is_caught_before_unpickling(
    reg: Registry, home: Path, tmp_path: Path, fmt: str, where: str
) -> None:
    mark = tmp_path / "mark"
    mv = reg.register("m", Marker(mark), format=fmt)
    (blob,) = blob_files(home)
    flip_byte(blob, {"first": 0, "middle": mv.size // 2, "last": mv.size - 1}[where])
    with pytest.raises(CorruptedArtifact) as caught:
        reg.load("m")
    error = caught.value
    assert not mark.exists(), "the corrupted pickle was unpickled"
    assert error.ref == "m:1" and error.expected == mv.checksum
    assert error.actual is not None and error.actual.startswith("sha256:") and error.actual != mv.checksum
    assert "model 'm', version 1" in str(error) and mv.checksum in str(error) and error.actual in str(error)


def test_a_missing_blob_is_reported(reg: Registry, home: Path, knn) -> None:
    mv = reg.register("m", knn)
    (blob,) = blob_files(home)
    blob.unlink()
    with pytest.raises(CorruptedArtifact, match="missing") as caught:
        reg.load("m:1")
    assert caught.value.expected == mv.checksum and caught.value.actual is None


def test_a_truncated_or_extended_blob_is_reported(reg: Registry, home: Path, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    reg.register("m", Marker(mark), format="pickle")
    (blob,) = blob_files(home)
    os.chmod(blob, 0o644)
    original = blob.read_bytes()
    blob.write_bytes(original + b"\x00")
    with pytest.raises(CorruptedArtifact, match="bytes"):
        reg.load("m")
    blob.write_bytes(original[:-1])
    with pytest.raises(CorruptedArtifact):
        reg.load("m")
    assert not mark.exists()


def test_a_blob_replaced_by_another_valid_pickle_is_refused(reg: Registry, home: Path, knn, tmp_path: Path) -> None:
    """Swapping in a well-formed pickle of the same size still fails: the digest is what counts."""
    import pickle

    mv = reg.register("m", {"payload": "a" * 100}, format="pickle")
    forged = pickle.dumps({"payload": "b" * 100}, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(forged) == mv.size
    (blob,) = blob_files(home)
    os.chmod(blob, 0o644)
    blob.write_bytes(forged)
    with pytest.raises(CorruptedArtifact):
        reg.load("m")


def test_a_digest_that_is_not_hex_never_becomes_a_path(reg: Registry, home: Path, knn) -> None:
    reg.register("m", knn)
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute("UPDATE versions SET blob_digest = '../../../../etc/passwd'")
    with pytest.raises(CorruptedArtifact, match="not 64 hex"):
        reg.load("m")


def _local_function():
    return lambda x: x


UNPICKLABLE = {
    "lambda": lambda: lambda x: x + 1,
    "local class": lambda: type("Local", (), {})(),
    "lock": threading.Lock,
    "socket": lambda: socket.socket(socket.AF_INET, socket.SOCK_STREAM),
    "generator": lambda: (i for i in range(3)),
    "nested lambda": lambda: {"ok": 1, "bad": _local_function()},
}


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
@pytest.mark.parametrize("kind", sorted(UNPICKLABLE))
def test_unserializable_objects_leave_no_blob_and_no_row(reg: Registry, home: Path, fmt: str, kind: str) -> None:
    obj = UNPICKLABLE[kind]()
    try:
        with pytest.raises(SerializationError, match=f"cannot serialize .* with {fmt}"):
            reg.register("m", obj, format=fmt)
    finally:
        if isinstance(obj, socket.socket):
            obj.close()
    assert reg.models() == []
    assert blob_files(home) == [] and temp_files(home) == []
    assert reg.register("m", [1], format=fmt).version == 1  # the registry is still fine


def test_a_failed_register_does_not_consume_a_version_number(reg: Registry) -> None:
    reg.register("m", [1], format="pickle")
    with pytest.raises(SerializationError):
        reg.register("m", lambda: 1, format="pickle")
    assert reg.register("m", [2], format="pickle").version == 2


def test_an_intact_artifact_that_cannot_be_loaded_is_a_serialization_error(reg: Registry, home: Path) -> None:
    """Bytes that verify but reference a class that no longer exists: a clear error, not a raw one."""
    import sys
    import types

    module = types.ModuleType("vanishing_module")
    exec("class Thing:\n    pass\n", module.__dict__)
    sys.modules["vanishing_module"] = module
    try:
        module.Thing.__module__ = "vanishing_module"
        reg.register("m", module.Thing(), format="pickle")
    finally:
        del sys.modules["vanishing_module"]
    with pytest.raises(SerializationError, match="intact.*could not load it.*vanishing_module"):
        reg.load("m")


@pytest.mark.parametrize("large", [False, True], ids=["in-memory copy", "temporary-file copy"])
def test_bytes_rewritten_after_verification_never_reach_the_deserializer(
    reg: Registry, home: Path, monkeypatch, large: bool
) -> None:
    """The store's file is rewritten in place while a verified copy is open: the copy keeps the verified bytes."""
    import hashlib
    import pickle

    from registry.store import local

    if large:
        monkeypatch.setattr(local, "IN_MEMORY_LIMIT", 0)
    mv = reg.register("m", {"payload": "a" * 1000}, format="pickle")
    (blob,) = blob_files(home)
    forged = pickle.dumps({"payload": "b" * 1000}, protocol=pickle.HIGHEST_PROTOCOL)
    assert len(forged) == mv.size
    with reg._store.open_verified(mv.digest, mv.size) as verified:
        os.chmod(blob, 0o644)
        with open(blob, "r+b") as file:  # in place: same inode, same open descriptors
            file.write(forged)
        data = verified.read()
    assert hashlib.sha256(data).hexdigest() == mv.digest
    assert pickle.loads(data) == {"payload": "a" * 1000}
    with pytest.raises(CorruptedArtifact):
        reg.load("m")


def test_registering_known_bytes_repairs_a_damaged_blob(reg: Registry, home: Path) -> None:
    reg.register("m", {"v": 1}, format="pickle")
    (blob,) = blob_files(home)
    flip_byte(blob, 3)
    with pytest.raises(CorruptedArtifact):
        reg.load("m:1")
    reg.register("m", {"v": 1}, format="pickle")  # the same bytes again
    assert reg.load("m:1") == reg.load("m:2") == {"v": 1}
    assert len(blob_files(home)) == 1 and reg.verify().ok


def test_a_blob_changed_after_a_verified_load_is_verified_again(reg: Registry, home: Path, tmp_path: Path) -> None:
    """A later write, even with mtime put back, is caught: every load hashes what it reads."""
    mark = tmp_path / "mark"
    reg.register("m", Marker(mark), format="pickle")
    (blob,) = blob_files(home)
    assert reg.load("m") == "marked"  # verified
    mark.unlink()
    before = blob.stat()
    flip_byte(blob, before.st_size // 2)
    os.utime(blob, ns=(before.st_atime_ns, before.st_mtime_ns))  # even with mtime put back, ctime moved
    with pytest.raises(CorruptedArtifact):
        reg.load("m")
    assert not mark.exists()
