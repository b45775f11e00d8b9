"""The fast verification digest: a BLAKE3 beside the SHA-256, verified by loads, trusted only where it is bound.

The SHA-256 stays the identity (checksum, content address); a load verifies
the version's BLAKE3 instead when the catalog has one it may trust. The
attackers here can write the catalog by SQL and the store's files, but do
not hold the signing key: with the key, a BLAKE3 set by SQL to match
swapped bytes must never let them load.
"""

from __future__ import annotations

import hashlib
import os
import pickle
import sqlite3
from pathlib import Path
from typing import Any

import blake3
import pytest

from registry import CorruptedArtifact, Registry, UntrustedArtifact
from registry.store import reading
from registry.trust import signing
from tests.old_catalogs import legacy_version, old_catalog

KEY = "fast-digest-signing-key-of-32-bytes!"


def b3(data: bytes) -> str:
    return blake3.blake3(data).hexdigest()


def sql(home: Path, statement: str, *parameters: Any) -> None:
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute(statement, parameters)


def swap_blob(path: Path, data: bytes) -> None:
    """Replace the store's file with other bytes, as someone who can write the store could."""
    os.chmod(path, 0o644)
    path.write_bytes(data)
    os.chmod(path, 0o444)


class Marker:
    """Records the algorithms loads hash with (every load's hash goes through reading._sha256 or _blake3)."""

    def __init__(self, monkeypatch: pytest.MonkeyPatch) -> None:
        self.calls: list[str] = []
        sha, fast = reading._sha256, reading._blake3
        monkeypatch.setattr(reading, "_sha256", lambda: self.calls.append("sha256") or sha())
        monkeypatch.setattr(reading, "_blake3", lambda: self.calls.append("blake3") or fast())


@pytest.fixture
def hashes(monkeypatch: pytest.MonkeyPatch) -> Marker:
    return Marker(monkeypatch)


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
def test_register_records_the_blake3_of_the_stored_bytes_beside_the_sha256(reg: Registry, knn, fmt: str) -> None:
    mv = reg.register("m", knn, format=fmt)
    data = reg._store.path_of(mv.digest).read_bytes()
    assert mv.checksum == "sha256:" + hashlib.sha256(data).hexdigest()  # the identity is unchanged
    assert mv.blake3 == b3(data)
    assert reg.get("m:1").blake3 == mv.blake3 == reg.versions("m")[0].blake3


def test_a_large_artifact_is_hashed_in_the_same_pass(reg: Registry) -> None:
    """Chunks above the overlap threshold take the threaded path: both digests still cover every byte in order."""
    import numpy as np

    payload = {"a": np.arange(3_000_000, dtype=np.float64), "b": b"x" * 5_000_000}
    mv = reg.register("big", payload)
    data = reg._store.path_of(mv.digest).read_bytes()
    assert (mv.digest, mv.blake3) == (hashlib.sha256(data).hexdigest(), b3(data))


def test_a_pickle_handing_over_an_arrays_own_buffer_is_hashed_as_its_bytes(reg: Registry) -> None:
    """Protocol 5 writes a float array's buffer as is (format 'd', not bytes): both digests take its bytes."""
    import numpy as np

    payload = {"w": np.arange(300_000, dtype=np.float64), "f": np.asfortranarray(np.ones((300, 300)))}
    mv = reg.register("p", payload, format="pickle")
    data = reg._store.path_of(mv.digest).read_bytes()
    assert (mv.digest, mv.blake3) == (hashlib.sha256(data).hexdigest(), b3(data))
    assert reg.load("p")["w"][-1] == 299_999


def test_register_file_and_bundle_import_record_it_too(reg: Registry, tmp_path: Path, home: Path) -> None:
    path = tmp_path / "model.pkl"
    path.write_bytes(pickle.dumps({"w": [1, 2, 3]}))
    mv = reg.register_file("f", path, format="pickle", check=False)
    assert mv.blake3 == b3(path.read_bytes())
    reg.export_bundle(["f:1"], tmp_path / "f.tar")
    with Registry(tmp_path / "other") as other:
        (imported,) = other.import_bundle(tmp_path / "f.tar", allow_unsigned=True)
        assert other.get(imported.target).blake3 == mv.blake3


def test_loads_verify_the_blake3_and_refuse_swapped_bytes(reg: Registry, knn, iris, hashes: Marker) -> None:
    mv = reg.register("m", knn)
    assert (reg.load("m").predict(iris[0]) == knn.predict(iris[0])).all()
    assert hashes.calls == ["blake3"]
    swap_blob(reg._store.path_of(mv.digest), pickle.dumps({"other": "bytes"}).ljust(mv.size, b"."))
    with pytest.raises(CorruptedArtifact, match="blake3:") as caught:
        reg.load("m")
    assert caught.value.expected == mv.checksum and caught.value.actual not in (None, mv.checksum)


def test_a_blake3_changed_by_sql_is_refused_without_a_key(reg: Registry, home: Path, knn) -> None:
    """Without a key the column is the catalog's word, as the SHA-256 is: a wrong value refuses, never serves."""
    reg.register("m", knn)
    sql(home, "UPDATE versions SET blake3 = ?", "0" * 64)
    with pytest.raises(CorruptedArtifact, match="blake3:" + "0" * 64 + ".*fast digest was edited") as caught:
        reg.load("m")
    assert caught.value.expected == caught.value.actual == reg.get("m").checksum  # intact bytes, edited catalog


