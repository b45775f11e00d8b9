"""A content-addressed blob store in a local directory.

Layout under the store root::

    blobs/sha256/ab/cdef…   one read-only file per distinct artifact, named by its digest
    tmp/<pid>-<random>.tmp  artifacts being written, on the same filesystem
    quarantine/<digest>.…   damaged blobs ``repair`` set aside (never read, never collected)

Invariants, and why:

* A final name only ever holds complete, fsynced bytes whose SHA-256 is the
  name. Bytes are written to a process-unique temporary file, hashed while
  written, fsynced, and renamed into place (then the directory is fsynced),
  so a crash leaves at worst a stray temporary file, never a partial blob
  under a final name. Renaming alone gives atomic visibility; the fsyncs give
  durability, which is what a registry promises.
* Publishing (the rename) is done by the caller while it holds the catalog's
  lock on the blob's row, and so is freeing a blob. A version that reuses
  existing bytes therefore cannot lose them to a concurrent delete of the
  last other version that referenced them. Unlike the object store (see
  :mod:`registry.store.remote`), nothing is pushed before the lock
  (:meth:`LocalStagedBlob.push` is a no-op): renaming earlier would give up the
  staged file, and with it the bytes to publish again should a concurrent
  delete free the blob before the lock is taken; and a rename on the same
  filesystem is too short to hold up another writer.
* Writing bytes that already exist stores nothing new: the fresh copy is
  renamed over the old one (which also repairs a damaged file).
* Reading is one read (see :meth:`LocalBlobStore.open_verified`): the file
  is opened once (no link on the way, regular, of the recorded size), read
  once into private memory, hashed there, and only that memory is handed
  on. Nothing that is deserialized is ever read from the store's file after
  the hash, with or without a signing key.
* Digests are validated (64 lowercase hex) before they become paths.
* Nothing that walks, lists, writes or deletes follows a symbolic link
  below the root (see :mod:`registry.store.nofollow`). A link where a
  directory or a blob belongs is never entered: :meth:`LocalBlobStore.links`
  reports it, ``blobs()`` and ``temporary_files()`` skip it, and writing
  through it is refused with :class:`StoreError`. Directories are created
  0755 and files 0600 then 0444, whatever the umask, so a shared cache is
  not left writable by others.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import mmap
import os
import secrets
import shutil
import stat
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import IO

from registry.digests import checksum_of, is_digest
from registry.errors import CorruptedArtifact, StoreError, UnmappableBlob
from registry.outputs import replacing
from registry.store import nofollow
from registry.store.buffer import VerifiedReader, allocate, default_in_memory_limit
from registry.store.files import StagedBase, StoredFile, blob_parts, check_blake3, check_hash
from registry.store.hashing import HashingWriter
from registry.store.mapping import outside_writers
from registry.store.reading import hash_memory, read_once

_READ_ONLY = stat.S_IRUSR | stat.S_IRGRP | stat.S_IROTH
_BUFFER = 1024 * 1024
#: Artifacts up to this size are read into anonymous memory; larger ones into an unlinked temporary file.
IN_MEMORY_LIMIT = default_in_memory_limit()


_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)


def _open_without_links(root: Path, parts: tuple[str, ...]) -> int:
    """Open ``root/part/…/name`` for reading, refusing a symbolic link at any step below ``root``.

    Each directory is opened relative to the one before (``openat`` with
    ``O_NOFOLLOW``), so no link can be swapped in between a check and the
    open. ``O_NONBLOCK`` keeps a FIFO planted under a blob's name from
    blocking the open; the caller then refuses it as not a regular file.
    Where the platform lacks ``dir_fd``, each step is checked with
    ``lstat`` first (which leaves that race open).
    """
    flags = os.O_RDONLY | _NO_FOLLOW | getattr(os, "O_NONBLOCK", 0)
    if os.open not in os.supports_dir_fd:
        step = root
        for part in parts[:-1]:
            step = step / part
            if step.is_symlink():
                raise OSError(errno.ELOOP, "a directory of the store is a symbolic link")
        return os.open(step / parts[-1], flags)
    directory = os.open(root, os.O_RDONLY | getattr(os, "O_DIRECTORY", 0))
    try:
        for part in parts[:-1]:
            inner = os.open(part, os.O_RDONLY | _NO_FOLLOW | getattr(os, "O_DIRECTORY", 0), dir_fd=directory)
            os.close(directory)
            directory = inner
        return os.open(parts[-1], flags, dir_fd=directory)
    finally:
        os.close(directory)


@dataclass
class LocalStagedBlob(StagedBase):
    """Bytes written, hashed and fsynced under a temporary file name, not yet published.

    Use it as a context manager: whatever was not published is removed on exit.
    """

    store: LocalBlobStore
    digest: str
    size: int
    temp_path: Path
    #: The BLAKE3 of the staged bytes (bare hex), computed in the same pass as ``digest``.
    blake3: str | None = None

    published: bool = False

    def publish(self) -> None:
        """Move the bytes to their content address, under the blob's catalog lock.

        Publishing again (a catalog transaction run again after its connection
        was lost) checks that the blob is still there: the lock was released
        in between, so a concurrent delete may have freed it, and the staged
        file that could restore it was renamed away by the first publish.
        Then :class:`StoreError` says so and nothing is recorded.
        """
        if not self.published:
            self.store._publish(self)
            self.published = True
        elif self.store.size_of(self.digest) != self.size:
            raise StoreError(
                f"the blob {checksum_of(self.digest)} was removed from the store at {self.store.root} by a concurrent "
                "delete while the catalog connection was re-established; nothing was recorded: register it again"
            )

    def open(self) -> io.FileIO:
        """The staged bytes for reading (an upload), opened without following a link on the way.

        Opening ``temp_path`` by name would read whatever a link swapped in
        for ``tmp/`` since the bytes were hashed points to, and upload it
        under this digest. Raises :class:`StoreError` for a link, a file that
        is not regular or not of the staged size.
        """
        parts = self.store._parts(self.temp_path)
        try:
            fd = _open_without_links(self.store.root, parts)
        except OSError as exc:
            raise self.store._write_failure("read a staged artifact", parts[:-1], exc) from exc
        file = open(fd, "rb", buffering=0)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode) or info.st_size != self.size:
            file.close()
            raise StoreError(
                f"the staged artifact {self.temp_path} was replaced since it was hashed (another user can write "
                f"{self.store.root}?); nothing was uploaded: make the directory writable by you alone and retry"
            )
        return file

    def _discard(self) -> None:
        """Remove the temporary file (gone already once published); never through a link."""
        with contextlib.suppress(OSError):  # a leftover (or a link swapped in) is for gc to report
            nofollow.unlink(self.store.root, self.store._parts(self.temp_path))


class LocalBlobStore:
    """Blobs under ``root``; see the module docstring for the invariants."""

    def __init__(self, root: str | os.PathLike[str]) -> None:
        self.root = Path(root).absolute()
        self._tmp = self.root / "tmp"

    def __repr__(self) -> str:
        return f"LocalBlobStore({str(self.root)!r})"

    @property
    def location(self) -> str:
        return str(self.root)

    def path_of(self, digest: str) -> Path:
        """Where the blob with this digest lives (whether or not it exists)."""
        return self.root.joinpath(*blob_parts(digest))

    def _parts(self, path: Path) -> tuple[str, ...]:
        """The names of ``path`` below the root (every path the store builds lies below it)."""
        return path.relative_to(self.root).parts

    def _link_refused(self, action: str, parts: tuple[str, ...]) -> StoreError:
        return StoreError(
            f"cannot {action} in the blob store at {self.root}: {self.root.joinpath(*parts)} (or a directory "
            "above it) is a symbolic link or not a directory; modelshelf never writes or deletes through a "
            "link: remove the link (`modelshelf verify` lists every one) and try again"
        )

    def _write_failure(self, action: str, parts: tuple[str, ...], exc: OSError) -> StoreError:
        if nofollow.is_link_error(exc):
            return self._link_refused(action, parts)
        return self._failure(action, exc)

    def _failure(self, action: str, exc: OSError) -> StoreError:
        return StoreError(
            f"cannot {action} in the blob store at {self.root}: {exc.strerror or exc}; "
            "check that the directory exists, is writable and has free space"
        )

    def stage(self, write: Callable[[IO[bytes]], None]) -> LocalStagedBlob:
        """Run ``write`` into a new temporary file; return it hashed, fsynced and read-only.

        If ``write`` raises, the temporary file is removed and the exception
        propagates; a failure of the disk itself becomes :class:`StoreError`.
        """
        name = f"{os.getpid()}-{secrets.token_hex(8)}.tmp"
        temp_path = self._tmp / name
        try:
            tmp = nofollow.open_dir(self.root, ("tmp",), create=True)
        except OSError as exc:
            raise self._write_failure("create a temporary file", ("tmp",), exc) from exc
        try:
            flags = os.O_WRONLY | os.O_CREAT | os.O_EXCL | nofollow._NO_FOLLOW | getattr(os, "O_CLOEXEC", 0)
            fd = os.open(name, flags, 0o600, dir_fd=tmp)
            with open(fd, "wb", buffering=_BUFFER) as raw:
                writer = HashingWriter(raw, lambda exc: self._failure("write an artifact", exc))
                write(writer)  # type: ignore[arg-type]
                raw.flush()
                os.fsync(raw.fileno())
                os.fchmod(raw.fileno(), _READ_ONLY)
        except BaseException as exc:
            with contextlib.suppress(OSError):
                os.unlink(name, dir_fd=tmp)
            if isinstance(exc, OSError) and not isinstance(exc, StoreError):
                raise self._failure("write an artifact", exc) from exc
            raise
        finally:
            os.close(tmp)
        return LocalStagedBlob(self, writer.hexdigest, writer.size, temp_path, writer.blake3)

    def _publish(self, staged: LocalStagedBlob) -> None:
        """Rename the staged bytes onto their content address.

        Always a rename, even when a file of that name exists: the staged
        bytes were just hashed, the existing file may have been damaged since,
        and an atomic replace repairs it at the cost of one rename. New
        directories are fsynced into their parents, so the path survives a
        crash along with the file.
        """
        final = self.path_of(staged.digest)
        fanout = self._parts(final.parent)
        created: list[int] = []
        try:
            with nofollow.directory(self.root, ("tmp",)) as tmp:
                try:
                    target = nofollow.open_dir(self.root, fanout, create=True, created=created)
                except OSError as exc:
                    raise self._write_failure("publish an artifact", fanout, exc) from exc
                try:
                    os.replace(staged.temp_path.name, final.name, src_dir_fd=tmp, dst_dir_fd=target)
                    os.fsync(target)
                finally:
                    os.close(target)
            for parent in reversed(created):  # innermost first: a new directory, then its parent's entry
                os.fsync(parent)
        except StoreError:
            raise
        except OSError as exc:
            raise self._write_failure("publish an artifact", ("tmp",), exc) from exc
        finally:
            for parent in created:
                os.close(parent)

    def copy_out(self, digest: str, size: int, destination: Path) -> None:
        """Write the blob to ``destination`` atomically, hashing while copying; rename only if it verifies.

        The copy goes to a temporary file beside ``destination`` and is renamed
        onto it only when its SHA-256 equals ``digest``, so ``destination``
        never holds unverified bytes, even briefly.
        """
        with (
            self._open(digest, size) as source,
            replacing(destination, what="the artifact", durable=True) as target,
        ):
            writer = HashingWriter(target, lambda exc: self._failure("write the copy", exc))
            shutil.copyfileobj(source, writer, _BUFFER)
            check_hash(digest, writer.hexdigest)  # raising here leaves destination untouched

    def exists(self, digest: str) -> bool:
        return self.size_of(digest) is not None

    def size_of(self, digest: str) -> int | None:
        """The size of a blob, or ``None`` if it is missing, not a regular file, or reached through a link."""
        info = nofollow.lstat(self.root, self._parts(self.path_of(digest)))
        return info.st_size if info is not None and nofollow.is_regular(info) else None

    def hash_of(self, digest: str) -> str | None:
        """The actual SHA-256 of the blob stored under ``digest``, or ``None`` if it is missing (or a link)."""
        try:
            fd = _open_without_links(self.root, self._parts(self.path_of(digest)))
        except FileNotFoundError:
            return None
        except OSError as exc:
            if nofollow.is_link_error(exc):
                return None
            raise
        with open(fd, "rb", buffering=0) as file:
            if not stat.S_ISREG(os.fstat(fd).st_mode):
                return None
            return hashlib.file_digest(file, "sha256").hexdigest()

    def _walk(self, *, blobs: bool = True, tmp: bool = True) -> Iterator[StoredFile]:
        """Every blob (with ``blobs``), temporary file (with ``tmp``) and link among them, entering no link.

        A link (or a non-directory) where ``blobs``, ``blobs/sha256``, a
        fan-out directory or ``tmp`` belongs is yielded as a ``symlink``
        record and not entered; so is a link in place of a blob or
        temporary file. Each part is listed only when asked for, so
        :meth:`temporary_files` does not list every blob.
        """
        places = [("blobs",), ("blobs", "sha256")] if blobs else []
        for parts in [*places, ("tmp",)] if tmp else places:
            link = self._link_at(parts)
            if link is not None:
                yield link
        for name, info in self._entries(("blobs", "sha256")) if blobs else ():
            if stat.S_ISDIR(info.st_mode):
                for inner, inner_info in self._entries(("blobs", "sha256", name)):
                    digest = name + inner
                    yield self._record(("blobs", "sha256", name, inner), inner_info, digest)
            else:
                yield self._record(("blobs", "sha256", name), info, None)
        for name, info in self._entries(("tmp",)) if tmp else ():
            yield self._record(("tmp", name), info, None)

    def _link_at(self, parts: tuple[str, ...]) -> StoredFile | None:
        info = nofollow.lstat(self.root, parts)
        if info is None or not stat.S_ISLNK(info.st_mode):
            return None
        return StoredFile(self.root.joinpath(*parts), info.st_size, info.st_mtime, None, "symlink")

    def _entries(self, parts: tuple[str, ...]) -> list[tuple[str, os.stat_result]]:
        try:
            return nofollow.entries(self.root, parts) or []
        except OSError as exc:
            if nofollow.is_link_error(exc):  # a link where a directory belongs: reported by _walk, not entered
                return []
            raise self._failure("list the store", exc) from exc

    def _record(self, parts: tuple[str, ...], info: os.stat_result, digest: str | None) -> StoredFile:
        if digest is not None and not is_digest(digest):
            digest = None
        kind = "symlink" if stat.S_ISLNK(info.st_mode) else "file"
        return StoredFile(self.root.joinpath(*parts), info.st_size, info.st_mtime, digest, kind)

    def blobs(self) -> Iterator[StoredFile]:
        """Every file under the blob directory; ``digest`` is ``None`` for one whose name is not a digest.

        Links are not files of the store: they are never yielded here (see :meth:`links`).
        """
        for file in self._walk(tmp=False):
            if file.kind == "file":
                yield file

    def temporary_files(self) -> Iterator[StoredFile]:
        """Every file in the temporary directory (artifacts being written, or left by a crash); no link."""
        for file in self._walk(blobs=False):
            if file.kind == "file":
                yield file

    def links(self) -> Iterator[StoredFile]:
        """Every symbolic link where a directory or a file of the store belongs (``kind="symlink"``).

        modelshelf never creates links, so each one is tampering or a
        mistake; ``verify`` reports them, and nothing deletes or writes
        through them. A fan-out directory that is a link has ``digest``
        ``None``; a blob that is a link has its digest.
        """
        for file in self._walk():
            if file.kind == "symlink":
                yield file

    def remove_file(self, file: StoredFile) -> None:
        """Remove a temporary file or stray file found by :meth:`blobs` or :meth:`temporary_files`.

        The name is removed relative to directories opened without following
        links; a link on the way is refused with :class:`StoreError`.
        """
        parts = self._parts(Path(file.path))
        try:
            nofollow.unlink(self.root, parts)
        except OSError as exc:
            raise self._write_failure("remove a file", parts[:-1], exc) from exc

    def delete(self, digest: str) -> bool:
        """Remove a blob; return whether it was there. Call only under the catalog's write lock.

        A link in place of a directory on the way is refused with
        :class:`StoreError` rather than deleted through.
        """
        parts = self._parts(self.path_of(digest))
        try:
            return nofollow.unlink(self.root, parts)
        except OSError as exc:
            raise self._write_failure("delete a blob", parts[:-1], exc) from exc

    def quarantine(self, digest: str) -> str | None:
        """Move whatever lies under the blob's name into ``quarantine/``; return where, or ``None`` if nothing.

        For ``repair``: damaged bytes are set aside, never deleted, so a
        person can still look at them. The entry itself is renamed (a link
        moves as a link, its target untouched), and only when no directory
        on the way is a symbolic link. ``gc`` never walks ``quarantine/``.
        """
        parts = self._parts(self.path_of(digest))
        name = f"{digest}.{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}.{secrets.token_hex(4)}"
        try:
            with (
                nofollow.directory(self.root, parts[:-1]) as source,
                nofollow.directory(self.root, ("quarantine",), create=True) as target,
            ):
                os.rename(parts[-1], name, src_dir_fd=source, dst_dir_fd=target)
                os.fsync(source)
                os.fsync(target)
        except FileNotFoundError:
            return None
        except OSError as exc:
            if nofollow.is_link_error(exc):
                raise StoreError(
                    f"a directory on the way to {self.root.joinpath(*parts)} is a symbolic link; modelshelf never "
                    "writes links, so nothing was moved: replace the link by the directory it should be and run "
                    "`modelshelf repair` again"
                ) from None
            raise self._failure("move a damaged blob into quarantine", exc) from exc
        return str(self.root / "quarantine" / name)

    def _open(self, digest: str, size: int) -> io.FileIO:
        """Open a blob for reading after checking it is a regular file (no link) of the recorded size.

        The file is unbuffered: its one reader reads straight into its own
        memory, with no copy in between.
        """
        parts = blob_parts(digest)  # the path is built for messages only: building it costs more than the open
        expected = checksum_of(digest)
        try:
            fd = _open_without_links(self.root, parts)
        except FileNotFoundError:
            raise CorruptedArtifact(
                f"the blob {expected} is missing from the store at {self.root}",
                expected=expected,
            ) from None
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR):
                raise self._failure("read a blob", exc) from exc
            raise CorruptedArtifact(
                f"the blob {expected} at {self.root.joinpath(*parts)} is, or lies under, a symbolic link or "
                "something else that is not a directory; modelshelf never writes links, "
                "so the store was tampered with: remove the link and restore the blob",
                expected=expected,
                actual="symbolic link",
            ) from None
        file = open(fd, "rb", buffering=0)
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            file.close()
            raise CorruptedArtifact(
                f"the blob {expected} at {self.root.joinpath(*parts)} is not a regular file; the store was "
                "tampered with: remove it and restore the blob",
                expected=expected,
                actual="not a regular file",
            )
        actual_size = info.st_size
        if actual_size != size:
            file.close()
            raise CorruptedArtifact(
                f"the blob {expected} has {actual_size} bytes, the catalog recorded {size}",
                expected=expected,
                actual=f"size {actual_size}",
            )
        return file

    @contextlib.contextmanager
    def open_verified(
        self, digest: str, size: int, *, private: bool = True, blake3: str | None = None
    ) -> Iterator[VerifiedReader]:
        """Yield the blob's bytes, read once into private memory and verified there against ``digest``.

        With ``blake3`` (the version's fast digest, which the caller trusts
        as it trusts ``digest``) the memory is verified against it instead:
        the same one read, hashed on every core.

        The file is opened once (no symbolic link on the way, a regular
        file of the recorded ``size``) and read once, each chunk hashed in
        the memory it landed in; the SHA-256 is compared, and only then is
        a read-only file object over that memory yielded (with
        ``getbuffer()`` for zero-copy arrays). The file is closed before
        anything reads the yielded object, so whatever rewrites the store's
        file afterwards — another process, another machine on a shared
        disk — cannot reach the deserializer. This holds with and without a
        signing key: ``private`` is accepted for compatibility and ignored,
        every read is private now.

        Every load hashes, repeated ones too. An earlier version skipped the
        hash when the file's identity (device, inode, size, mtime, ctime) was
        unchanged since a verified read, trusting that every write moves
        ctime; a write through a shared writable mapping whose page is
        already dirty moves neither time, so a writer to the store could
        have had unverified bytes unpickled. Blobs above :data:`IN_MEMORY_LIMIT` are read the same
        way into an unlinked temporary file under ``tmp/`` instead of
        anonymous memory (see :mod:`registry.store.buffer`). Raises :class:`CorruptedArtifact` when the blob is
        missing, is a link or not a regular file, has another size, ends
        early or has another digest.
        """
        del private  # every read is private; kept so existing callers do not break
        with self._open(digest, size) as source:
            try:
                if size > IN_MEMORY_LIMIT:  # the spill file goes into tmp/: never through a link
                    os.close(nofollow.open_dir(self.root, ("tmp",), create=True))
                memory = allocate(size, self._tmp, IN_MEMORY_LIMIT)
            except OSError as exc:
                if nofollow.is_link_error(exc):
                    raise self._link_refused("make room for a private copy", ("tmp",)) from exc
                raise self._failure(f"make room for a private copy of {size} bytes", exc) from exc
            actual = read_once(source, memory, fast=blake3 is not None)
        if blake3 is None:
            check_hash(digest, actual)
        else:
            check_blake3(digest, blake3, actual, lambda: hashlib.sha256(memory).hexdigest())
        with VerifiedReader(memory) as reader:
            yield reader

    @contextlib.contextmanager
    def open_mapped(self, digest: str, size: int, *, blake3: str | None = None) -> Iterator[VerifiedReader]:
        """Yield the blob's bytes as a read-only shared mapping of the store's file, verified in that mapping.

        For ``load(ref, mmap=True)``: processes mapping the same blob share
        its pages. The file is opened as :meth:`open_verified` opens it (no
        link, regular, of the recorded size), must be writable by no one but
        this process's user and root (see :mod:`registry.store.mapping`;
        else :class:`UnmappableBlob`, an UntrustedArtifact), is mapped read-only, and the
        mapping itself is hashed (``blake3`` as in :meth:`open_verified`)
        before the reader over it is yielded. Arrays built on it are
        read-only; the mapping lives as long as they do.
        """
        with self._open(digest, size) as source:
            reason = outside_writers(os.fstat(source.fileno()))
            if reason is not None:
                raise UnmappableBlob(
                    f"cannot map the blob {checksum_of(digest)} at {self.path_of(digest)}: {reason}; a mapping shows "
                    "the file's bytes as they are now, so whoever can write it could change a model after its "
                    "verification. Load without mmap=True (a private verified copy), or let only this user (or "
                    "root) own the store's files"
                )
            memory: mmap.mmap | bytearray = (
                mmap.mmap(source.fileno(), size, access=mmap.ACCESS_READ) if size else bytearray()
            )
        actual = hash_memory(memory, fast=blake3 is not None)  # over the mapping the loader will read
        if blake3 is None:
            check_hash(digest, actual)
        else:
            check_blake3(digest, blake3, actual, lambda: hashlib.sha256(memory).hexdigest())
        with VerifiedReader(memory) as reader:
            yield reader
