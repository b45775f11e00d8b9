"""joblib's compressed files, inflated with the standard library under the same size budget.

joblib writes a whole compressed stream (zlib, gzip, bz2, lzma or xz) in
place of the plain file. The safe loader and the import scanner inflate it
here — never with joblib's own reader — in bounded steps, so a
decompression bomb stops at the load's budget instead of filling memory.
"""

from __future__ import annotations

import bz2
import lzma
import zlib
from collections.abc import Callable
from typing import Any

from registry.errors import ArtifactTooLarge, SerializationError

#: Inflate this much at a time, and refuse before a step would pass the limit: the peak stays near the limit.
_STEP = 1 << 20

#: joblib's magic prefixes, exactly as joblib tests them (a looser or stricter test here would let a file be
#: read as one stream by the scanner and as another by joblib), the stdlib decompressor for each, and its name.
_FORMATS: tuple[tuple[bytes, Callable[[], Any], str], ...] = (
    (b"\x1f\x8b", lambda: zlib.decompressobj(wbits=31), "gzip"),
    (b"x", lambda: zlib.decompressobj(), "zlib"),
    (b"BZ", bz2.BZ2Decompressor, "bz2"),
    (b"\xfd7zXZ", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_XZ), "xz"),
    (b"\x5d\x00", lambda: lzma.LZMADecompressor(format=lzma.FORMAT_ALONE), "lzma"),
)


def inflate(data: memoryview, limit: int) -> memoryview | None:
    """The decompressed bytes of a compressed joblib file (``None`` if ``data`` is not compressed).

    More than ``limit`` bytes of output raise :class:`ArtifactTooLarge`.
    """
    head = bytes(data[:6])
    if head.startswith(b"ZF"):
        raise SerializationError(
            "the artifact is in joblib's pre-0.10 format, which the safe loader does not read; "
            "re-save it with a current joblib, or load it with safe=False"
        )
    if head.startswith(b"\x04\x22\x4d\x18"):
        raise SerializationError(
            "the artifact is lz4-compressed, which the safe loader does not read; "
            "re-save it with another compression (or none), or load it with safe=False"
        )
    for prefix, make, name in _FORMATS:
        if head.startswith(prefix):
            return memoryview(_bounded(make(), bytes(data), limit, name))
    return None


def _bounded(decompressor: Any, data: bytes, limit: int, name: str) -> bytearray:
    out = bytearray()

    def take(chunk: bytes) -> None:
        if len(out) + len(chunk) > limit:
            raise ArtifactTooLarge(
                f"refused to load: the {name}-compressed artifact inflates to more than {limit} bytes, "
                f"the most a safe load of {len(data)} bytes may allocate; if you trust it, load it with safe=False",
                f"{name} decompression",
                len(out) + len(chunk),
                limit,
            )
        out.extend(chunk)

    try:
        if hasattr(decompressor, "unconsumed_tail"):  # zlib and gzip
            pending = data
            while True:
                chunk = decompressor.decompress(pending, _STEP)
                take(chunk)
                pending = decompressor.unconsumed_tail
                if not chunk and not pending:
                    break
            take(decompressor.flush(_STEP))
        else:  # bz2, lzma, xz
            take(decompressor.decompress(data, _STEP))
            while not decompressor.eof and not decompressor.needs_input:
                take(decompressor.decompress(b"", _STEP))
            if not decompressor.eof:
                raise EOFError("the stream ends before its end marker")
    except (zlib.error, OSError, EOFError, lzma.LZMAError) as exc:
        raise SerializationError(f"the {name}-compressed artifact is damaged: {exc}") from exc
    return out
