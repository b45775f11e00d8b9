"""Signatures that bind a version's identity to its bytes, for registries shared across a trust boundary.

With a signing key, ``register`` stores ``HMAC-SHA256(key, name, version,
format, checksum)`` and ``load`` refuses a version whose signature is
missing or different. Someone who can write the catalog and the blob store
but does not hold the key can then neither swap the bytes (the checksum
changes) nor re-point a version at other bytes (the signature no longer
matches), nor forge a new version that loads.
"""

from __future__ import annotations

import hashlib
import hmac
import os

KEY_VARIABLE = "MODELSHELF_SIGNING_KEY"
_DOMAIN = b"modelshelf-signature-v1"


def signing_key(key: str | bytes | None) -> bytes | None:
    """The key to use: the argument, else ``$MODELSHELF_SIGNING_KEY``, else ``None`` (no signing)."""
    if key is None:
        key = os.environ.get(KEY_VARIABLE) or None
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes) or len(key) < 16:
        raise ValueError("the signing key must be a str or bytes of at least 16 bytes; use a random secret")
    return key


def sign(key: bytes, name: str, version: int, format: str, checksum: str) -> str:
    """The hex HMAC-SHA256 of one version's identity and checksum."""
    message = b"\n".join([_DOMAIN, name.encode(), str(version).encode(), format.encode(), checksum.encode()])
    return hmac.new(key, message, hashlib.sha256).hexdigest()


def is_valid(key: bytes, signature: str | None, name: str, version: int, format: str, checksum: str) -> bool:
    """Whether ``signature`` is the one ``key`` gives for this version (constant-time comparison)."""
    if signature is None:
        return False
    return hmac.compare_digest(signature, sign(key, name, version, format, checksum))
