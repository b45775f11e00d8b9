"""A write-only file object that hashes and counts what passes through it.

Serializers write straight into it, so the SHA-256 and size of an artifact
are known the moment it is written, with no second read of a file that may
be gigabytes long. A large chunk is hashed on a helper thread *while* the
same chunk is being written (both release the GIL), and ``write`` returns
only when both are done: hashing then costs little more than writing, the
order of the hash is kept, and no chunk is held longer than the serializer
holds it anyway, so memory is what a plain dump uses.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import IO, Any

#: Chunks at least this large are hashed on the helper thread while they are written.
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
        self._helper: ThreadPoolExecutor | None = None
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data)
        hashing = None
        if view.nbytes >= OVERLAP_THRESHOLD:
            if self._helper is None:
                self._helper = ThreadPoolExecutor(max_workers=1, thread_name_prefix="modelshelf-hash")
            hashing = self._helper.submit(self._sha256.update, view)
        else:
            self._sha256.update(view)
        try:
            self._file.write(view)
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
