"""joblib loading without copying arrays: numpy arrays become views of the verified bytes.

joblib writes each numpy array's raw bytes right after a small wrapper
object in the pickle stream, padded so the data starts on a 16-byte
boundary of the file. ``joblib.load`` reads those bytes into a fresh array,
which after a verified read of the blob into memory would be a second copy
of every array. When the file object offers ``getbuffer()`` (the store's
``VerifiedReader`` does: a page-aligned buffer holding the whole verified
blob), :func:`load_joblib_unsafe` instead returns ``numpy.frombuffer`` views
of that buffer at the array's offset — the same alignment as the file, no
copy, and writable like the arrays ``joblib.load`` returns.

This is the *unsafe* path only: it is joblib's own unpickler, which runs
whatever the pickle says (``safe=False`` asks for exactly that); only the
reading of array bytes differs. Anything unusual — object arrays (a nested
pickle), arrays in a byte order other than this machine's, files written
before joblib aligned arrays, compressed files, data that would run past
the end — goes through joblib's own code. Arrays smaller than
:data:`ZERO_COPY_MIN_BYTES` are copied too: a view keeps the whole buffer
alive, and a model keeping a few small arrays (``classes_``) should not
keep the whole artifact in memory with them.
"""

from __future__ import annotations

import io
import math
from functools import cache
from typing import Any

from registry.formats.binary import BinaryFile

#: Arrays with fewer data bytes than this are copied out of the buffer instead of viewed.
ZERO_COPY_MIN_BYTES = 64 * 1024

#: The first byte of a pickle of protocol 2 or later; joblib's compressed files start otherwise.
_PROTO = b"\x80"


def starts_as_pickle(file: Any) -> bool:
    """Whether ``file`` (which must offer ``peek``) starts as a pickle: joblib's uncompressed format."""
    peek = getattr(file, "peek", None)
    if peek is None:
        return False
    return bytes(peek(1)[:1]) == _PROTO


def load_joblib_unsafe(file: BinaryFile) -> Any:
    """Load a joblib artifact from ``file``, its large arrays viewing ``file.getbuffer()`` when offered.

    Runs the pickle's code, like ``joblib.load``; for a file object
    without ``getbuffer`` (or a compressed file) it *is* ``joblib.load``.

    >>> import io, joblib, numpy as np                       # doctest: +SKIP
    >>> load_joblib_unsafe(verified_reader)["weights"].base  # doctest: +SKIP
    <memory at 0x…>
    """
    getbuffer = getattr(file, "getbuffer", None)
    if getbuffer is None or not starts_as_pickle(file):
        import joblib

        return joblib.load(file)
    whole = getbuffer()
    if whole.nbytes < ZERO_COPY_MIN_BYTES:
        # No array in it is large enough to be viewed: joblib's own reader on a copy of these (verified, private)
        # bytes reads through C's BytesIO rather than the Python file object, a third of a small model's load.
        import joblib

        return joblib.load(io.BytesIO(whole[file.tell() :]))
    return _zero_copy_unpickler()(file, whole).load()


def array_view(wrapper: Any, file: BinaryFile, whole: memoryview, address: int) -> Any:
    """The array a joblib ``NumpyArrayWrapper`` announces, as a view of ``whole``; ``None`` to copy it instead.

    ``file`` is positioned where joblib wrote the array (its padding byte
    first); ``whole`` is the buffer ``file`` reads from and ``address`` the
    memory address of its first byte. On success ``file`` is moved past the
    array; on ``None`` it is left where it was, for joblib's own reader. A
    view never allocates, and a shape that claims more bytes than the buffer
    holds gets ``None`` (joblib's reader then reports the short read), so a
    restricted loader can use this too without letting a shape amplify.
    """
    import numpy as np

    dtype = wrapper.dtype
    if dtype.hasobject or not dtype.isnative or wrapper.safe_get_numpy_array_alignment_bytes() is None:
        return None
    count = math.prod(int(extent) for extent in wrapper.shape)
    nbytes = count * dtype.itemsize
    if nbytes < ZERO_COPY_MIN_BYTES:
        return None
    start = file.tell()
    padding = file.read(1)
    offset = start + 1 + (padding[0] if padding else 0)
    if not padding or offset + nbytes > len(whole) or (address + offset) % max(dtype.alignment, 1):
        file.seek(start)
        return None
    array = np.frombuffer(whole, dtype=dtype, count=count, offset=offset)
    array = array.reshape(wrapper.shape[::-1]).transpose() if wrapper.order == "F" else array.reshape(wrapper.shape)
    file.seek(offset + nbytes)
    return array


@cache
def _zero_copy_unpickler() -> type:
    """joblib's unpickler, reading large plain arrays as views of the buffer (built once, joblib imported late)."""
    import numpy as np
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class ZeroCopyArrayWrapper(NumpyArrayWrapper):  # type: ignore[misc]
        """joblib's array wrapper, whose data is viewed in the buffer rather than read from the file."""

        def read_array(self, unpickler: Any, *args: Any, **kwargs: Any) -> Any:
            whole, address = unpickler.zero_copy_buffer, unpickler.buffer_address
            array = array_view(self, unpickler.file_handle, whole, address)
            return super().read_array(unpickler, *args, **kwargs) if array is None else array

    class ZeroCopyUnpickler(NumpyUnpickler):  # type: ignore[misc]
        def __init__(self, file: BinaryFile, whole: memoryview) -> None:
            super().__init__("", file, ensure_native_byte_order=True)
            self.zero_copy_buffer = whole.cast("B") if whole.format != "B" else whole
            self.buffer_address = np.frombuffer(whole, dtype=np.uint8).ctypes.data if len(whole) else 0

        def find_class(self, module: str, name: str) -> Any:
            if (module, name) == ("joblib.numpy_pickle", "NumpyArrayWrapper"):
                return ZeroCopyArrayWrapper
            return super().find_class(module, name)

    return ZeroCopyUnpickler
