"""Checksums and digests: the one place that adds or strips ``sha256:``.

A *digest* is the bare 64-hex SHA-256 of some bytes: how the store names a
blob and the catalog keys it. A *checksum* is the same digest with its
algorithm in front (``"sha256:<hex>"``): what callers see (``mv.checksum``),
what messages and bundles show. Converting here, and nowhere else, keeps the
two forms from being mixed up at a seam (a prefixed value used as a path, a
bare one shown as a checksum) and makes a second algorithm a change to one
module.

>>> checksum_of("ab" * 32)[:11]
'sha256:abab'
>>> digest_of("sha256:" + "ab" * 32) == "ab" * 32
True
"""

from __future__ import annotations

import re
from typing import TypeGuard

CHECKSUM_PREFIX = "sha256:"
#: A checksum as text: the prefix and 64 lowercase hex digits (for patterns that embed it).
CHECKSUM_PATTERN = r"sha256:[0-9a-f]{64}"
_CHECKSUM = re.compile(CHECKSUM_PATTERN)
_DIGEST = re.compile(r"[0-9a-f]{64}")


def checksum_of(digest: str) -> str:
    """The checksum (``"sha256:<hex>"``) of a bare hex digest, as callers and messages show it."""
    return CHECKSUM_PREFIX + digest


def is_digest(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a bare digest: exactly 64 lowercase hex digits (all a blob's name may be)."""
    return isinstance(value, str) and _DIGEST.fullmatch(value) is not None


def is_checksum(value: object) -> TypeGuard[str]:
    """Whether ``value`` is a well-formed checksum: ``sha256:`` and exactly 64 lowercase hex digits."""
    return isinstance(value, str) and _CHECKSUM.fullmatch(value) is not None


def digest_of(checksum: str, *, check: bool = True) -> str:
    """The bare hex digest of a checksum; ``ValueError`` if ``checksum`` is not one.

    Refusing a malformed value here, rather than stripping whatever prefix
    is there, keeps it from reaching the store as a blob name.
    ``check=False`` only strips the prefix, if present: for what the catalog
    says (``ModelVersion.digest``), which a tampered row may have changed and
    which the store checks itself, so that such a row is refused there as
    :class:`~registry.errors.CorruptedArtifact`, not here as a bare
    ``ValueError``; and for search terms given with or without the prefix.
    """
    if check and not is_checksum(checksum):
        raise ValueError(
            f"{checksum!r} is not a checksum: expected 'sha256:' and 64 lowercase hex digits, "
            "as ModelVersion.checksum shows"
        )
    return checksum.removeprefix(CHECKSUM_PREFIX)
