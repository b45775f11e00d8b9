"""A blob store in an object store (S3, GCS, Azure) through fsspec, read through a verified local cache.

This module is the only one that imports fsspec. The layout under the URL's
prefix is the local one (``blobs/sha256/ab/cdef…``, ``tmp/…``), so hashing,
verification and publishing rules do not change with the backend:

* Writing: the artifact is serialized into a local staging file of the
  cache, hashed while written (no second read, never held in memory).
  Pushing (:meth:`RemoteStagedBlob.push`), done *before* any catalog lock
  is taken, asks the server whether it already holds an object of that
  digest and size (then nothing is uploaded) and otherwise uploads the
  staged file. On an S3-protocol server it goes straight to its content
  address (:mod:`registry.store.multipart`): one ``PUT`` for a small blob,
  a multipart upload of parts sent in parallel for a large one, which
  becomes visible only when ``CompleteMultipartUpload`` names every part,
  and is aborted on any failure. Other fsspec backends upload under a
  temporary key at staging and copy it to its content address when pushed.
  An object store that stalls or fails then holds up only the writer that
  uses it, never the other writers of the same model waiting on its row
  lock. A pushed blob with no row yet is protected from ``gc`` by its
  grace period. Publishing (:meth:`RemoteStagedBlob.publish`), under the
  catalog lock of the blob's row, only asks the server that the object is
  still there and uploads it again if a concurrent delete freed it
  meanwhile, so no row is committed for an object that is absent. Object
  stores make a completed upload visible all at once, so no reader sees part
  of a blob. A writer killed during a multipart upload leaves an unfinished
  upload (no object, parts the server keeps): :meth:`RemoteBlobStore.temporary_files`
  lists it and ``gc`` aborts it once it is older than the grace period.
* Every existence check that decides whether bytes are uploaded, or whether
  a row may be committed, asks the server: the filesystem is opened without
  fsspec's listings cache, and the cached entry is dropped before each check
  anyway. A listing taken by ``verify`` or ``gc`` once made such a check
  answer from memory after another client had deleted the object, and a
  version was committed whose blob was not in the bucket. ``size_of``,
  ``hash_of`` and ``blobs`` describe the server too, never that memory.
* Reading: blobs are downloaded into the local content-addressed cache
  (``$MODELSHELF_CACHE``, default ``~/.cache/modelshelf``), hashed while
  downloaded into a temporary file, and moved into the cache only if they
  match the catalog's digest; the cache never keeps unverified bytes. Two
  processes fetching one blob each download to their own temporary file and
  rename atomically. Loads then read the cached file once into private
  memory and verify it there, as a local store does (the cache is as
  writable by others as a local store, and gets the same one-read rule).
  A cached copy that fails that check (damaged, planted under the right
  name, a link, another size) is discarded and downloaded again: the
  cache is only a copy, and :class:`CorruptedArtifact` means the object
  store's own copy is missing or bad.
* Credentials come from the usual mechanisms of each service (for S3:
  environment variables, ``~/.aws``, instance roles; ``AWS_ENDPOINT_URL``
  for S3-compatible servers); nothing secret is stored in the catalog.
"""

from __future__ import annotations

import contextlib
import hashlib
import os
import secrets
import shutil
import time
import warnings
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import IO, Any, TypeVar

from registry.digests import checksum_of, is_digest
from registry.errors import CorruptedArtifact, StoreError
from registry.store import multipart
from registry.store.buffer import VerifiedReader
from registry.store.files import StagedBase, StoredFile, blob_parts
from registry.store.local import LocalBlobStore, LocalStagedBlob
from registry.store.protocol import ProgressReporter

_T = TypeVar("_T")

#: Transfers at least this large report progress to the store's ``progress`` callback, when one is given.
PROGRESS_THRESHOLD = 4 * 1024 * 1024

#: Deprecated: a module-wide reporter, read only when the store was given none (pass ``progress=`` instead).
progress_reporter: ProgressReporter | None = None


