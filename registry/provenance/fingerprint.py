"""Fingerprints of training data, so that every version trained on the same data can be found.

:func:`fingerprint_data` hashes bytes and values, never pointers: equal data has one digest in every process on
machines of the same byte order. Contiguous arrays are hashed in place; others in bounded chunks
(:data:`CHUNK_BYTES`), so a large array is never copied whole. numpy is imported by the first fingerprint, pandas
and scipy never: data of theirs means the caller has imported them.
"""

from __future__ import annotations

import hashlib
import re
import struct
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from registry.digests import checksum_of, digest_of
from registry.errors import InvalidData

if TYPE_CHECKING:
    import numpy as np

__all__ = ["DataFingerprint", "fingerprint_data"]

#: At most this many bytes are copied at a time while fingerprinting a non-contiguous array.
CHUNK_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True)
class DataFingerprint:
    """A digest of training data, with the shape and column names worth showing beside it.

    >>> import numpy as np
    >>> fingerprint_data(np.zeros((150, 4))).shape
    (150, 4)
    """

    digest: str
    shape: tuple[int, ...]
    columns: tuple[str, ...] | None = None


_FORMAT_TAG = "modelshelf-data-fingerprint/1"
_U64 = struct.Struct("<Q")
_ADDRESS = re.compile(r" at 0x[0-9a-fA-F]+")
_ACCEPTED = (
    "data= takes a numpy array, a pandas DataFrame or Series, a scipy sparse matrix, a list of numbers, "
    "or an (X, y) pair in which at least one of the two is an array, frame or sparse matrix"
)


def _field(tag: bytes, raw: bytes) -> bytes:
    return tag + _U64.pack(len(raw)) + raw


def _put(h: Any, text: str) -> None:
    h.update(_field(b"", text.encode("utf-8", "surrogatepass")))


#: The encoding of the commonest elements of object arrays, by exact type (so bool is not taken for int).
_ELEMENTS: dict[type, Callable[[Any], bytes]] = {
    str: lambda x: _field(b"s", x.encode("utf-8", "surrogatepass")),
    type(None): lambda x: b"n",
    float: lambda x: b"f" + struct.pack("<d", x),
    bool: lambda x: b"T" if x else b"F",
    int: lambda x: _field(b"i", format(x, "x").encode()),
    bytes: lambda x: _field(b"b", x),
}


def _element(x: Any) -> bytes:
    """Any other element: arrays by digest, numpy scalars by dtype and bytes, the rest by type and repr."""
    import numpy as np

    if isinstance(x, np.ndarray):
        return b"a" + bytes.fromhex(digest_of(_fingerprint_one(x)[0]))
    if isinstance(x, np.generic):
        return _field(b"g", np.asarray(x).dtype.str.encode() + b"\0" + np.asarray(x).tobytes())
    kind = type(x)
    if isinstance(x, (set, frozenset)):
        raise InvalidData(f"cannot fingerprint a {kind.__name__} element: it has no stable order; use sorted tuples")
    text = repr(x)
    own_repr: object = kind.__repr__
    if own_repr is object.__repr__ or _ADDRESS.search(text):
        raise InvalidData(
            f"cannot fingerprint an element of type {kind.__qualname__}: its repr holds a memory address, "
            "which differs between runs; convert the column to strings or numbers first"
        )
    return _field(b"r", f"{kind.__module__}.{kind.__qualname__}\0{text}".encode("utf-8", "surrogatepass"))


def _pieces(arr: np.ndarray) -> Iterator[np.ndarray]:
    """C-contiguous arrays that concatenate to ``arr`` in C order: ``arr`` itself, or copies of at most CHUNK_BYTES."""
    import numpy as np

    if arr.flags.c_contiguous:
        yield arr
    elif arr.nbytes <= CHUNK_BYTES:
        yield np.ascontiguousarray(arr)
    elif arr[0].nbytes <= CHUNK_BYTES:  # ndim >= 1 here: a 0-d array is contiguous
        step = CHUNK_BYTES // max(1, arr[0].nbytes)
        for i in range(0, arr.shape[0], step):
            yield from _pieces(arr[i : i + step])
    else:
        for row in arr:
            yield from _pieces(row)


