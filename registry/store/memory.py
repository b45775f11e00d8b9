"""A blob store in this process's memory, for tests of everything above the store.

:class:`MemoryStore` keeps the rules of the other stores, so a test that
passes on it says something about the layers above: blobs are named by
their SHA-256 (writing the same bytes again stores nothing new), bytes are
hashed while they are written, and every read hashes again and raises
:class:`~registry.errors.CorruptedArtifact` when what is held is not what
the digest promises. Nothing is written to disk and nothing survives the
process; ``objects`` is public so a test can damage a blob on purpose.

>>> from registry import Registry                                          # doctest: +SKIP
>>> reg = Registry("models", store=MemoryStore())                          # doctest: +SKIP
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import secrets
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO

from registry.digests import checksum_of
from registry.errors import CorruptedArtifact, StoreError
from registry.outputs import replacing
from registry.store.buffer import VerifiedReader
from registry.store.files import StagedBase, StoredFile, blob_parts, check_blake3, check_digest, check_hash
from registry.store.hashing import HashingWriter, new_blake3

__all__ = ["MemoryStagedBlob", "MemoryStore"]

_ROOT = PurePosixPath("/memory")


@dataclass
class MemoryStagedBlob(StagedBase):
    """Bytes hashed into a temporary slot of a :class:`MemoryStore`, not yet under their digest."""

    store: MemoryStore
    digest: str
    size: int
    temp_name: str
    blake3: str | None = None
    published: bool = False

    def publish(self) -> None:
        """Put the bytes under their digest; again on every call, so a blob freed in between comes back."""
        data = self.store.temporary.get(self.temp_name)
        if data is None:
            raise StoreError(
                f"the staged blob {checksum_of(self.digest)} left the memory store before it was published "
                "(removed by gc while its with block was open?); stage it again"
            )
        self.store.objects[self.digest] = data
        self.store.mtimes[self.digest] = time.time()
        self.published = True

    def _discard(self) -> None:
        self.store.temporary.pop(self.temp_name, None)
        self.store.mtimes.pop(self.temp_name, None)


class MemoryStore:
    """Blobs in a dict keyed by digest; see the module docstring."""

    def __init__(self) -> None:
        #: digest → bytes: a test may overwrite one to play a damaged blob.
        self.objects: dict[str, bytes] = {}
        #: temporary name → bytes being staged.
        self.temporary: dict[str, bytes] = {}
        #: digest or temporary name → when it was written (``time.time()``), for gc's grace period.
        self.mtimes: dict[str, float] = {}
        self.quarantined: dict[str, bytes] = {}
        self._name = f"memory://{secrets.token_hex(4)}"

    def __repr__(self) -> str:
        return f"MemoryStore({len(self.objects)} blobs)"

    @property
    def location(self) -> str:
        return self._name

    def path_of(self, digest: str) -> PurePosixPath:
        return _ROOT.joinpath(*blob_parts(digest))

    def stage(self, write: Callable[[IO[bytes]], None]) -> MemoryStagedBlob:
        buffer = io.BytesIO()
        writer = HashingWriter(buffer, lambda exc: StoreError(f"cannot write to the memory store: {exc}"))
        write(writer)  # type: ignore[arg-type]
        name = secrets.token_hex(8)
        self.temporary[name] = buffer.getvalue()
        self.mtimes[name] = time.time()
        return MemoryStagedBlob(self, writer.hexdigest, writer.size, name, writer.blake3)

    def size_of(self, digest: str) -> int | None:
        data = self.objects.get(check_digest(digest))
        return None if data is None else len(data)

    def hash_of(self, digest: str) -> str | None:
        data = self.objects.get(check_digest(digest))
        return None if data is None else hashlib.sha256(data).hexdigest()

    def _verified(self, digest: str, size: int, blake3: str | None = None) -> bytes:
        data = self.objects.get(check_digest(digest))  # first: a digest from a tampered row may not be text
        expected = checksum_of(digest)
        if data is None:
            raise CorruptedArtifact(f"the blob {expected} is missing from the store {self._name}", expected=expected)
        if len(data) != size:
            raise CorruptedArtifact(
                f"the blob {expected} has {len(data)} bytes, the catalog recorded {size}",
                expected=expected,
                actual=f"size {len(data)}",
            )
        if blake3 is None:
            check_hash(digest, hashlib.sha256(data).hexdigest())
        else:
            check_blake3(
                digest, blake3, new_blake3().update(data).hexdigest(), lambda: hashlib.sha256(data).hexdigest()
            )
        return data

    @contextlib.contextmanager
    def open_verified(
        self, digest: str, size: int, *, private: bool = True, blake3: str | None = None
    ) -> Iterator[VerifiedReader]:
        """A private copy of the blob, hashed before it is yielded (``private`` is accepted and ignored)."""
        del private
        with VerifiedReader(bytearray(self._verified(digest, size, blake3))) as reader:
            yield reader

    def copy_out(self, digest: str, size: int, destination: Path) -> None:
        data = self._verified(digest, size)
        with replacing(destination, what="the artifact") as target:
            target.write(data)

    def delete(self, digest: str) -> bool:
        self.mtimes.pop(check_digest(digest), None)
        return self.objects.pop(digest, None) is not None

    def quarantine(self, digest: str) -> str | None:
        data = self.objects.pop(check_digest(digest), None)
        if data is None:
            return None
        name = f"{digest}.{secrets.token_hex(4)}"
        self.quarantined[name] = data
        return f"{self._name}/quarantine/{name}"

    def blobs(self) -> Iterator[StoredFile]:
        for digest, data in sorted(self.objects.items()):
            yield StoredFile(self.path_of(digest), len(data), self.mtimes.get(digest, 0.0), digest)

    def temporary_files(self) -> Iterator[StoredFile]:
        for name, data in sorted(self.temporary.items()):
            yield StoredFile(_ROOT / "tmp" / name, len(data), self.mtimes.get(name, 0.0))

    def links(self) -> Iterator[StoredFile]:
        return iter(())

    def remove_file(self, file: StoredFile) -> None:
        path = PurePosixPath(file.path)
        if path.parent == _ROOT / "tmp":
            self.temporary.pop(path.name, None)
        elif file.digest is not None:
            self.objects.pop(file.digest, None)
