"""One read of a blob: its bytes land in private memory and are hashed there, never read again.

The digest is computed over the very memory the deserializer will read,
chunk by chunk as each chunk arrives from the file, so no rewrite of the
file at any moment can separate "the bytes that were checked" from "the
bytes that are used". For large blobs a helper thread hashes chunk *k*
while chunk *k + 1* is being read (both release the GIL), so the first
load costs about the longer of reading and hashing, not their sum.

Which digest: the version's BLAKE3 when the catalog has one the load may
trust (``fast=True``; see :func:`registry.trust.signing.covers_blake3`),
else the SHA-256. BLAKE3 is a 256-bit cryptographic hash like SHA-256 (a
blob swapped for other bytes of the same BLAKE3 is as out of reach as one
of the same SHA-256), and it hashes one large chunk on every core, where
SHA-256 runs on one: it is what takes the first load of a large model
from the SHA-256 floor to near ``joblib.load``.
"""

from __future__ import annotations

import hashlib
import io
import mmap
from concurrent.futures import Future, ThreadPoolExecutor
from typing import Any

from registry.errors import CorruptedArtifact
from registry.store.hashing import new_blake3

#: Bytes read (and hashed) per step.
CHUNK = 4 * 1024 * 1024
#: Blobs at least this large are hashed on a helper thread while the next chunk is read.
OVERLAP_THRESHOLD = 2 * CHUNK


def _sha256() -> Any:
    """A fresh SHA-256; one function so a test can count how often a load really hashes."""
    return hashlib.sha256()


def _blake3() -> Any:
    """A fresh multi-threaded BLAKE3; one function so a test can count how often a load really hashes."""
    return new_blake3()


def hash_memory(memory: mmap.mmap | bytearray | memoryview, *, fast: bool) -> str:
    """The BLAKE3 (``fast``) or SHA-256 of ``memory`` as it is now, in one pass (BLAKE3's on every core)."""
    digest = _blake3() if fast else _sha256()
    digest.update(memoryview(memory))
    return str(digest.hexdigest())


def read_once(source: io.RawIOBase, memory: mmap.mmap | bytearray, *, fast: bool = False) -> str:
    """Fill ``memory`` from ``source`` (at its start) in one pass; return the digest of ``memory``.

    The digest is the BLAKE3 with ``fast``, else the SHA-256 (bare hex).
    A file shorter than ``memory`` — truncated while it was read — is
    :class:`CorruptedArtifact`.
    """
    view = memoryview(memory)
    size = len(view)
    sha = _blake3() if fast else _sha256()
    helper = ThreadPoolExecutor(1, thread_name_prefix="modelshelf-hash") if size >= OVERLAP_THRESHOLD else None
    pending: Future[None] | None = None
    offset = 0
    try:
        while offset < size:
            count = source.readinto(view[offset : offset + CHUNK])
            if not count:
                raise CorruptedArtifact(
                    f"the blob ended after {offset} of its {size} bytes while it was read; "
                    "something truncated it (run `modelshelf verify`)",
                    actual=f"{offset} bytes",
                )
            chunk = view[offset : offset + count]
            if helper is None:
                sha.update(chunk)
            else:
                if pending is not None:
                    pending.result()  # keep the hash in order: chunk k is done before k + 1 starts
                pending = helper.submit(sha.update, chunk)
            offset += count
        if pending is not None:
            pending.result()
    finally:
        if helper is not None:
            helper.shutdown(wait=True)
    return str(sha.hexdigest())
