"""What a bundle must be before anything in it is believed: a signed manifest, and exactly its blobs.

The checks run in this order, each before anything the next one reads is
trusted:

1. the tar has one member per name, each a regular file (``tarfile``
   answers a name with its *last* member, so a duplicate could show one
   manifest to a checker and another to an importer);
2. the signature in ``manifest.sig`` matches the exact bytes of
   ``manifest.json`` (:func:`registry.keys.check_signature`), and its
   signer is trusted, or the caller accepted an unverified bundle;
3. only then is the manifest parsed, and the tar must hold one blob of the
   listed size per digest it lists, and nothing else.

The blobs themselves are hashed against the manifest while the importer
stages them (:func:`registry.transfer.import_bundle`).
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from registry.domain import CHECKSUM_PREFIX
from registry.errors import CorruptedArtifact, RegistryError, UntrustedBundle
from registry.store import check_digest

if TYPE_CHECKING:
    from registry.keys import PublicKeySource

BUNDLE_KIND = "modelshelf-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
#: A manifest is read whole before it can be checked: bound what a hostile one can make us hold.
_MAX_MANIFEST = 256 * 1024 * 1024
_MAX_SIGNATURE = 64 * 1024


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle that passed every check: its manifest entries, the blob member of each digest, who vouched."""

    entries: list[dict[str, Any]]
    blobs: dict[str, tarfile.TarInfo]
    #: The fingerprint of the key that signed the manifest (``None`` if unsigned).
    signer: str | None
    #: Whether that key is trusted (``False`` when the caller accepted the bundle unverified).
    verified: bool
    #: What each imported version's register event keeps of this.
    provenance: dict[str, Any]


def check_bundle(
    tar: tarfile.TarFile,
    path: Path,
    *,
    trusted_keys: Iterable[PublicKeySource] | None,
    allow_unsigned: bool,
    accepted_by: str,
) -> CheckedBundle:
    """Run the checks of the module docstring; ``accepted_by`` (``user@host``) is recorded if unverified.

    Raises :class:`UntrustedBundle` for a bundle nobody trusted vouches for or
    that was altered after signing, :class:`CorruptedArtifact` for a blob of
    another size than listed, and :class:`RegistryError` for what is not a bundle.
    """
    members = _members(tar, path)
    if MANIFEST not in members:
        raise RegistryError(f"{path} is not a modelshelf bundle (it has no {MANIFEST})")
    manifest = _read_member(tar, members[MANIFEST], _MAX_MANIFEST, path)
    signer, verified, provenance = _authenticate(
        path, tar, members, manifest, trusted_keys, allow_unsigned, accepted_by
    )
    entries = _parse_manifest(manifest, path)  # believed from here on: its signer vouched for it
    return CheckedBundle(entries, _blob_members(path, members, entries), signer, verified, provenance)


def open_bundle(path: Path) -> tarfile.TarFile:
    """The tar at ``path``, or a :class:`RegistryError` saying it is not one."""
    try:
        return tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as exc:
        raise RegistryError(f"{path} is not a modelshelf bundle (not a tar file: {exc})") from None


def _members(tar: tarfile.TarFile, path: Path) -> dict[str, tarfile.TarInfo]:
    """Every member by name; two members of one name, or anything but regular files, are refused.

    ``tarfile`` answers a name with the *last* member of that name, so a
    duplicate could show one manifest to a checker and another to an importer.
    """
    members: dict[str, tarfile.TarInfo] = {}
    for member in tar.getmembers():
        if member.name in members or not member.isfile():
            what = "two members named" if member.name in members else "a member that is not a regular file,"
            raise UntrustedBundle(f"{path} holds {what} {member.name!r}: it was altered; nothing was imported")
        members[member.name] = member
    return members


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int, path: Path) -> bytes:
    if member.size > limit:
        raise RegistryError(f"{path}: {member.name} is {member.size} bytes, more than {limit}; nothing was imported")
    stream = tar.extractfile(member)
    return b"" if stream is None else stream.read(limit)


def bundle_signer(path: str | os.PathLike[str]) -> str | None:
    """The fingerprint of the key the bundle at ``path`` names as its signer, unchecked; ``None`` if unsigned.

    For display (what `modelshelf export` wrote); an import checks the signature itself.
    """
    source = Path(os.fspath(path))
    with open_bundle(source) as tar:
        members = _members(tar, source)
        if SIGNATURE not in members:
            return None
        try:
            signer = json.loads(_read_member(tar, members[SIGNATURE], _MAX_SIGNATURE, source)).get("signer")
        except (ValueError, AttributeError):
            return None
    return signer if isinstance(signer, str) else None