def _update_array(h: Any, arr: np.ndarray) -> None:
    import numpy as np

    dtype = arr.dtype
    if dtype.hasobject:  # Python objects, or numpy 2 strings (an arena): hash values, not pointers
        if dtype.fields is not None:
            raise InvalidData("cannot fingerprint a structured array with object fields; pass a DataFrame instead")
        _put(h, f"objects {arr.shape!r}")
        encoders = _ELEMENTS
        for piece in _pieces(arr):
            flat = piece.reshape(-1)
            for i in range(0, flat.size, 65536):
                h.update(b"".join([encoders.get(type(x), _element)(x) for x in flat[i : i + 65536].tolist()]))
        return
    _put(h, f"ndarray {dtype.str if dtype.fields is None else repr(dtype.descr)} {arr.shape!r}")
    for piece in _pieces(arr):
        if piece.nbytes:
            h.update(piece.reshape(-1).view(np.uint8))  # a view: contiguous data is hashed in place
        del piece  # before the next chunk is copied, so only one is alive


def _update_column(h: Any, column: Any, pd: Any) -> None:
    import numpy as np

    dtype = column.dtype
    _put(h, str(dtype))
    if isinstance(dtype, pd.CategoricalDtype):
        _put(h, "ordered" if dtype.ordered else "unordered")
        _update_array(h, column.cat.codes.to_numpy())
        _update_array(h, np.asarray(dtype.categories.to_numpy()))
    elif isinstance(column.array, (pd.arrays.IntegerArray, pd.arrays.FloatingArray, pd.arrays.BooleanArray)):
        _update_array(h, column.isna().to_numpy())  # nullable: the mask, then the values with NA as 0, ints kept exact
        _update_array(h, column.to_numpy(dtype=dtype.numpy_dtype, na_value=dtype.numpy_dtype.type(0)))
    elif isinstance(dtype, (pd.DatetimeTZDtype, pd.PeriodDtype)):  # the zone or frequency is in str(dtype)
        _update_array(h, column.array.asi8)  # int64, not Timestamp objects: fast, and stable across pandas
    else:
        _update_array(h, np.asarray(column.to_numpy()))


