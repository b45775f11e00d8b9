"""``register(..., compress=…)``: joblib's compressors, the checksum over the stored bytes, bad values refused."""

from __future__ import annotations

import hashlib
import importlib.util
import io
import lzma
import pickle
import sqlite3
import zlib
from pathlib import Path

import blake3
import joblib
import numpy as np
import pytest

from registry import ArtifactTooLarge, InvalidArgument, MissingDependency, Registry, SerializationError
from tests.conftest import blob_files, temp_files


def joblib_bytes(obj: object, compress: object) -> bytes:
    out = io.BytesIO()
    joblib.dump(obj, out, compress=compress)
    return out.getvalue()


@pytest.mark.parametrize(
    "compress",
    [True, 1, 9, "zlib", "gzip", "bz2", "lzma", "xz", ("zlib", 6), ("gzip", 2), ("bz2", 9), ("lzma", 3), ("xz", 1)],
)
def test_the_stored_bytes_are_joblibs_and_the_checksum_is_theirs(reg: Registry, knn, iris, compress: object) -> None:
    mv = reg.register("m", knn, compress=compress)
    stored = reg._store.path_of(mv.digest).read_bytes()
    assert stored == joblib_bytes(knn, compress)  # byte for byte what joblib.dump(compress=…) writes
    assert mv.checksum == "sha256:" + hashlib.sha256(stored).hexdigest() and mv.size == len(stored)
    assert mv.blake3 == blake3.blake3(stored).hexdigest()
    for safe in (False, True):
        assert (reg.load("m", safe=safe).predict(iris[0]) == knn.predict(iris[0])).all()


def test_compression_shrinks_what_is_stored_and_the_inventory_is_read_through_it(reg: Registry) -> None:
    payload = {"w": np.zeros(1_000_000), "label": "zeros"}
    plain = reg.register("plain", payload)
    small = reg.register("small", payload, compress=("lzma", 3))
    assert small.size < plain.size // 100
    assert small.imports == plain.imports and "numpy.dtype" in " ".join(small.imports or ())
    assert reg.load("small", safe=True)["w"].sum() == 0


@pytest.mark.parametrize("compress", [0, False, None])
def test_no_compression_is_the_default(reg: Registry, knn, compress: object) -> None:
    mv = reg.register("m", knn, compress=compress)
    assert reg._store.path_of(mv.digest).read_bytes() == joblib_bytes(knn, 0)


@pytest.mark.parametrize(
    ("compress", "message"),
    [
        ("snappy", "unknown compression method 'snappy'"),
        (("brotli", 3), "unknown compression method 'brotli'"),
        (10, "level 10 for zlib is not one of 1-9"),
        (-1, "level -1 for zlib"),
        (("lzma", 0), "level 0 means no compression: pass compress=0"),
        (("zlib", 3.5), "level 3.5"),
        (("zlib", True), "level True"),
        (("zlib",), "compress must be"),
        (("zlib", 3, 1), "compress must be"),
        (3.0, "compress must be"),
        (["zlib", 3], "compress must be"),
    ],
)
def test_bad_values_are_refused_before_anything_is_written(
    reg: Registry, home: Path, knn, compress: object, message: str
) -> None:
    with pytest.raises(InvalidArgument, match=message.replace("(", r"\(").replace(")", r"\)")):
        reg.register("m", knn, compress=compress)
    assert blob_files(home) == [] and temp_files(home) == []
    assert reg.models() == []


@pytest.mark.parametrize("fmt", ["pickle", "skops"])
def test_compression_in_another_format_is_refused(reg: Registry, knn, fmt: str) -> None:
    with pytest.raises(InvalidArgument, match=f"the '{fmt}' format writes its own bytes.*format='joblib'"):
        reg.register("m", knn, format=fmt, compress=3)
    assert reg.models() == []


def test_lz4_without_its_package_names_what_to_install(reg: Registry, knn, monkeypatch: pytest.MonkeyPatch) -> None:
    from registry.formats import compression

    monkeypatch.setattr(compression, "_installed", lambda package: package != "lz4")
    with pytest.raises(MissingDependency, match=r"pip install 'modelshelf\[lz4\]'"):
        reg.register("m", knn, compress=("lz4", 3))
    assert reg.models() == []


@pytest.mark.skipif(importlib.util.find_spec("lz4") is None, reason="lz4 is not installed")
def test_lz4_when_installed(reg: Registry, knn, iris) -> None:
    mv = reg.register("m", knn, compress=("lz4", 3))
    assert reg._store.path_of(mv.digest).read_bytes() == joblib_bytes(knn, ("lz4", 3))
    assert (reg.load("m").predict(iris[0]) == knn.predict(iris[0])).all()
    with pytest.raises(SerializationError, match="lz4-compressed, which the safe loader does not read"):
        reg.load("m", safe=True)


def bomb(method: str) -> bytes:
    """A pickle of 400 MiB of zeros, compressed to a few hundred KB as joblib's loaders recognise it."""
    stream = pickle.dumps(b"\0" * (400 * 1024 * 1024), protocol=4)
    return zlib.compress(stream, 9) if method == "zlib" else lzma.compress(stream, format=lzma.FORMAT_ALONE)


@pytest.mark.parametrize("method", ["zlib", "lzma"])
def test_a_compressed_bomb_is_refused_at_registration(reg: Registry, home: Path, tmp_path: Path, method: str) -> None:
    """Even unchecked, a file's inventory is scanned, by the inflater with the safe loader's budget."""
    path = tmp_path / "bomb.joblib"
    path.write_bytes(bomb(method))
    with pytest.raises(ArtifactTooLarge, match="inflates to more than"):
        reg.register_file("bomb", path, check=False)
    assert blob_files(home) == []


@pytest.mark.parametrize("method", ["zlib", "lzma"])
def test_a_compressed_bomb_planted_in_the_store_stops_at_the_safe_loaders_budget(
    reg: Registry, home: Path, method: str
) -> None:
    """Swapped in for a compressed version (blob, digest, size and BLAKE3 by SQL): the safe load stops at its budget."""
    reg.register("m", {"w": np.zeros(1000)}, compress=3)
    data = bomb(method)
    digest = hashlib.sha256(data).hexdigest()
    blob = home / "blobs" / "sha256" / digest[:2] / digest[2:]
    blob.parent.mkdir(parents=True, exist_ok=True)
    blob.write_bytes(data)
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("PRAGMA foreign_keys = OFF")
        db.execute(
            "UPDATE versions SET blob_digest = ?, size = ?, blake3 = ?",
            (digest, len(data), blake3.blake3(data).hexdigest()),
        )
    with pytest.raises(ArtifactTooLarge, match=f"the {method}-compressed artifact inflates to more than"):
        reg.load("m", safe=True)
