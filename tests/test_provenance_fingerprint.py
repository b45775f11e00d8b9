"""Training-data fingerprints: what is hashed, how, in bounded memory, and what is refused."""

from __future__ import annotations

import hashlib
import json
import os
import subprocess
import sys
import tracemalloc
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from registry.provenance import fingerprint
from registry.provenance.fingerprint import DataFingerprint, fingerprint_data

ROOT = Path(__file__).parents[1]


def test_fingerprint_shape_and_format() -> None:
    fp = fingerprint_data(np.zeros((3, 4)))
    assert isinstance(fp, DataFingerprint)
    assert fp.digest.startswith("sha256:") and len(fp.digest) == 7 + 64
    assert int(fp.digest[7:], 16) >= 0
    assert fp.shape == (3, 4) and fp.columns is None


def test_the_array_encoding_is_the_documented_one() -> None:
    # Changing it would make old versions unfindable by their data: change the format tag with it.
    def field(text: str) -> bytes:
        return len(text.encode()).to_bytes(8, "little") + text.encode()

    values = np.arange(4, dtype="<i8")
    expected = hashlib.sha256(field("modelshelf-data-fingerprint/1") + field("ndarray <i8 (4,)") + values.tobytes())
    assert fingerprint_data(values).digest == "sha256:" + expected.hexdigest()
    assert expected.hexdigest() == "11b99d6bb3d758c7f4a7b8eaf55bbdda9cbf52550b69cda60c4ee0b8df58d108"


FRAME_SCRIPT = """
import json, numpy as np, pandas as pd
from registry.provenance.fingerprint import fingerprint_data
frame = pd.DataFrame({"x": np.arange(5.0), "s": ["a", "b", None, "d", "é"], "k": pd.Categorical(list("xyxzx"))})
objects = np.array([1, "two", 3.5, None, b"x", (1, 2)], dtype=object)
print(json.dumps([fingerprint_data(d).digest for d in (frame, objects, (frame, frame["x"]))]))
"""


def test_fingerprints_are_the_same_in_another_process() -> None:
    frame = pd.DataFrame({"x": np.arange(5.0), "s": ["a", "b", None, "d", "é"], "k": pd.Categorical(list("xyxzx"))})
    objects = np.array([1, "two", 3.5, None, b"x", (1, 2)], dtype=object)
    here = [fingerprint_data(d).digest for d in (frame, objects, (frame, frame["x"]))]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", FRAME_SCRIPT], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == here


def test_memory_layout_does_not_matter() -> None:
    a = np.arange(60.0).reshape(3, 4, 5)
    expected = fingerprint_data(a)
    assert fingerprint_data(np.asfortranarray(a)) == expected
    assert fingerprint_data(a.transpose(2, 1, 0).copy().transpose(2, 1, 0)) == expected
    wide = np.arange(40.0).reshape(4, 10)
    assert fingerprint_data(wide[:, ::2]) == fingerprint_data(np.ascontiguousarray(wide[:, ::2]))


def test_large_non_contiguous_arrays_are_chunked(monkeypatch) -> None:
    monkeypatch.setattr(fingerprint, "CHUNK_BYTES", 64)  # rows of 80 bytes: forces the row-by-row path too
    a = np.arange(3000.0).reshape(30, 10, 10)
    expected = fingerprint_data(a)
    assert fingerprint_data(np.asfortranarray(a)) == expected
    assert fingerprint_data(a[:, ::2]).digest == fingerprint_data(a[:, ::2].copy()).digest


def test_dtype_and_values_matter() -> None:
    a = np.arange(12).reshape(3, 4)
    assert fingerprint_data(a).digest != fingerprint_data(a.astype(np.float64)).digest
    assert fingerprint_data(a).digest != fingerprint_data(a.reshape(4, 3)).digest
    changed = a.copy()
    changed[2, 3] += 1
    assert fingerprint_data(a).digest != fingerprint_data(changed).digest


