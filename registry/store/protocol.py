"""What the layers above ask of a blob store: the :class:`BlobStore` and :class:`StagedBlob` protocols.

``facade``, ``maintenance`` and the bundle import talk to a store only
through these methods, so a directory (:class:`~registry.store.local.LocalBlobStore`),
an object store (:class:`~registry.store.remote.RemoteBlobStore`) and the
in-memory store of the tests (:class:`~registry.store.memory.MemoryStore`)
are interchangeable. A new backend implements exactly this and keeps the
rules every store keeps:

* Content addressed: a blob's name is the SHA-256 of its bytes, and writing
  bytes that are already there stores nothing new.
* Written in two steps: :meth:`BlobStore.stage` hashes the bytes as they are
  written and keeps them under a temporary name; :meth:`StagedBlob.push`
  (before any catalog lock) and :meth:`StagedBlob.publish` (under the lock
  of the blob's catalog row) give them their content address. What was
  never published is removed when the staged blob's ``with`` block ends.
* Read only after verification: :meth:`BlobStore.open_verified` hashes the
  bytes it hands on, and raises :class:`~registry.errors.CorruptedArtifact`
  when they are missing or are not what the digest promises (the SHA-256,
  or the BLAKE3 fast digest when the caller gives one).

Both protocols are ``runtime_checkable``, so ``isinstance(obj, BlobStore)``
tells a store object from a path (it checks the names, not the signatures).

>>> from registry.store import MemoryStore
>>> isinstance(MemoryStore(), BlobStore)
True
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator
from pathlib import Path, PurePath
from typing import IO, Protocol, runtime_checkable

from registry.store.buffer import VerifiedReader
from registry.store.files import StoredFile

__all__ = ["BlobStore", "MappableStore", "ProgressReporter", "StagedBlob"]

#: ``reporter(description, total_bytes)`` returns a context manager yielding ``advance(n_bytes)``.
#: Given to a store (``open_store(..., progress=)``, ``Registry(..., progress=)``); stores call it
#: for transfers worth a progress bar. The library reports nothing unless one is given.
ProgressReporter = Callable[[str, int], contextlib.AbstractContextManager[Callable[[int], None]]]


@runtime_checkable
class StagedBlob(Protocol):
    """Bytes written and hashed under a temporary name, not yet at their content address.

    Use it as a context manager: whatever was not published is removed on exit.
    """

    @property
    def digest(self) -> str:
        """The SHA-256 (bare hex) of the staged bytes."""
        ...

    @property
    def size(self) -> int:
        """The number of staged bytes."""
        ...

    @property
    def blake3(self) -> str | None:
        """The BLAKE3 (bare hex) of the staged bytes, hashed in the same pass: the fast verification digest."""
        ...

    def push(self) -> None:
        """The slow part of publishing, done before any catalog lock is taken (a no-op where there is none)."""
        ...

    def publish(self) -> None:
        """Give the bytes their content address; called under the blob's catalog lock, maybe more than once."""
        ...

    def __enter__(self) -> StagedBlob: ...

    def __exit__(self, *exc_info: object) -> None: ...


@runtime_checkable
class BlobStore(Protocol):
    """A content-addressed store of verified blobs; see the module docstring for the rules."""

    @property
    def location(self) -> str:
        """Where the store is, for messages: a directory, a URL."""
        ...

    def path_of(self, digest: str) -> PurePath:
        """Where the blob with this digest lives (whether or not it exists)."""
        ...

    def stage(self, write: Callable[[IO[bytes]], None]) -> StagedBlob:
        """Run ``write`` into a new temporary blob; return it hashed and ready to publish."""
        ...

    def size_of(self, digest: str) -> int | None:
        """The size of the blob, or ``None`` if the store does not hold it."""
        ...

    def hash_of(self, digest: str) -> str | None:
        """The actual SHA-256 of what is stored under ``digest``, or ``None`` if nothing is."""
        ...

    def open_verified(
        self, digest: str, size: int, *, private: bool = True, blake3: str | None = None
    ) -> contextlib.AbstractContextManager[VerifiedReader]:
        """The blob's bytes, read once and verified against ``digest`` and ``size`` before they are handed on.

        With ``blake3`` they are verified against that fast digest instead of
        ``digest``; the caller passes it only when it trusts it as much.
        """
        ...

    def copy_out(self, digest: str, size: int, destination: Path) -> None:
        """Write the verified blob to ``destination``; ``destination`` never holds unverified bytes."""
        ...

    def delete(self, digest: str) -> bool:
        """Remove a blob; return whether it was there. Call only under the catalog's write lock."""
        ...

    def quarantine(self, digest: str) -> str | None:
        """Set the bytes under ``digest`` aside (never delete them); return where, or ``None`` if nothing was there."""
        ...

    def blobs(self) -> Iterator[StoredFile]:
        """Every blob the store holds (``digest`` ``None`` for a file not named by one)."""
        ...

    def temporary_files(self) -> Iterator[StoredFile]:
        """Every temporary file: blobs being written, or left by a crash."""
        ...

    def links(self) -> Iterator[StoredFile]:
        """Every symbolic link where a directory or a blob belongs (none for a store without links)."""
        ...

    def remove_file(self, file: StoredFile) -> None:
        """Remove a temporary or stray file found by :meth:`blobs` or :meth:`temporary_files`."""
        ...


@runtime_checkable
class MappableStore(Protocol):
    """A store whose blobs are files this machine can map: what ``load(ref, mmap=True)`` needs.

    Apart from :class:`BlobStore`, so a store without it (an object store,
    the memory store, one of your own) stays a :class:`BlobStore`.
    """

    def open_mapped(
        self, digest: str, size: int, *, blake3: str | None = None
    ) -> contextlib.AbstractContextManager[VerifiedReader]:
        """The blob as a read-only shared mapping, hashed in that mapping and verified before it is handed on."""
        ...
