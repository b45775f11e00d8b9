"""A write-only file object that hashes and counts what passes through it.

Serializers write straight into it, so the SHA-256 and size of an artifact
are known the moment it is written, with no second read of a file that may
be gigabytes long.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from typing import IO, Any


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
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._sha256.update(view)
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

    @property
    def hexdigest(self) -> str:
        return self._sha256.hexdigest()
