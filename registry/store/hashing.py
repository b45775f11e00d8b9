"""A write-only file object that hashes and counts what passes through it.

Serializers write straight into it, so the SHA-256 and size of an artifact
are known the moment it is written, with no second read of a file that may
be gigabytes long.
"""

from __future__ import annotations

import hashlib
from typing import IO, Any


class HashingWriter:
    """Forward writes to ``file`` while updating a SHA-256 and a byte count.

    It offers exactly what ``pickle.dump`` and ``joblib.dump`` use: ``write``
    and ``tell`` (joblib aligns numpy arrays on the current position).
    """

    def __init__(self, file: IO[bytes]) -> None:
        self._file = file
        self._sha256 = hashlib.sha256()
        self.size = 0

    def write(self, data: Any) -> int:
        view = memoryview(data)
        self._sha256.update(view)
        self._file.write(view)
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