def _authenticate(
    path: Path,
    tar: tarfile.TarFile,
    members: dict[str, tarfile.TarInfo],
    manifest: bytes,
    trusted_keys: Iterable[PublicKeySource] | None,
    allow_unsigned: bool,
    accepted_by: str,
) -> tuple[str | None, bool, dict[str, Any]]:
    """Who vouches for ``manifest``: (signer, whether trusted, what the register events keep of it).

    A signature that does not match is refused even with ``allow_unsigned``:
    that flag accepts a bundle nobody we know vouches for, never one that was
    changed after someone did.
    """
    from registry.keys import TRUSTED_KEYS_VARIABLE, check_signature, trusted_public_keys  # cryptography: lazily

    trusted = trusted_public_keys(trusted_keys)
    signer = None
    if SIGNATURE in members:
        signer = check_signature(_read_member(tar, members[SIGNATURE], _MAX_SIGNATURE, path), manifest, str(path))
        if signer in trusted:
            return signer, True, {"bundle": {"signer": signer}}
    if not allow_unsigned:
        accept = (
            "or, if you accept the risk, import with --allow-unsigned (allow_unsigned=True), which the audit "
            "trail records with your name"
        )
        if signer is None:
            raise UntrustedBundle(
                f"{path} is unsigned: nobody vouches for its bytes, and nothing was imported. Ask its exporter for a "
                f"signed one (`modelshelf export --sign-key KEY`), {accept}"
            )
        raise UntrustedBundle(
            f"{path} is signed by {signer}, a key this import does not trust; nothing was imported. If it is the "
            f"exporter's key, trust it with --trust KEY.pub (trusted_keys=[...], or ${TRUSTED_KEYS_VARIABLE}), "
            f"{accept}",
            signer=signer,
        )
    return signer, False, {"bundle": {"signer": signer, "accepted_unsigned_by": accepted_by}}


def _parse_manifest(data: bytes, path: Path) -> list[dict[str, Any]]:
    try:
        manifest = json.loads(data)
    except ValueError as exc:
        raise RegistryError(f"{path} is not a modelshelf bundle: {exc}") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != BUNDLE_KIND:
        raise RegistryError(f"{path} is not a modelshelf bundle (no {BUNDLE_KIND} manifest)")
    if manifest.get("version") != BUNDLE_VERSION:
        raise RegistryError(f"{path} is a bundle of version {manifest.get('version')}; upgrade modelshelf to read it")
    entries = manifest.get("versions")
    if not isinstance(entries, list):
        raise RegistryError(f"{path}: the manifest lists no versions")
    for entry in entries:
        if not isinstance(entry, dict) or not {"name", "version", "checksum", "created_at"} <= set(entry):
            raise RegistryError(f"{path}: a manifest entry lacks its name, version, checksum or date")
    return entries


def _blob_members(
    path: Path, members: dict[str, tarfile.TarInfo], entries: list[dict[str, Any]]
) -> dict[str, tarfile.TarInfo]:
    """The blob member of each digest the manifest lists, of the listed size; a member it does not list is refused."""
    blobs: dict[str, tarfile.TarInfo] = {}
    for entry in entries:
        digest = check_digest(str(entry["checksum"]).removeprefix(CHECKSUM_PREFIX))
        member = members.get(f"blobs/{digest}")
        if member is None:
            raise CorruptedArtifact(f"{path} lacks the blob {entry['checksum']}", expected=entry["checksum"])
        if entry.get("size") != member.size:
            raise CorruptedArtifact(
                f"{path} was altered: the blob of {entry['name']}:{entry['version']} is {member.size} bytes, the "
                f"manifest says {entry.get('size')}; nothing was imported",
                expected=entry["checksum"],
            )
        blobs[digest] = member
    unlisted = sorted(set(members) - {MANIFEST, SIGNATURE} - {f"blobs/{digest}" for digest in blobs})
    if unlisted:
        raise UntrustedBundle(
            f"{path} holds {unlisted[0]!r}, which its manifest does not list: it was altered; nothing was imported"
        )
    return blobs
