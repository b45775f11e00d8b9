"""Signatures that bind a version's identity to its bytes, for registries shared across a trust boundary.

With a signing key, ``register`` stores a signature and ``load`` refuses a
version whose signature is missing or different. Someone who can write the
catalog and the blob store but does not hold the key can then neither swap
the bytes (the checksum changes) nor re-point a version at other bytes (the
signature no longer matches), nor forge a new version that loads.

Two generations:

* **v1** (bare hex, written before this module knew v2):
  ``HMAC-SHA256(key, name, version, format, checksum)``. Still accepted for
  identity, but it does not cover the import inventory, so ``verify``
  reports such versions as ``legacy_signature``.
* **v2** (``v2:`` + the MAC in base64url): the same HMAC over canonical JSON
  of name, version, format, checksum, size, the sorted import inventory
  (``null`` when none was recorded) and the registration params. A rewritten
  ``versions.imports`` (which the safe loader enforces) or params no longer
  match. Base64 keeps a v2 signature within the 64 characters of the
  existing column, which SQLite could only widen by rebuilding the table.
* **v3** (``v3:``): v2's fields plus the recorded
  environment and input signature, which promotion gates
  (``environment_matches``) and input checks trust. v2 signatures stay valid:
  their environment and input signature are the catalog's word.
* **v4** (``v4:``, written since): v3's fields plus the version's BLAKE3
  (``versions.blake3``), the fast digest loads verify instead of the
  SHA-256. It must be covered: otherwise someone who can write the catalog
  and the store could set the BLAKE3 of swapped bytes and have them load.
  Under an older signature a keyed load ignores the column and verifies the
  SHA-256 (:func:`covers_blake3`).
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
from collections.abc import Iterable, Mapping
from typing import Any, Literal

from registry.domain import ModelVersion
from registry.errors import InvalidKey

KEY_VARIABLE = "MODELSHELF_SIGNING_KEY"
_DOMAIN = b"modelshelf-signature-v1"
_DOMAIN_V2 = b"modelshelf-signature-v2"
_DOMAIN_V3 = b"modelshelf-signature-v3"
_DOMAIN_V4 = b"modelshelf-signature-v4"
V2_PREFIX = "v2:"
V3_PREFIX = "v3:"
V4_PREFIX = "v4:"
#: The prefixes of signatures made by code that scans import inventories (v2 and later).
SCANNED_PREFIXES = (V2_PREFIX, V3_PREFIX, V4_PREFIX)

#: What checking a version's signature found.
SignatureState = Literal["valid", "legacy", "missing", "invalid"]


def signing_key(key: str | bytes | None) -> bytes | None:
    """The key to use: the argument, else ``$MODELSHELF_SIGNING_KEY``, else ``None`` (no signing)."""
    if key is None:
        key = os.environ.get(KEY_VARIABLE) or None
    if key is None:
        return None
    if isinstance(key, str):
        key = key.encode()
    if not isinstance(key, bytes) or len(key) < 16:
        raise InvalidKey("the signing key must be a str or bytes of at least 16 bytes; use a random secret")
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


def _message(domain: bytes, fields: dict[str, Any]) -> bytes:
    text = json.dumps(fields, sort_keys=True, separators=(",", ":"), ensure_ascii=False)
    return domain + b"\n" + text.encode()


def _v2_fields(
    name: str,
    version: int,
    format: str,
    checksum: str,
    size: int,
    imports: Iterable[str] | None,
    params: Mapping[str, Any],
) -> dict[str, Any]:
    return {
        "name": name,
        "version": version,
        "format": format,
        "checksum": checksum,
        "size": size,
        "imports": None if imports is None else sorted(set(imports)),
        "params": params,
    }


def _mac(key: bytes, prefix: str, message: bytes) -> str:
    return prefix + base64.urlsafe_b64encode(hmac.new(key, message, hashlib.sha256).digest()).rstrip(b"=").decode()


def sign_version(
    key: bytes,
    name: str,
    version: int,
    format: str,
    checksum: str,
    size: int,
    imports: Iterable[str] | None,
    params: Mapping[str, Any],
    *,
    environment: Mapping[str, Any] | None = None,
    input_signature: Mapping[str, Any] | None = None,
    blake3: str | None = None,
    generation: int = 4,
) -> str:
    """The signature of one version: identity, bytes, import inventory and params, (v3) environment and input,
    and (v4) the BLAKE3 fast digest.

    ``generation=2`` and ``3`` give the signatures older registrations carry, to check them.
    """
    fields = _v2_fields(name, version, format, checksum, size, imports, params)
    if generation == 2:
        return _mac(key, V2_PREFIX, _message(_DOMAIN_V2, fields))
    if generation not in (3, 4):
        raise ValueError(f"unknown signature generation {generation!r}")
    fields = {**fields, "environment": dict(environment or {}), "input_signature": input_signature}
    if generation == 3:
        return _mac(key, V3_PREFIX, _message(_DOMAIN_V3, fields))
    return _mac(key, V4_PREFIX, _message(_DOMAIN_V4, {**fields, "blake3": blake3}))


def check_version(
    key: bytes,
    signature: str | None,
    name: str,
    version: int,
    format: str,
    checksum: str,
    size: int,
    imports: Iterable[str] | None,
    params: Mapping[str, Any],
    *,
    environment: Mapping[str, Any] | None = None,
    input_signature: Mapping[str, Any] | None = None,
    blake3: str | None = None,
) -> SignatureState:
    """``valid`` (v4, v3 or v2, matching), ``legacy`` (a matching v1), ``missing`` or ``invalid``."""
    if signature is None:
        return "missing"
    for prefix, generation in ((V4_PREFIX, 4), (V3_PREFIX, 3), (V2_PREFIX, 2)):
        if signature.startswith(prefix):
            expected = sign_version(
                key,
                name,
                version,
                format,
                checksum,
                size,
                imports,
                params,
                environment=environment,
                input_signature=input_signature,
                blake3=blake3,
                generation=generation,
            )
            return "valid" if hmac.compare_digest(signature, expected) else "invalid"
    return "legacy" if is_valid(key, signature, name, version, format, checksum) else "invalid"


def check_model_version(key: bytes, mv: ModelVersion) -> SignatureState:
    """:func:`check_version` for what the catalog says of ``mv``: the one way every reader asks."""
    return check_version(
        key,
        mv.hmac,
        mv.name,
        mv.version,
        mv.format,
        mv.checksum,
        mv.size,
        mv.imports,
        mv.params,
        environment=mv.environment,
        input_signature=None if mv.input_signature is None else mv.input_signature.to_json(),
        blake3=mv.blake3,
    )


def covers_environment(signature: str | None) -> bool:
    """Whether a (valid) signature binds the recorded environment and input signature (v3 and later)."""
    return bool(signature) and str(signature).startswith((V3_PREFIX, V4_PREFIX))


def covers_blake3(signature: str | None) -> bool:
    """Whether a (valid) signature binds the version's BLAKE3 (v4), so a keyed load may verify with it."""
    return bool(signature) and str(signature).startswith(V4_PREFIX)