def _update_sparse(h: Any, matrix: Any) -> tuple[int, ...]:
    """Hash as canonical CSR: CSR input in place; other formats, or duplicate entries, through a converted copy."""
    import numpy as np

    if len(matrix.shape) != 2:
        raise InvalidData(f"{_ACCEPTED}; got a {len(matrix.shape)}-d sparse array")
    csr = matrix if matrix.format == "csr" else matrix.tocsr()
    if not csr.has_canonical_format:
        csr = csr.copy()
        csr.sum_duplicates()
    shape = tuple(int(n) for n in csr.shape)
    _put(h, f"sparse-csr {shape!r}")
    for index in (csr.indptr, csr.indices):  # int32 or int64 depending on size: hashed as int64 either way
        for i in range(0, index.size, CHUNK_BYTES // 8):
            h.update(np.ascontiguousarray(index[i : i + CHUNK_BYTES // 8], dtype="<i8").view(np.uint8))
    _update_array(h, csr.data)
    return shape


def _fingerprint_one(data: Any) -> tuple[str, tuple[int, ...], tuple[str, ...] | None]:
    import numpy as np

    h = hashlib.sha256()
    _put(h, _FORMAT_TAG)
    pd, sparse = sys.modules.get("pandas"), sys.modules.get("scipy.sparse")  # data of theirs means they are imported
    columns = None
    if pd is not None and isinstance(data, pd.DataFrame):
        shape, columns = tuple(int(n) for n in data.shape), tuple(str(name) for name in data.columns)
        _put(h, f"dataframe {shape!r}")
        for j, name in enumerate(columns):
            _put(h, name)
            _update_column(h, data.iloc[:, j], pd)
    elif pd is not None and isinstance(data, pd.Series):
        shape, columns = (len(data),), None if data.name is None else (str(data.name),)
        _put(h, "series" if columns is None else f"series:{columns[0]}")
        _update_column(h, data, pd)
    elif sparse is not None and sparse.issparse(data):
        shape = _update_sparse(h, data)
    elif isinstance(data, (list, tuple, np.ndarray)) or _is_array_object(data):
        try:
            arr = np.asarray(data)  # an ndarray as it is (a masked one without its mask, as scikit-learn sees it)
        except (ValueError, TypeError) as exc:
            raise InvalidData(f"{_ACCEPTED}; numpy cannot make an array of this {type(data).__name__}: {exc}") from exc
        if arr.dtype.hasobject and arr.ndim == 0:  # numpy wrapped the object whole: it is no array
            raise InvalidData(f"{_ACCEPTED}; got {type(data).__name__}")
        shape = tuple(arr.shape)
        _update_array(h, arr)
    else:
        raise InvalidData(f"{_ACCEPTED}; got {type(data).__name__}")
    return checksum_of(h.hexdigest()), shape, columns


def _is_array_object(item: Any) -> bool:
    """An array, frame, series or sparse matrix (not a list, nor a numpy scalar): what makes a 2-item list a pair."""
    import numpy as np

    return (hasattr(item, "__array__") and not isinstance(item, np.generic)) or hasattr(item, "tocsr")


def split_pair(data: Any) -> tuple[Any, Any]:
    """``(X, y)`` of training data given as a pair, or ``(data, None)``; the one rule for what a pair is.

    >>> import numpy as np
    >>> split_pair((np.zeros((2, 2)), [0, 1]))[1]
    [0, 1]
    >>> split_pair([[1, 2], [3, 4]])[1] is None  # two plain lists are one matrix
    True
    """
    if isinstance(data, (list, tuple)) and len(data) == 2 and any(_is_array_object(item) for item in data):
        return data[0], data[1]
    return data, None


def fingerprint_data(data: Any) -> DataFingerprint:
    """Fingerprint training data, so that the versions trained on the same data share one digest.

    An array is hashed as a header (format tag, ``dtype.str``, shape) and its bytes in C order: a Fortran-ordered
    copy has the same digest, an int64 copy of float64 data does not. Contiguous arrays are hashed in place, others
    copied ``CHUNK_BYTES`` at a time. Object arrays are hashed element by element (str as UTF-8; int, float, bool by
    value; others by type and ``repr``, refusing sets and reprs holding a memory address). A DataFrame adds its
    column names and dtypes, not its index; categoricals count by codes and categories. An ``(X, y)`` pair (two
    items, one at least an array, frame or sparse matrix: two plain lists are one matrix) is hashed from the digests
    of X and y, and has X's shape and columns. Sparse matrices are hashed as canonical CSR.

    >>> import numpy as np
    >>> a = np.arange(6.0).reshape(2, 3)
    >>> fingerprint_data(a) == fingerprint_data(np.asfortranarray(a))
    True
    >>> fingerprint_data(a).digest == fingerprint_data(a.astype(int)).digest
    False
    >>> fingerprint_data({"x": 1})  # doctest: +ELLIPSIS
    Traceback (most recent call last):
    registry.errors.InvalidData: data= takes a numpy array, a pandas DataFrame or Series, a scipy sparse matrix, ...
    """
    X, y = split_pair(data)
    if X is data:
        return DataFingerprint(*_fingerprint_one(data))
    (x_digest, shape, columns), (y_digest, _, _) = _fingerprint_one(X), _fingerprint_one(y)
    h = hashlib.sha256()
    for part in (_FORMAT_TAG, "pair", x_digest, y_digest):
        _put(h, part)
    return DataFingerprint(checksum_of(h.hexdigest()), shape, columns)
