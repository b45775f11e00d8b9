"""The pickle and joblib formats: an inventory read from the bytes, and a restricted load.

At dump time the bytes are written as pickle or joblib write them, and a
copy is scanned by :mod:`registry.formats.restricted` — the same
interpreter the safe loader runs — so ``mv.imports`` lists every global
the bytes will import (nested object-array pickles included), not what a
tracer thought it saved. At load time ``safe=True`` runs the restricted
interpreter over the bytes; ``safe=False`` uses pickle or joblib as they
are (:func:`~registry.formats.joblib_fast.load_joblib_unsafe` is the one unsafe
joblib call: joblib's own unpickler, with large arrays as views of the
verified buffer).

The restricted load reads the whole stream once into a private buffer
(or uses the caller's buffer through ``getbuffer()``, zero-copy), and
joblib's raw arrays become numpy views of that buffer.
"""

from __future__ import annotations

import io
import mmap
import os
import pickle
from collections.abc import Collection
from typing import Any

from registry.formats.binary import BinaryFile
from registry.formats.compression import Compression, compressed_writer
from registry.formats.decompress import inflate
from registry.formats.hooks import Budget
from registry.formats.joblib_fast import load_joblib_unsafe as _load_joblib_unsafe
from registry.formats.restricted import LoadHooks, ScanHooks, run


class _Tee:
    """Forwards writes to the real (write-only) file and keeps what the import scan reads.

    Writes of 256 KiB or more are array data or byte/str payloads: framed
    pickles (protocol 4+, which both formats write) put opcodes in frames
    of about 64 KiB and write larger payloads on their own. The scan reads
    no payload, so those are kept as holes and the scan buffer costs little
    more than the opcodes (its holes are zero pages). Were a hole ever to
    cover opcodes, the scan would fail and registration with it: it fails
    closed, never with a short inventory.
    """

    _HOLE = 1 << 18

    def __init__(self, file: BinaryFile) -> None:
        self.file = file
        self.size = 0
        self.chunks: list[tuple[int, bytes]] = []

    def write(self, data: Any) -> int:
        count = memoryview(data).nbytes
        if count < self._HOLE:
            self.chunks.append((self.size, bytes(data)))
        self.size += count
        written = self.file.write(data)
        return count if written is None else written

    def tell(self) -> int:
        return self.size

    def flush(self) -> None:
        flush = getattr(self.file, "flush", None)
        if flush is not None:
            flush()

    def scanned(self) -> memoryview:
        """The bytes written, large writes left as zero-filled holes.

        An anonymous mapping, not a ``bytearray``: the kernel gives its pages
        zero-filled on first touch, so the holes cost no memory, where
        ``bytearray(size)`` writes every zero (a 100 MB model held a second
        time while it registered).
        """
        if not self.size:
            return memoryview(b"")
        data = mmap.mmap(-1, self.size)
        for start, chunk in self.chunks:
            data[start : start + len(chunk)] = chunk
        return memoryview(data)


def _buffer(file: BinaryFile) -> memoryview:
    """The rest of ``file`` as one writable memoryview, read once.

    A file object that lends its buffer (``getbuffer()``: ``io.BytesIO``, the
    store's verified private copy) is used in place, zero-copy; a real file is
    read straight into a buffer of its size; anything else is read and copied.
    """
    getbuffer = getattr(file, "getbuffer", None)
    if getbuffer is not None and hasattr(file, "tell"):
        view: memoryview = getbuffer()
        return view[file.tell() :].cast("B")
    try:
        size = os.fstat(file.fileno()).st_size - file.tell()
    except (AttributeError, OSError, ValueError, io.UnsupportedOperation):
        return memoryview(bytearray(file.read()))
    data = bytearray(max(size, 0))
    view = memoryview(data)
    filled = 0
    while filled < len(data):
        count = file.readinto(view[filled:])  # type: ignore[union-attr]  # IO[bytes] has no readinto in typeshed; binary files do
        if not count:
            return view[:filled]
        filled += count
    rest = file.read()
    return view if not rest else memoryview(bytes(data) + rest)


def _scan(data: memoryview, *, container: bool, budget_size: int | None = None) -> tuple[str, ...]:
    _, imports, _ = run(data, ScanHooks(), container=container, budget_size=budget_size)
    return tuple(sorted(imports))


def _joblib_stream(file: BinaryFile) -> tuple[memoryview, int]:
    """The pickle stream of a joblib file, inflated if compressed, and the artifact's size for the budget."""
    data = _buffer(file)
    inflated = inflate(data, Budget(len(data)).limit)
    return (data, len(data)) if inflated is None else (inflated, len(data))


class PickleFormat:
    """Plain pickle, highest protocol."""

    name = "pickle"

    def dump(self, obj: Any, file: BinaryFile) -> tuple[str, ...]:
        tee = _Tee(file)
        pickle.Pickler(tee, protocol=pickle.HIGHEST_PROTOCOL).dump(obj)
        return _scan(tee.scanned(), container=False)

    def scan(self, file: BinaryFile) -> tuple[str, ...]:
        return _scan(_buffer(file), container=False)

    def load(
        self, file: BinaryFile, *, safe: bool, trusted: Collection[str], inventory: Collection[str] | None = None
    ) -> Any:
        if safe:
            value, _, _ = run(_buffer(file), LoadHooks(trusted, inventory), container=False)
            return value
        return pickle.load(file)


class JoblibFormat:
    """joblib's uncompressed format: numpy arrays written raw after their wrapper."""

    name = "joblib"

    def dump(self, obj: Any, file: BinaryFile, compression: Compression | None = None) -> tuple[str, ...]:
        """Write ``obj`` as joblib does, compressed with ``compression`` (see :mod:`registry.formats.compression`).

        The tee sits on the uncompressed stream, before joblib's compressor,
        so the scan reads the pickle whatever is stored.
        """
        import joblib

        if compression is None:
            tee = _Tee(file)
            joblib.dump(obj, tee)
            return _scan(tee.scanned(), container=True)
        with compressed_writer(file, compression) as compressor:
            tee = _Tee(compressor)
            joblib.dump(obj, tee)
        return _scan(tee.scanned(), container=True)

    def scan(self, file: BinaryFile) -> tuple[str, ...]:
        data, size = _joblib_stream(file)
        return _scan(data, container=True, budget_size=size)

    def load(
        self, file: BinaryFile, *, safe: bool, trusted: Collection[str], inventory: Collection[str] | None = None
    ) -> Any:
        if safe:
            data, size = _joblib_stream(file)
            value, _, _ = run(data, LoadHooks(trusted, inventory), container=True, budget_size=size)
            return value
        return _load_joblib_unsafe(file)
