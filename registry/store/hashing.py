"""A write-only file object that hashes and counts what passes through it.

Serializers write straight into it, so the SHA-256, the BLAKE3 and the size
of an artifact are known the moment it is written, with no second read of a
file that may be gigabytes long. The SHA-256 is the artifact's identity (its
checksum, content address, bundle and OCI digest); the BLAKE3 is the *fast
verification digest* a load checks instead, since it hashes on every core
(see :mod:`registry.store.reading`). A large chunk is SHA-256-hashed on a
helper thread *while* the same chunk is written and then BLAKE3-hashed
(all three release the GIL), and ``write`` returns only when all are done:
hashing then costs little more than writing, the order of each hash is
kept, and no chunk is held longer than the serializer holds it anyway, so
memory is what a plain dump uses.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

import blake3 as _blake3

#: Chunks at least this large are hashed on the helper thread while they are written.
OVERLAP_THRESHOLD = 1024 * 1024
#: What the catalog calls the fast verification digest (``ModelVersion.blake3``, ``blake3:<hex>`` in messages).
FAST_PREFIX = "blake3:"


#: Whether this process started BLAKE3's worker threads (its Rust thread pool), which a fork does not copy.
_threads_started = False
#: Whether this process was forked from one that had started them: then their pool is dead here.
_threads_lost = False


def _after_fork_in_child() -> None:
    global _threads_lost
    _threads_lost = _threads_lost or _threads_started


if hasattr(os, "register_at_fork"):
    os.register_at_fork(after_in_child=_after_fork_in_child)


def new_blake3() -> Any:
    """A fresh BLAKE3 that hashes large updates on every core (small ones cost what a single thread does).

    Single-threaded in a process forked after its parent started the
    thread pool (a server forking workers after a preload, a fork-based
    process pool): the child inherits the pool's state but not its threads,
    and a multi-threaded update there would wait for them forever.
    """
    global _threads_started
    if _threads_lost:
        return _blake3.blake3(max_threads=1)
    _threads_started = True
    return _blake3.blake3(max_threads=_blake3.blake3.AUTO)


class HashingWriter:
    """Forward writes to ``file`` while updating a SHA-256 and a byte count.

    It offers exactly what ``pickle.dump`` and ``joblib.dump`` use: ``write``
    and ``tell`` (joblib aligns numpy arrays on the current position). A
    failing write becomes ``failure(exc)``, so serializers that catch broad
    exceptions cannot mistake a full disk for an unpicklable object.
    """

    def __init__(self, file: IO[bytes], failure: Callable[[OSError], Exception]) -> None:
        self._file = file
        self._failure = failure
        self._sha256 = hashlib.sha256()
        self._blake3 = new_blake3()
        self._helper: ThreadPoolExecutor | None = None
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data)
        if view.format != "B" or view.ndim != 1:  # pickle 5 hands over an array's own buffer: BLAKE3 takes bytes
            view = view.cast("B") if view.c_contiguous else memoryview(view.tobytes())
        hashing = None
        if view.nbytes >= OVERLAP_THRESHOLD:
            if self._helper is None:
                self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelshelf-hash")
            hashing = self._helper.submit(self._sha256.update, view)
        else:
            self._sha256.update(view)
        try:
            self._file.write(view)
            self._blake3.update(view)  # while the helper still hashes the SHA-256 of a large chunk
        except OSError as exc:  # a full disk, a vanished mount: the store's failure, not the object's
            raise self._failure(exc) from exc
        finally:
            if hashing is not None:
                hashing.result()
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._file.flush()

    @property
    def hexdigest(self) -> str:
        """The SHA-256 of everything written so far."""
        if self._helper is not None:
            self._helper.shutdown()
            self._helper = None
        return self._sha256.hexdigest()

    @property
    def blake3(self) -> str:
        """The BLAKE3 (bare hex) of everything written so far: the fast verification digest."""
        return str(self._blake3.hexdigest())
