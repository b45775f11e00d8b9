"""The one type for the binary files formats read and write.

Artifacts reach a format either as an ordinary binary file (``IO[bytes]``:
a file being written, a bundle member) or as the store's verified
in-memory reader, an :class:`io.BufferedIOBase`; typeshed keeps those two
apart, so the formats accept either.
"""

from __future__ import annotations

import io
from typing import IO

BinaryFile = IO[bytes] | io.BufferedIOBase