@contextlib.contextmanager
def _progress(reporter: ProgressReporter | None, description: str, total: int) -> Iterator[Callable[[int], None]]:
    if reporter is None and progress_reporter is not None:
        warnings.warn(
            "setting registry.store.remote.progress_reporter is deprecated; pass progress= to Registry "
            "or open_store instead",
            FutureWarning,  # shown by default: whoever set the global is a user's program, not a library's test
            stacklevel=4,
        )
        reporter = progress_reporter
    if reporter is None or total < PROGRESS_THRESHOLD:
        yield lambda _bytes: None
        return
    with reporter(description, total) as advance:
        yield advance


class _Counting:
    """A readable stream that reports each chunk read to ``advance``."""

    def __init__(self, stream: IO[bytes], advance: Callable[[int], None]) -> None:
        self._stream, self._advance = stream, advance

    def read(self, size: int = -1) -> bytes:
        data = self._stream.read(size)
        self._advance(len(data))
        return data


#: URL scheme → the optional dependency that brings its fsspec implementation.
EXTRAS = {"s3": "s3", "s3a": "s3", "gs": "gcs", "gcs": "gcs", "az": "azure", "abfs": "azure", "abfss": "azure"}


def filesystem(url: str) -> tuple[Any, str]:
    """The fsspec filesystem for ``url`` and the path (bucket/prefix) within it."""
    scheme = url.split("://", 1)[0]
    try:
        import fsspec

        # No listings cache: whether an object exists must be the server's answer (see the module docstring).
        fs, path = fsspec.core.url_to_fs(url, use_listings_cache=False)
    except ImportError as exc:
        extra = EXTRAS.get(scheme, scheme)
        raise StoreError(
            f"the store {url} needs a driver that is not installed ({exc}); pip install 'modelshelf[{extra}]'"
        ) from None
    return fs, path.rstrip("/")


#: ``StoredFile.kind`` of an unfinished multipart upload; its ``path`` is ``key?uploadId=…``.
UNFINISHED_UPLOAD = "multipart-upload"


@dataclass
class RemoteStagedBlob(StagedBase):
    """A blob hashed into local staging, uploaded when pushed (S3), or already under a temporary key (others)."""

    store: RemoteBlobStore
    local: LocalStagedBlob
    temp_key: str | None
    published: bool = False
    #: Whether push still has to upload the bytes straight to their content address (S3).
    to_upload: bool = False

    @property
    def digest(self) -> str:
        return self.local.digest

    @property
    def size(self) -> int:
        return self.local.size

    @property
    def blake3(self) -> str | None:
        return self.local.blake3

    def push(self) -> None:
        """Copy the uploaded bytes to their content address; call it before taking any catalog lock.

        This is the step that talks to the object store at length, so that an
        outage of it stalls or fails this writer alone. Pushing twice is a no-op.
        """
        self.store._push(self)

    def publish(self) -> None:
        """Under the blob's catalog lock: make sure the server holds the blob (again, if it was freed).

        Every call asks the server, a repeated one too: a catalog transaction
        run again after its connection was lost has released the lock in
        between, and a concurrent delete may have freed the blob meanwhile.
        The staged file stays until exit, so it can always be uploaded again.
        """
        self.store._publish(self)
        self.published = True

    def _keep(self) -> None:
        """Recorded: the registering machine keeps a verified copy in its cache."""
        with contextlib.suppress(StoreError):
            self.local.publish()

    def _discard(self) -> None:
        self.local._discard()
        if self.temp_key is not None:
            with contextlib.suppress(Exception):
                self.store._fs.rm(self.temp_key)


