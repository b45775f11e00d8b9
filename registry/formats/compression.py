"""``register(..., compress=…)``: joblib's compressors, checked up front and run around the import scan.

The values are joblib's own (``joblib.dump(compress=…)``): ``0``/``False``
(the default, no compression), ``True`` (zlib at level 3), a level ``1``–``9``
(zlib), a method name (its default level), or ``(method, level)`` with a
method among ``zlib``, ``gzip``, ``bz2``, ``lzma``, ``xz`` and, when the
``lz4`` package is installed, ``lz4``. Anything else is refused with
:class:`~registry.errors.InvalidArgument` naming what is allowed, before
anything is written; so is compression in a format other than joblib.

The bytes stored are exactly what ``joblib.dump(obj, compress=…)`` writes
(the store hashes them as written: the checksum covers the compressed
bytes), but the pickle stream passes the import scanner's tee *before*
joblib's compressor, so the inventory is read from the uncompressed stream
with no second pass and no copy of the compressed file in memory.

Loading inflates with joblib (``safe=False``) or with the bounded inflater
of :mod:`registry.formats.decompress` (``safe=True``), whose size budget
stops a decompression bomb; lz4 is not among the formats the safe loader
reads (it says so), and no compressed artifact can be memory-mapped.

>>> normalize(True, "joblib"), normalize(("lzma", 6), "joblib"), normalize(0, "joblib")
(('zlib', 3), ('lzma', 6), None)
"""

from __future__ import annotations

import importlib.util
from typing import Any

from registry.errors import InvalidArgument, MissingDependency

#: Compression as register takes it: see the module docstring.
Compress = bool | int | str | tuple[str, int]
#: What is handed to joblib's compressor: the method and the level (``None``: the method's default).
Compression = tuple[str, int | None]

#: joblib's compressors the loaders read back (lz4 only with its package; the safe loader reads all but lz4).
METHODS = ("zlib", "gzip", "bz2", "lzma", "xz", "lz4")
LEVELS = range(1, 10)


def _installed(package: str) -> bool:
    """Whether ``package`` can be imported here (without importing it)."""
    return importlib.util.find_spec(package) is not None


def _named(method: object) -> str:
    if not isinstance(method, str) or method not in METHODS:
        raise InvalidArgument(
            f"unknown compression method {method!r}: choose one of {', '.join(METHODS)} "
            "(for example compress=('lzma', 3)), or a level 1-9 for zlib"
        )
    if method == "lz4" and not _installed("lz4"):
        raise MissingDependency(
            "lz4",
            "lz4",
            "compress=('lz4', …) needs the lz4 package, which is not installed: pip install 'modelshelf[lz4]', "
            "or choose zlib, gzip, bz2, lzma or xz",
        )
    return method


def _level(level: object, method: str) -> int:
    if isinstance(level, bool) or not isinstance(level, int) or level not in LEVELS:
        zero = " (level 0 means no compression: pass compress=0)" if level == 0 else ""
        raise InvalidArgument(
            f"compression level {level!r} for {method} is not one of 1-9{zero}; higher compresses more, slower"
        )
    return level


def normalize(compress: object, format: str) -> Compression | None:
    """The ``(method, level)`` to compress with, ``None`` for no compression; ``InvalidArgument`` otherwise."""
    if compress is None or compress is False or (type(compress) is int and compress == 0):
        return None
    if format != "joblib":
        raise InvalidArgument(
            f"compress= is joblib's compression, and the {format!r} format writes its own bytes: register with "
            "format='joblib' (the default) to compress, or leave compress out"
        )
    if compress is True:
        return ("zlib", 3)
    if isinstance(compress, int):
        return ("zlib", _level(compress, "zlib"))
    if isinstance(compress, str):
        return (_named(compress), None)
    if isinstance(compress, tuple) and len(compress) == 2:
        method = _named(compress[0])
        return (method, _level(compress[1], method))
    raise InvalidArgument(
        f"compress must be 0/False (none), True (zlib, level 3), a level 1-9, a method name or a (method, level) "
        f"pair such as ('lzma', 3), not {compress!r}"
    )


def compressed_writer(file: Any, compression: Compression) -> Any:
    """joblib's own compressor file for ``compression``, writing into ``file`` (a context manager; closing flushes).

    It does not close ``file``. What goes through it is what
    ``joblib.dump(compress=…)`` would write, byte for byte.
    """
    from joblib.numpy_pickle_utils import _write_fileobject

    return _write_fileobject(file, compress=compression)