def test_x_y_pairs() -> None:
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 0, 1])
    pair = fingerprint_data((X, y))
    assert pair.digest != fingerprint_data(X).digest
    assert pair.shape == (6, 2)
    assert fingerprint_data([X, y]) == pair
    assert fingerprint_data((X, 1 - y)).digest != pair.digest
    assert fingerprint_data((y, X)).digest != pair.digest
    assert fingerprint_data((X, list(y))) == pair  # one array makes it a pair; the list is made an array
    assert fingerprint_data([[1, 2], [3, 4]]).shape == (2, 2)  # two plain lists are one matrix


def test_dataframe_columns() -> None:
    frame = pd.DataFrame({"sepal": [1.0, 2.0, 3.0], "petal": [4, 5, 6]})
    fp = fingerprint_data(frame)
    assert fp.columns == ("sepal", "petal") and fp.shape == (3, 2)
    assert fingerprint_data(frame.rename(columns={"petal": "leaf"})).digest != fp.digest
    assert fingerprint_data(frame.set_axis([10, 11, 12])).digest == fp.digest  # the index is not training data
    assert fingerprint_data(frame.astype(float)).digest != fp.digest
    pair = fingerprint_data((frame, pd.Series([0, 1, 0], name="target")))
    assert pair.columns == ("sepal", "petal") and pair.shape == (3, 2)


def test_frame_from_a_c_ordered_array_equals_one_built_by_columns() -> None:
    values = np.arange(20.0).reshape(10, 2)
    by_array = pd.DataFrame(values, columns=["a", "b"])
    by_columns = pd.DataFrame({"a": values[:, 0].copy(), "b": values[:, 1].copy()})
    assert fingerprint_data(by_array) == fingerprint_data(by_columns)


def test_series_name() -> None:
    s = pd.Series([1.0, 2.0], name="y")
    assert fingerprint_data(s).columns == ("y",) and fingerprint_data(s).shape == (2,)
    assert fingerprint_data(s.rename("z")).digest != fingerprint_data(s).digest
    assert fingerprint_data(s.rename(None)).columns is None


def test_object_columns_are_hashed_by_value() -> None:
    def digest(values: list) -> str:
        return fingerprint_data(pd.DataFrame({"c": pd.Series(values, dtype=object)})).digest

    base = digest(["a", "b", None])
    assert digest(["a", "b", None]) == base
    assert digest(["a", "c", None]) != base
    assert digest(["a", "b", "None"]) != base
    assert digest([1, 2]) != digest(["1", "2"]) != digest([1.0, 2.0])
    assert digest([True]) != digest([1])
    assert digest(["ab", "c"]) != digest(["a", "bc"])  # strings are length-prefixed
    assert fingerprint_data(np.array(["x", "y"], dtype=object)).digest != fingerprint_data(np.array(["x", "y"])).digest


@pytest.mark.skipif(not hasattr(np.dtypes, "StringDType"), reason="numpy 2 strings")
def test_numpy_strings_are_hashed_by_value_not_by_pointer() -> None:
    values = [f"value {i}" * 3 for i in range(100)]  # too long to be stored inline: they live in an arena
    first = np.array(values, dtype=np.dtypes.StringDType())
    second = np.array(["a longer placeholder, so the arena is laid out differently"] * 100, dtype=first.dtype)
    second[:] = values
    assert first.tobytes() != second.tobytes() and (first == second).all()
    assert fingerprint_data(first) == fingerprint_data(second)
    second[7] = "other"
    assert fingerprint_data(first).digest != fingerprint_data(second).digest


def test_unstable_objects_are_refused() -> None:
    with pytest.raises(ValueError, match="memory address"):
        fingerprint_data(np.array([object(), object()], dtype=object))
    with pytest.raises(ValueError, match="memory address"):
        fingerprint_data(pd.DataFrame({"f": [lambda: 1, lambda: 2]}))
    sets = np.empty(1, dtype=object)
    sets[0] = {"a", "b"}
    with pytest.raises(ValueError, match="no stable order"):
        fingerprint_data(sets)