class RemoteBlobStore:
    """Blobs under an fsspec URL such as ``s3://bucket/prefix``; see the module docstring."""

    def __init__(
        self, url: str, cache_dir: str | os.PathLike[str], *, progress: ProgressReporter | None = None
    ) -> None:
        self.url = url.rstrip("/")
        self._fs, self._root = filesystem(url)
        self.cache = LocalBlobStore(cache_dir)
        self.progress = progress

    def __repr__(self) -> str:
        return f"RemoteBlobStore({self.url!r}, cache={str(self.cache.root)!r})"

    @property
    def location(self) -> str:
        return self.url

    def _key(self, digest: str) -> str:
        return "/".join((self._root, *blob_parts(digest)))

    def _failure(self, action: str, exc: Exception) -> StoreError:
        return StoreError(
            f"cannot {action} in the blob store {self.url}: {type(exc).__name__}: {exc}; check the URL, the "
            "credentials (the service's usual environment variables or files) and that the bucket exists"
        )

    def path_of(self, digest: str) -> PurePosixPath:
        return PurePosixPath(self._key(digest))

    def size_of(self, digest: str) -> int | None:
        """The size of the blob as the server has it now, or ``None`` if it is missing."""
        key = self._key(digest)
        try:
            self._fs.invalidate_cache(key)  # never a listing remembered from earlier
            return int(self._fs.info(key)["size"])
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._failure("look up a blob", exc) from exc

    # -- writing ----------------------------------------------------------

    def stage(self, write: Callable[[IO[bytes]], None]) -> RemoteStagedBlob:
        local = self.cache.stage(write)
        if multipart.speaks_s3(self._fs):  # uploaded to its content address when pushed
            return RemoteStagedBlob(self, local, None, to_upload=True)
        try:
            temp_key = None
            if self.size_of(local.digest) != local.size:
                temp_key = self._temp_key()
                self._upload(local, temp_key)
        except StoreError:
            local.__exit__(None, None, None)
            raise
        except Exception as exc:
            local.__exit__(None, None, None)
            raise self._failure("upload an artifact", exc) from exc
        return RemoteStagedBlob(self, local, temp_key)

    def _upload(self, local: LocalStagedBlob, key: str) -> None:
        """Upload the staged file (opened never through a link) to ``key``; see the module docstring."""
        with _progress(self.progress, f"uploading {local.size} bytes", local.size) as advance:
            if multipart.speaks_s3(self._fs):
                with local.open() as source:
                    multipart.upload(self._fs, key, source, local.size, advance)
                return
            with local.open() as source, self._fs.open(key, "wb") as target:
                shutil.copyfileobj(_Counting(source, advance), target, 8 * 1024 * 1024)

    def _push(self, staged: RemoteStagedBlob) -> None:
        if staged.to_upload:
            self._push_direct(staged)
            return
        if staged.temp_key is None:
            return
        final = self._key(staged.digest)
        try:
            self._fs.copy(staged.temp_key, final)
            self._fs.rm(staged.temp_key)
            staged.temp_key = None
        except Exception as exc:
            raise self._failure("publish an artifact", exc) from exc
        finally:
            self._fs.invalidate_cache(final)

    def _push_direct(self, staged: RemoteStagedBlob) -> None:
        """Upload the staged bytes straight to their content address unless the server already holds them."""
        final = self._key(staged.digest)
        try:
            if self.size_of(staged.digest) != staged.size:
                self._upload(staged.local, final)
            staged.to_upload = False
        except StoreError:
            raise
        except Exception as exc:
            raise self._failure("upload an artifact", exc) from exc
        finally:
            self._fs.invalidate_cache(final)

    def _publish(self, staged: RemoteStagedBlob) -> None:
        self._push(staged)  # a caller that did not push first pushes here, under the lock
        if self.size_of(staged.digest) != staged.size:  # freed meanwhile (or never there): upload it again
            try:
                self._upload_whole(staged.local, self._key(staged.digest))
            except Exception as exc:
                raise self._failure("publish an artifact", exc) from exc
            finally:
                self._fs.invalidate_cache(self._key(staged.digest))

    def _upload_whole(self, local: LocalStagedBlob, final: str) -> None:
        """Upload to a content address so that an upload failing midway leaves nothing under it.

        An S3 multipart upload is invisible until completed. Other fsspec
        filesystems commit what was written when a file object closes, even
        when it closes on an error, so their bytes go to a temporary key first
        and are copied to ``final`` only once all of them are there.
        """
        if multipart.speaks_s3(self._fs):
            self._upload(local, final)
            return
        temp_key = self._temp_key()
        try:
            self._upload(local, temp_key)
            self._fs.copy(temp_key, final)
        finally:
            with contextlib.suppress(Exception):  # gone, or never written; gc removes what a lost server leaves
                self._fs.rm(temp_key)

    def _temp_key(self) -> str:
        return f"{self._root}/tmp/{os.getpid()}-{secrets.token_hex(8)}"

    def delete(self, digest: str) -> bool:
        """Remove a blob (and its cached copy); return whether the server had it. Call under the catalog lock."""
        key = self._key(digest)
        try:
            if self.size_of(digest) is None:  # asked of the server: S3 answers a delete of nothing with success
                self.cache.delete(digest)
                return False
            self._fs.rm(key)
        except FileNotFoundError:
            return False
        except StoreError:
            raise
        except Exception as exc:
            raise self._failure("delete a blob", exc) from exc
        finally:
            self._fs.invalidate_cache(key)
        self.cache.delete(digest)
        return True

    def quarantine(self, digest: str) -> str | None:
        """Copy the object to a ``quarantine/`` key server-side, then delete it; return that URL (see local)."""
        key = self._key(digest)
        stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
        relative = f"quarantine/{digest}.{stamp}.{secrets.token_hex(4)}"
        try:
            self._fs.copy(key, f"{self._root}/{relative}")
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._failure("copy a damaged blob into quarantine", exc) from exc
        try:
            self._fs.rm(key)
        except FileNotFoundError:
            pass
        except Exception as exc:
            raise self._failure("remove a damaged blob after quarantining it", exc) from exc
        # The cache is left alone: it only ever held verified bytes, and may be what heals the object.
        return f"{self.url}/{relative}"

    # -- reading ----------------------------------------------------------

    def _fetch(self, digest: str, size: int) -> None:
        """Make sure the cache holds a regular file of the blob's size, downloading it if not.

        A file of the right size is not trusted for being there (it may be
        damaged, or planted in a shared cache): every read of it hashes it,
        and :meth:`_through_cache` discards and re-downloads one that fails.
        """
        if self.cache.size_of(digest) == size:
            return
        self._download(digest, size)

    def _download(self, digest: str, size: int) -> None:
        """Download the object into the cache, hashing while downloading; publish it only if it verifies."""
        key = self._key(digest)
        try:
            source = self._fs.open(key, "rb")
        except FileNotFoundError:
            raise CorruptedArtifact(
                f"the blob {checksum_of(digest)} is missing from the object store {self.url}",
                expected=checksum_of(digest),
            ) from None
        except Exception as exc:
            raise self._failure("download a blob", exc) from exc
        with (
            source,
            _progress(self.progress, f"downloading {size} bytes", size) as advance,
            self.cache.stage(lambda file: shutil.copyfileobj(_Counting(source, advance), file, 1024 * 1024)) as staged,
        ):
            if staged.digest != digest or staged.size != size:
                raise CorruptedArtifact(
                    f"the object store's own copy of {checksum_of(digest)} in {self.url} is damaged: it hashes to "
                    f"{checksum_of(staged.digest)} ({staged.size} bytes, {size} expected); it was not cached",
                    expected=checksum_of(digest),
                    actual=checksum_of(staged.digest),
                )
            staged.publish()

    def _through_cache(self, read: Callable[[], _T], digest: str, size: int) -> _T:
        """``read()`` the cached blob; if the cached copy fails its check, discard it, download it again, retry once.

        The cache is a copy: a cached file that is damaged, planted, a link,
        not a regular file or of another size says nothing about the
        object store's copy, so it is removed (the name itself, never through
        a link) and the object downloaded and verified again.
        :class:`CorruptedArtifact` then comes only from the object store's
        copy being missing or bad, or from the cache being rewritten
        between a verified download and its read.
        """
        self._fetch(digest, size)
        try:
            return read()
        except CorruptedArtifact:
            pass  # the cached copy failed; the object store's copy decides
        self.cache.delete(digest)
        self._download(digest, size)
        try:
            return read()
        except CorruptedArtifact as exc:
            raise CorruptedArtifact(
                f"the cached copy of {checksum_of(digest)} failed its check right after a verified download from "
                f"{self.url}: something rewrites the cache at {self.cache.root} ({exc}); make the cache "
                "directory writable by you alone ($MODELSHELF_CACHE)",
                expected=exc.expected,
                actual=exc.actual,
            ) from None

    @contextlib.contextmanager
    def open_verified(
        self, digest: str, size: int, *, private: bool = True, blake3: str | None = None
    ) -> Iterator[VerifiedReader]:
        """The blob read once from the verified cache, which is refreshed from the object store if its copy fails."""
        with contextlib.ExitStack() as stack:
            file = self._through_cache(
                lambda: stack.enter_context(self.cache.open_verified(digest, size, private=private, blake3=blake3)),
                digest,
                size,
            )
            yield file

    def copy_out(self, digest: str, size: int, destination: Path) -> None:
        """Copy the verified blob to ``destination``, refreshing the cache from the object store if its copy fails."""
        self._through_cache(lambda: self.cache.copy_out(digest, size, destination), digest, size)

    def links(self) -> Iterator[StoredFile]:
        """Symbolic links in this machine's cache (an object store has none); see :meth:`LocalBlobStore.links`."""
        return self.cache.links()

    def hash_of(self, digest: str) -> str | None:
        """The SHA-256 of the object the server holds under ``digest``, or ``None`` if it has none."""
        key = self._key(digest)
        try:
            self._fs.invalidate_cache(key)
            with self._fs.open(key, "rb") as source:
                return hashlib.file_digest(source, "sha256").hexdigest()
        except FileNotFoundError:
            return None
        except Exception as exc:
            raise self._failure("read a blob", exc) from exc

    def _listing(self, prefix: str) -> Iterator[tuple[str, int, float]]:
        """Every object under ``prefix``, as the server lists them now (directory placeholders left out)."""
        try:
            self._fs.invalidate_cache(prefix)
            found = self._fs.find(prefix, detail=True)
        except FileNotFoundError:
            return
        for key, info in sorted(found.items()):
            if info.get("type") == "directory":
                continue
            modified = info.get("LastModified") or info.get("mtime") or info.get("last_modified")
            mtime = modified.timestamp() if hasattr(modified, "timestamp") else float(modified or 0)
            yield key, int(info.get("size", 0)), mtime

    def blobs(self) -> Iterator[StoredFile]:
        for key, size, mtime in self._listing(f"{self._root}/blobs/sha256"):
            parts = key.rsplit("/", 2)
            name = parts[-2] + parts[-1] if len(parts) == 3 else ""
            yield StoredFile(PurePosixPath(key), size, mtime, name if is_digest(name) else None)

    def temporary_files(self) -> Iterator[StoredFile]:
        """Objects under ``tmp/``, and (S3) unfinished multipart uploads of blobs, as ``key?uploadId=…``."""
        for key, size, mtime in self._listing(f"{self._root}/tmp"):
            yield StoredFile(PurePosixPath(key), size, mtime)
        if multipart.speaks_s3(self._fs):
            try:
                unfinished = list(multipart.unfinished_uploads(self._fs, f"{self._root}/blobs/"))
            except Exception as exc:
                raise self._failure("list unfinished uploads", exc) from exc
            for upload in unfinished:
                path = PurePosixPath(f"{upload.key}?uploadId={upload.upload_id}")
                yield StoredFile(path, upload.size, upload.mtime, kind=UNFINISHED_UPLOAD)

    def remove_file(self, file: StoredFile) -> None:
        """Remove a temporary object, or abort an unfinished multipart upload (its parts are freed)."""
        if file.kind == UNFINISHED_UPLOAD:
            key, _, upload_id = str(file.path).partition("?uploadId=")
            multipart.abort(self._fs, key, upload_id)
            return
        with contextlib.suppress(FileNotFoundError):
            self._fs.rm(str(file.path))
