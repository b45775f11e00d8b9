"""The blob store: artifacts by SHA-256, written atomically and read only after verification.

Only local directories exist so far; :func:`open_store` is where object-store
backends will be chosen by URL scheme.
"""

from __future__ import annotations

import os

from registry.store.local import LocalBlobStore, StagedBlob, check_digest

__all__ = ["LocalBlobStore", "StagedBlob", "check_digest", "open_store"]


def open_store(location: str | os.PathLike[str]) -> LocalBlobStore:
    """The blob store at ``location``: a directory path or a ``file://`` URL.

    >>> open_store("/tmp/models/blobs")  # doctest: +ELLIPSIS
    LocalBlobStore('/tmp/models/blobs')
    """
    text = os.fspath(location)
    if isinstance(text, bytes):
        raise ValueError("the store location must be a str path or URL, not bytes")
    if text.startswith("file://"):
        text = text[len("file://") :]
    elif "://" in text:
        scheme = text.split("://", 1)[0]
        raise ValueError(f"store URL scheme {scheme!r} is not supported yet; give a local directory path")
    if not text:
        raise ValueError("the store location is empty; give a directory path")
    return LocalBlobStore(text)