def test_with_a_key_the_signature_covers_the_blake3(home: Path, knn) -> None:
    with Registry(home, signing_key=KEY) as reg:
        mv = reg.register("m", knn)
        assert mv.hmac is not None and signing.covers_blake3(mv.hmac)
        assert signing.check_model_version(KEY.encode(), mv) == "valid"
        sql(home, "UPDATE versions SET blake3 = ?", "1" * 64)
        with pytest.raises(UntrustedArtifact, match="signature that does not match"):
            reg.load("m")
        sql(home, "UPDATE versions SET blake3 = NULL")  # dropping it is an edit too
        with pytest.raises(UntrustedArtifact):
            reg.load("m")


def test_with_a_key_swapped_bytes_and_their_blake3_set_by_sql_never_load(home: Path, tmp_path: Path, knn) -> None:
    """The attack the signature must stop: bytes swapped in the store, the BLAKE3 column set to theirs."""
    mark = tmp_path / "pwned"
    evil = pickle.dumps(_Evil(str(mark)))
    with Registry(home, signing_key=KEY) as reg:
        mv = reg.register("m", knn)
        swap_blob(reg._store.path_of(mv.digest), evil)
        sql(home, "UPDATE versions SET blake3 = ?, size = ?", b3(evil), len(evil))
        with pytest.raises(UntrustedArtifact):
            reg.load("m")
    assert not mark.exists()


def test_under_an_older_signature_a_keyed_load_verifies_the_sha256(
    home: Path, tmp_path: Path, knn, hashes: Marker
) -> None:
    """A v3 signature does not bind the column: SQL could have set it, so the SHA-256 decides."""
    mark = tmp_path / "pwned"
    with Registry(home, signing_key=KEY) as reg:
        mv = reg.register("m", knn)
        v3 = signing.sign_version(
            KEY.encode(),
            mv.name,
            mv.version,
            mv.format,
            mv.checksum,
            mv.size,
            mv.imports,
            mv.params,
            environment=mv.environment,
            input_signature=None if mv.input_signature is None else mv.input_signature.to_json(),
            generation=3,
        )
        sql(home, "UPDATE versions SET signature = ?", v3)
        reg.load("m")
        assert hashes.calls == ["sha256"]
        evil = pickle.dumps(_Evil(str(mark))).ljust(mv.size, b".")
        swap_blob(reg._store.path_of(mv.digest), evil)
        sql(home, "UPDATE versions SET blake3 = ?", b3(evil))  # the v3 signature still matches
        with pytest.raises(CorruptedArtifact, match="sha256:"):
            reg.load("m")
    assert not mark.exists()


def test_a_catalog_migrated_from_before_keeps_verifying_the_sha256(tmp_path: Path, hashes: Marker) -> None:
    home = tmp_path / "old"
    old_catalog(home, "c7d41f0a9e2b")
    legacy_version(home, {"w": 1}, with_imports=True)
    with Registry(home, upgrade=True) as reg:
        mv = reg.get("legacy:1")
        assert mv.blake3 is None
        assert reg.load("legacy:1") == {"w": 1}
        assert hashes.calls == ["sha256"]
        swap_blob(reg._store.path_of(mv.digest), pickle.dumps({"w": 2}))
        with pytest.raises(CorruptedArtifact, match="sha256:"):
            reg.load("legacy:1")
        new = reg.register("legacy", {"w": 3}, format="pickle")  # new versions of an upgraded catalog get one
        assert new.blake3 is not None
        hashes.calls.clear()
        assert reg.load("legacy:2") == {"w": 3} and hashes.calls == ["blake3"]


def test_a_memory_store_verifies_the_blake3_too(tmp_path: Path, hashes: Marker) -> None:
    from registry.store import MemoryStore

    store = MemoryStore()
    with Registry(tmp_path / "home", store=store) as reg:
        mv = reg.register("m", {"v": 1}, format="pickle")
        assert reg.load("m") == {"v": 1}
        store.objects[mv.digest] = pickle.dumps({"v": 2})
        with pytest.raises(CorruptedArtifact):
            reg.load("m")


class _Evil:
    def __init__(self, mark: str) -> None:
        self.mark = mark

    def __reduce__(self) -> Any:
        return (open, (self.mark, "w"))


def test_a_process_forked_after_hashing_still_loads(reg: Registry) -> None:
    """BLAKE3's thread pool does not survive a fork: a forked worker hashes on one thread instead of hanging."""
    import numpy as np

    reg.register("big", {"w": np.arange(2_000_000, dtype=np.float64)})  # large updates start the pool here
    assert reg.load("big")["w"][-1] == 1_999_999
    read, write = os.pipe()
    pid = os.fork()
    if pid == 0:  # pragma: no cover - the child reports through the pipe
        try:
            os.write(write, b"ok" if reg.load("big")["w"][-1] == 1_999_999 else b"wrong")
        finally:
            os._exit(0)
    os.close(write)
    import select

    ready, _, _ = select.select([read], [], [], 60)
    answer = os.read(read, 16) if ready else b"hung"
    if not ready:
        os.kill(pid, 9)
    os.waitpid(pid, 0)
    os.close(read)
    assert answer == b"ok"
