"""What every store shares below the protocol: the record of a stored file and the staged blob's life cycle.

Each backend stages bytes its own way (a temporary file, a temporary key,
a buffer in memory), but the life cycle is one: hashed and kept under a
temporary name, pushed, published under the catalog lock, and on leaving
the ``with`` block whatever was not published is discarded.
:class:`StagedBase` holds that life cycle once; a backend fills in where
its bytes go.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import PurePath
from typing import Self

from registry.digests import checksum_of, is_digest
from registry.errors import CorruptedArtifact

__all__ = ["StagedBase", "StoredFile", "blob_parts", "check_blake3", "check_digest", "check_hash"]


def check_digest(digest: object) -> str:
    """Return ``digest`` if it is 64 lowercase hex characters; nothing else may become a path or a key."""
    if not is_digest(digest):
        raise CorruptedArtifact(
            f"the catalog holds the digest {str(digest)[:80]!r}, which is not 64 hex characters; "
            "the catalog was edited by hand or is damaged (run `modelshelf verify`)"
        )
    return digest


def blob_parts(digest: str) -> tuple[str, ...]:
    """Where every store keeps a blob, below its root: ``blobs/sha256/ab/cdef…`` (checked first)."""
    check_digest(digest)
    return ("blobs", "sha256", digest[:2], digest[2:])


def check_hash(digest: str, actual: str) -> None:
    """Refuse bytes that hash to ``actual`` where the catalog recorded ``digest``."""
    if actual != digest:
        raise CorruptedArtifact(
            f"the blob hashes to {checksum_of(actual)}, the catalog recorded {checksum_of(digest)}",
            expected=checksum_of(digest),
            actual=checksum_of(actual),
        )


def check_blake3(digest: str, blake3: str, actual: str, sha256_of_bytes: Callable[[], str]) -> None:
    """Refuse the blob ``digest`` whose BLAKE3 is ``actual`` where the catalog recorded ``blake3`` (its fast digest).

    Only on a mismatch is the SHA-256 of the bytes computed
    (``sha256_of_bytes``), so the error names them as every refusal does:
    ``expected`` the checksum callers know the artifact by, ``actual`` the
    checksum of what was found. When that still matches, the bytes are
    intact and the catalog's BLAKE3 is what was edited; either way nothing
    is loaded.
    """
    if actual == blake3:
        return
    found = sha256_of_bytes()
    if found == digest:
        message = (
            f"the blob is intact ({checksum_of(digest)}) but its BLAKE3 is blake3:{actual}, and the catalog recorded "
            f"blake3:{blake3}: the catalog's fast digest was edited outside modelshelf (restore the catalog)"
        )
    else:
        message = (
            f"the blob hashes to blake3:{actual} ({checksum_of(found)}), the catalog recorded blake3:{blake3} "
            f"for {checksum_of(digest)}"
        )
    raise CorruptedArtifact(message, expected=checksum_of(digest), actual=checksum_of(found))


@dataclass(frozen=True)
class StoredFile:
    """A file found in the store: a blob (``digest`` set), a temporary file, or a link (``kind="symlink"``).

    Links come only from :meth:`~registry.store.local.LocalBlobStore.links`;
    ``size`` and ``mtime`` are then the link's own (``lstat``), never its target's.
    ``path`` is a local path for a directory store, a key for an object store.
    """

    path: PurePath
    size: int
    mtime: float
    digest: str | None = None
    kind: str = "file"


class StagedBase:
    """The context-manager life cycle of a staged blob (see :class:`~registry.store.protocol.StagedBlob`).

    Subclasses set ``digest``, ``size`` and ``published`` (dataclass fields),
    implement :meth:`publish` and :meth:`_discard`, and may override
    :meth:`push` (nothing to do before the lock by default) and :meth:`_keep`
    (what to do after a recorded publish, such as keeping a local copy).
    """

    published: bool

    def push(self) -> None:
        """Nothing to do before the catalog lock unless the backend says otherwise."""

    def publish(self) -> None:
        raise NotImplementedError

    def _keep(self) -> None:
        """Called on a clean exit after :meth:`publish`; nothing by default."""

    def _discard(self) -> None:
        """Remove whatever is left under a temporary name."""
        raise NotImplementedError

    def __enter__(self) -> Self:
        return self

    def __exit__(self, *exc_info: object) -> None:
        if self.published and exc_info[0] is None:
            self._keep()
        self._discard()
