"""A private, page-aligned buffer for a blob's bytes, and the read-only file object over it.

A verified load reads the store's file exactly once, into memory that only
this process maps, and everything after the hash (unpickling, zero-copy
numpy arrays, a caller streaming the artifact) reads from that memory. A
rewrite of the store's file after the hash therefore cannot reach the
deserializer: there is nothing left to read from the file.

The memory is an anonymous private mapping (a ``bytearray`` below 64 KiB):
page-aligned (numpy arrays built on it keep joblib's 16-byte alignment) and writable (arrays a model
later modifies in place behave as after ``joblib.load``). Faulting in fresh
pages is most of the cost of filling new memory, so a large buffer asks
for transparent huge pages (``MADV_HUGEPAGE``: one fault per 2 MiB; about
6x faster to fill 100 MB here) and a small one is pre-faulted in one call
with ``MAP_POPULATE``, where the platform has them.
Blobs above the store's in-memory limit (:func:`default_in_memory_limit`)
go to an unlinked temporary file in the store's own ``tmp/`` directory,
its blocks reserved up front (a full disk is an ``OSError`` then, not a
``SIGBUS`` in the middle of the read) and mapped into this process: still
one read of the store's file, and the kernel may write those pages back to
disk instead of holding them in RAM. No path leads to that file; only this
process (and whoever may already inspect its memory, e.g. a debugger of the
same user) can reach it.
"""

from __future__ import annotations

import io
import mmap
import os
import tempfile
from pathlib import Path
from typing import Any

from registry.errors import InvalidArgument


def default_in_memory_limit() -> int:
    """A quarter of the machine's memory, at least 256 MiB: a model that large needs as much again once loaded."""
    try:
        physical = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, OSError, ValueError):
        physical = 0
    return max(256 * 1024 * 1024, physical // 4)


_POPULATE = getattr(mmap, "MAP_POPULATE", 0)
_HUGE_PAGES = getattr(mmap, "MADV_HUGEPAGE", None)
#: Buffers at least this large ask for transparent huge pages (a 2 MiB fault instead of 512 small ones).
HUGE_PAGES_FROM = 8 * 1024 * 1024
#: Smaller buffers are a ``bytearray`` (private and writable too): mapping and unmapping cost 6 µs here, a small
#: model's load 150, and no array that small is viewed in place (joblib_fast copies those), so alignment buys nothing.
MAPPED_FROM = 64 * 1024


def allocate(size: int, spill_dir: Path, in_memory_limit: int) -> mmap.mmap | bytearray:
    """Writable memory of exactly ``size`` bytes that no other process maps.

    Up to ``in_memory_limit`` bytes it is anonymous memory; beyond, the pages
    of an unlinked temporary file created in ``spill_dir`` (which must have
    room for it; if it has not, ``OSError``). Below :data:`MAPPED_FROM`
    bytes (an empty blob included: a mapping cannot be empty) it is a
    ``bytearray``.
    """
    if size < MAPPED_FROM:
        return bytearray(size)
    if size <= in_memory_limit:
        private = getattr(mmap, "MAP_PRIVATE", 0) | getattr(mmap, "MAP_ANONYMOUS", 0)
        if not private:  # Windows: an anonymous mapping is private to the process anyway
            return mmap.mmap(-1, size)
        if size >= HUGE_PAGES_FROM and _HUGE_PAGES is not None:
            memory = mmap.mmap(-1, size, flags=private)
            memory.madvise(_HUGE_PAGES)
            return memory
        return mmap.mmap(-1, size, flags=private | _POPULATE)
    spill_dir.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryFile(dir=spill_dir) as file:  # unlinked at once (O_TMPFILE where available)
        if hasattr(os, "posix_fallocate"):
            os.posix_fallocate(file.fileno(), 0, size)
        else:
            file.truncate(size)
        return mmap.mmap(file.fileno(), size, access=mmap.ACCESS_WRITE)  # the mapping outlives the descriptor


class VerifiedReader(io.BufferedIOBase):
    """A read-only, seekable binary file over bytes that were verified in memory.

    It offers what ``pickle``, joblib and callers streaming an artifact use
    (``read``, ``readinto``, ``readline``, ``peek``, ``seek``, ``tell``) and
    :meth:`getbuffer`, a memoryview of the whole artifact, so a loader can
    build numpy arrays on the verified bytes without copying them. Nothing
    it returns is read from a file.

    >>> reader = VerifiedReader(bytearray(b"abc\\ndef"))
    >>> reader.readline(), reader.read(2), reader.tell()
    (b'abc\\n', b'de', 6)
    """

    def __init__(self, memory: mmap.mmap | bytearray) -> None:
        super().__init__()
        self._memory = memory
        self._view = memoryview(memory)
        self._size = len(self._view)
        self._position = 0

    def _checked(self) -> memoryview:
        if self.closed:
            raise InvalidArgument("I/O operation on a closed verified artifact")
        return self._view

    def readable(self) -> bool:
        self._checked()
        return True

    def seekable(self) -> bool:
        self._checked()
        return True

    def getbuffer(self) -> memoryview:
        """The whole verified artifact, shared (not copied); arrays built on it keep it alive."""
        return self._checked()[:]  # a view of its own: releasing it leaves this reader working

    def _span(self, size: int | None) -> tuple[int, int]:
        start = min(self._position, self._size)
        end = self._size if size is None or size < 0 else min(self._size, start + size)
        return start, end

    def read(self, size: int | None = -1) -> bytes:
        view = self._checked()
        start, end = self._span(size)
        self._position = end
        return bytes(view[start:end])

    read1 = read

    def readinto(self, buffer: Any) -> int:
        view = self._checked()
        target = memoryview(buffer).cast("B")
        start, end = self._span(target.nbytes)
        target[: end - start] = view[start:end]
        self._position = end
        return end - start

    readinto1 = readinto

    def readline(self, size: int | None = -1) -> bytes:
        self._checked()
        start, end = self._span(size)
        newline = self._memory.find(b"\n", start, end)
        return self.read((newline + 1 if newline >= 0 else end) - start)

    def peek(self, size: int = 0) -> bytes:
        """Bytes from the current position without consuming them (at least ``size`` unless at the end)."""
        view = self._checked()
        start, end = self._span(max(size, 1))
        return bytes(view[start:end])

    def seek(self, offset: int, whence: int = io.SEEK_SET) -> int:
        self._checked()
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self._position, io.SEEK_END: self._size}.get(whence)
        if base is None:
            raise InvalidArgument(f"invalid whence ({whence}, should be 0, 1 or 2)")
        if base + offset < 0:
            raise InvalidArgument(f"negative seek position {base + offset}")
        self._position = base + offset
        return self._position

    def tell(self) -> int:
        self._checked()
        return self._position

    def close(self) -> None:
        """Forget the bytes; the memory is freed once no array built on it is left."""
        if not self.closed:
            # Not memory.close(): zero-copy arrays may still use it; the last reference unmaps it.
            self._view = memoryview(b"")
            self._memory = bytearray()
        super().close()