_DOMAIN_CANARY = b"modelshelf-canary-v1"
CANARY_PREFIX = "c1:"


def _canary_message(name: str, checksum: str, canary: Mapping[str, Any]) -> bytes:
    text = json.dumps(
        {"name": name, "checksum": checksum, "canary": canary},
        sort_keys=True,
        separators=(",", ":"),
        ensure_ascii=False,
    )
    return _DOMAIN_CANARY + b"\n" + text.encode()


def sign_canary(key: bytes, name: str, checksum: str, canary: Mapping[str, Any]) -> str:
    """The MAC that binds a canary (its JSON form) to the model's name and the checksum of its bytes.

    Not to the version number: the canary is a fact about those bytes, and
    copying it onto another version of the same bytes claims nothing false.
    A canary edited by SQL, or moved onto other bytes, no longer matches.
    """
    mac = hmac.new(key, _canary_message(name, checksum, canary), hashlib.sha256)
    return CANARY_PREFIX + base64.urlsafe_b64encode(mac.digest()).rstrip(b"=").decode()


def canary_is_valid(key: bytes, signature: str | None, name: str, checksum: str, canary: Mapping[str, Any]) -> bool:
    """Whether ``signature`` is the one ``key`` gives this canary of these bytes (constant-time comparison)."""
    if signature is None:
        return False
    return hmac.compare_digest(signature, sign_canary(key, name, checksum, canary))
