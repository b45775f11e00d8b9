"""A write-only file object that hashes and counts what passes through it.

Serializers write straight into it, so the SHA-256 and size of an artifact
are known the moment it is written, with no second read of a file that may
be gigabytes long. Large immutable chunks are hashed on a helper thread
while the next ones are written (``hashlib`` releases the GIL for large
buffers), so for big models hashing costs little more than writing does.
"""

from __future__ import annotations

import hashlib
import queue
import threading
from collections.abc import Callable
from typing import IO, Any

#: Chunks at least this large (and immutable) are hashed on the helper thread.
OVERLAP_THRESHOLD = 1024 * 1024


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
        self._queue: queue.SimpleQueue[bytes | None] | None = None
        self._thread: threading.Thread | None = None
        self.size = 0

    def _hash_in_background(self) -> None:
        assert self._queue is not None
        while (chunk := self._queue.get()) is not None:
            self._sha256.update(chunk)

    def _hash(self, view: memoryview, data: Any) -> None:
        if self._queue is None and not (isinstance(data, bytes) and view.nbytes >= OVERLAP_THRESHOLD):
            self._sha256.update(view)
            return
        if self._queue is None:
            self._queue = queue.SimpleQueue()
            self._thread = threading.Thread(target=self._hash_in_background, daemon=True)
            self._thread.start()
        # Hashing happens later, in order: only immutable bytes may be handed over as they are.
        self._queue.put(data if isinstance(data, bytes) else bytes(view))

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._hash(view, data)
        try:
            self._file.write(view)
        except OSError as exc:  # a full disk, a vanished mount: the store's failure, not the object's
            raise self._failure(exc) from exc
        self.size += view.nbytes
        return view.nbytes

    def tell(self) -> int:
        return self.size

    def writable(self) -> bool:
        return True

    def flush(self) -> None:
        self._file.flush()

    def _drain(self) -> None:
        if self._queue is not None and self._thread is not None:
            self._queue.put(None)
            self._thread.join()
            self._queue = self._thread = None

    @property
    def hexdigest(self) -> str:
        """The SHA-256 of everything written so far (waits for the helper thread)."""
        self._drain()
        return self._sha256.hexdigest()

    def __del__(self) -> None:
        self._drain()