def test_categorical_columns() -> None:
    a = pd.DataFrame({"k": pd.Categorical(["x", "y", "x"])})
    same_codes = pd.DataFrame({"k": pd.Categorical(["p", "q", "p"])})
    as_strings = pd.DataFrame({"k": ["x", "y", "x"]})
    ordered = pd.DataFrame({"k": pd.Categorical(["x", "y", "x"], ordered=True)})
    digests = {fingerprint_data(f).digest for f in (a, same_codes, as_strings, ordered)}
    assert len(digests) == 4
    assert fingerprint_data(pd.DataFrame({"k": pd.Categorical(["x", "y", "x"])})) == fingerprint_data(a)


def test_nullable_integers_keep_exact_values() -> None:
    big = 2**53
    a = pd.DataFrame({"n": pd.array([big, None], dtype="Int64")})
    b = pd.DataFrame({"n": pd.array([big + 1, None], dtype="Int64")})
    assert fingerprint_data(a).digest != fingerprint_data(b).digest
    assert fingerprint_data(a).digest != fingerprint_data(pd.DataFrame({"n": pd.array([big, 0], dtype="Int64")})).digest


def test_sparse_matrices() -> None:
    dense = np.array([[0, 1.5, 0], [2.0, 0, 0], [0, 0, 3.0]])
    csr = sp.csr_matrix(dense)
    fp = fingerprint_data(csr)
    assert fp.shape == (3, 3) and fp.columns is None
    assert fingerprint_data(sp.csc_matrix(dense)) == fp
    assert fingerprint_data(sp.coo_array(dense)) == fp
    wide = sp.csr_matrix((csr.data, csr.indices.astype(np.int64), csr.indptr.astype(np.int64)), shape=(3, 3))
    assert fingerprint_data(wide) == fp
    duplicated = sp.coo_matrix(([1.0, 0.5, 2.0, 3.0], ([0, 0, 1, 2], [1, 1, 0, 2])), shape=(3, 3)).tocsr()
    assert fingerprint_data(duplicated) == fp
    unsorted = sp.csr_matrix(([2.0, 1.0], [2, 0], [0, 2]), shape=(1, 3))  # row 0 lists column 2 before column 0
    assert not unsorted.has_canonical_format
    assert fingerprint_data(unsorted) == fingerprint_data(sp.csr_matrix(np.array([[1.0, 0, 2.0]])))
    assert unsorted.indices.tolist() == [2, 0]  # the caller's matrix is left as it was
    changed = csr.copy()
    changed.data[0] = 9.0
    assert fingerprint_data(changed).digest != fp.digest
    assert fingerprint_data(dense).digest != fp.digest
    assert fingerprint_data((csr, np.array([0, 1, 0]))).shape == (3, 3)


def test_lists_of_numbers_are_arrays() -> None:
    assert fingerprint_data([[1.0, 2.0], [3.0, 4.0]]) == fingerprint_data(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert fingerprint_data((1, 2, 3)) == fingerprint_data(np.array([1, 2, 3]))


class LooksSparse:
    def tocsr(self) -> None:  # duck-types as a sparse matrix, but numpy can only wrap it as one object
        raise AssertionError("not called")


@pytest.mark.parametrize("data", [None, {"x": [1, 2]}, "a string", 3.5, np.float64(1.0), object(), LooksSparse()])
def test_unsupported_input_is_refused(data: object) -> None:
    with pytest.raises(ValueError, match=r"data= takes a numpy array, a pandas DataFrame .* or an \(X, y\) pair"):
        fingerprint_data(data)


def test_ragged_lists_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="numpy cannot make an array of this list"):
        fingerprint_data([[1, 2], [3]])


def peak_bytes(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded() -> None:
    big = np.random.default_rng(0).random((6_250, 1_000))  # 50 MB
    fortran = np.asfortranarray(big)
    expected = fingerprint_data(big)
    assert peak_bytes(lambda: fingerprint_data(big)) < 1_000_000  # hashed in place
    assert peak_bytes(lambda: fingerprint_data(fortran)) < 20_000_000  # copied a chunk at a time
    assert fingerprint_data(fortran) == expected
