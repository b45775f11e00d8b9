"""The blob store: artifacts by SHA-256, written atomically and read only after verification.

:func:`open_store` picks the backend from the location: a directory (or
``file://`` URL) is a :class:`LocalBlobStore`; ``s3://``, ``gs://`` and
``az://`` URLs are a :class:`~registry.store.remote.RemoteBlobStore` read
through a local verified cache. Both implement :class:`BlobStore` (see
:mod:`registry.store.protocol`), the only thing the layers above know of a
store; :class:`MemoryStore` implements it too, for tests.
"""

from __future__ import annotations

import os
from pathlib import Path

from registry.errors import InvalidPath
from registry.store.files import StoredFile, check_digest
from registry.store.local import LocalBlobStore, LocalStagedBlob
from registry.store.memory import MemoryStore
from registry.store.protocol import BlobStore, MappableStore, ProgressReporter, StagedBlob

__all__ = [
    "BlobStore",
    "LocalBlobStore",
    "LocalStagedBlob",
    "MappableStore",
    "MemoryStore",
    "ProgressReporter",
    "StagedBlob",
    "StoredFile",
    "cache_links",
    "cache_usage",
    "check_digest",
    "clear_cache",
    "default_cache_dir",
    "open_store",
]

REMOTE_SCHEMES = ("s3", "s3a", "gs", "gcs", "az", "abfs", "abfss")
CACHE_VARIABLE = "MODELSHELF_CACHE"


def default_cache_dir() -> Path:
    """``$MODELSHELF_CACHE``, else ``$XDG_CACHE_HOME/modelshelf``, else ``~/.cache/modelshelf``."""
    if os.environ.get(CACHE_VARIABLE):
        return Path(os.environ[CACHE_VARIABLE]).expanduser()
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "modelshelf"


def open_store(
    location: str | os.PathLike[str],
    cache_dir: str | os.PathLike[str] | None = None,
    *,
    progress: ProgressReporter | None = None,
) -> BlobStore:
    """The blob store at ``location``: a directory, a ``file://`` URL, or an object-store URL.

    ``progress`` is called for transfers large enough to show (an object
    store's uploads and downloads); a local directory has none to report.

    >>> open_store("/tmp/models/blobs")  # doctest: +ELLIPSIS
    LocalBlobStore('/tmp/models/blobs')
    """
    text = os.fspath(location)
    if isinstance(text, bytes):
        raise InvalidPath("the store location must be a str path or URL, not bytes")
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        if scheme not in REMOTE_SCHEMES:
            raise InvalidPath(
                f"store URL scheme {scheme!r} is not supported; use a directory, file://, s3://, gs:// or az://"
            )
        from registry.store.remote import RemoteBlobStore

        return RemoteBlobStore(text, cache_dir if cache_dir is not None else default_cache_dir(), progress=progress)
    if not text:
        raise InvalidPath("the store location is empty; give a directory path")
    return LocalBlobStore(text)


def cache_usage(cache_dir: str | os.PathLike[str] | None = None) -> tuple[Path, int, int]:
    """The cache directory, the number of cached blobs and their total size in bytes."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    blobs = [file for file in LocalBlobStore(root).blobs() if file.digest]
    return root, len(blobs), sum(file.size for file in blobs)


def cache_links(cache_dir: str | os.PathLike[str] | None = None) -> list[Path]:
    """Every symbolic link in the cache where a directory or blob belongs; :func:`clear_cache` leaves them alone."""
    root = Path(cache_dir) if cache_dir is not None else default_cache_dir()
    return [Path(link.path) for link in LocalBlobStore(root).links()]


def clear_cache(cache_dir: str | os.PathLike[str] | None = None) -> tuple[int, int]:
    """Remove every cached blob and temporary file; return how many files and bytes were freed.

    Nothing is removed through a symbolic link: a linked directory is not
    entered and a linked file is not counted (see :func:`cache_links`), so a
    cache whose fan-out directory points elsewhere never deletes what it points to.
    """
    store = LocalBlobStore(Path(cache_dir) if cache_dir is not None else default_cache_dir())
    count = freed = 0
    for file in [*store.blobs(), *store.temporary_files()]:
        store.remove_file(file)
        count, freed = count + 1, freed + file.size
    return count, freed
