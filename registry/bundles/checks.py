"""What a bundle must be before anything in it is believed: a signed manifest, and exactly its blobs.

The checks run in this order, each before anything the next one reads is
trusted:

1. the tar has one member per name, each a regular file (``tarfile``
   answers a name with its *last* member, so a duplicate could show one
   manifest to a checker and another to an importer);
2. the signature in ``manifest.sig`` matches the exact bytes of
   ``manifest.json`` (:func:`registry.trust.keys.check_signature`), and its
   signer is trusted, or the caller accepted an unverified bundle;
3. only then is the manifest parsed, and the tar must hold one blob of the
   listed size per digest it lists, and nothing else.

The blobs themselves are hashed against the manifest while the importer
stages them (:meth:`registry.facade.Registry.import_bundle`).

Memory and disk stay bounded whatever the file claims. The file must be
a plain, non-empty tar (a compressed one is refused with what to run: a
bundle is written uncompressed, and reading one through a decompressor
would let a few KiB expand without bound); no member may be sparse (a
sparse header makes a few bytes read back as gigabytes of zeros), and each
member's declared size must be backed by bytes the file holds. The manifest
is read only if its declared size is at most :data:`MAX_MANIFEST`, and its
every field is checked (:mod:`registry.bundles.manifest`) before any blob is
staged; each blob member must be of the size the manifest lists. A file
that is not a tar, is empty or is cut off raises
:class:`~registry.errors.InvalidBundle` saying so.
"""

from __future__ import annotations

import json
import os
import tarfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, BinaryIO, cast

from registry.bundles.headers import check_headers
from registry.bundles.manifest import BundleEntry, check_entries
from registry.errors import CorruptedArtifact, InvalidBundle, UntrustedBundle

if TYPE_CHECKING:
    from registry.trust.keys import PublicKeySource

BUNDLE_KIND = "modelshelf-bundle"
BUNDLE_VERSION = 1
MANIFEST = "manifest.json"
SIGNATURE = "manifest.sig"
#: A manifest is read whole before it can be checked: bound what a hostile one can make us hold.
#: (An export of 10,000 versions with long metric histories stays far below it.)
MAX_MANIFEST = 64 * 1024 * 1024
_MAX_SIGNATURE = 64 * 1024
#: More members than any bundle holds (one per distinct blob, plus two): tarfile keeps each one's header.
MAX_MEMBERS = 100_000
_TAIL_CHUNK = 1024 * 1024
#: The first bytes of the compressed files a bundle might arrive as, and what decompresses each.
_COMPRESSED = {b"\x1f\x8b": "gunzip", b"BZh": "bunzip2", b"\xfd7zXZ\x00": "unxz", b"\x28\xb5\x2f\xfd": "unzstd"}


@dataclass(frozen=True)
class CheckedBundle:
    """A bundle that passed every check: its manifest entries, the blob member of each digest, who vouched."""

    entries: list[BundleEntry]
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
    another size than listed, and :class:`InvalidBundle` for what is not a
    bundle, or one whose structure or manifest no registry could have written.
    """
    members = _members(tar, path)
    if MANIFEST not in members:
        raise InvalidBundle(f"{path} is not a modelshelf bundle (it has no {MANIFEST})")
    manifest = _read_member(tar, members[MANIFEST], MAX_MANIFEST, path)
    signer, verified, provenance = _authenticate(
        path, tar, members, manifest, trusted_keys, allow_unsigned, accepted_by
    )
    entries = check_entries(_parse_manifest(manifest, path), path)  # every field, before anything is staged
    return CheckedBundle(entries, _blob_members(path, members, entries), signer, verified, provenance)


def open_bundle(path: Path) -> tarfile.TarFile:
    """The tar at ``path``, or an :class:`InvalidBundle` saying why it is not one (empty, compressed, not a tar)."""
    try:
        with path.open("rb") as file:
            start = file.read(8)
            if not start:
                raise InvalidBundle(f"{path} is not a modelshelf bundle (it is empty)")
            for magic, tool in _COMPRESSED.items():
                if start.startswith(magic):
                    raise InvalidBundle(
                        f"{path} is not a modelshelf bundle (it is compressed): compressed bundles are not "
                        f"supported: decompress it first ({tool})"
                    )
            check_headers(file, os.fstat(file.fileno()).st_size, path, MAX_MEMBERS)  # before tarfile parses any
    except OSError as exc:
        raise InvalidBundle(f"{path} cannot be read ({exc.strerror or exc})") from None
    try:
        return tarfile.open(path, "r:")
    except (tarfile.TarError, OSError) as exc:
        raise InvalidBundle(f"{path} is not a modelshelf bundle (not a tar file: {exc})") from None


def _members(tar: tarfile.TarFile, path: Path) -> dict[str, tarfile.TarInfo]:
    """Every member by name; duplicates, links, sparse or cut-off members are refused.

    ``tarfile`` answers a name with the *last* member of that name, so a
    duplicate could show one manifest to a checker and another to an importer.
    A member whose declared size runs past the end of the file is refused
    here, before a byte of it is read.
    """
    # tarfile.open(path) reads through the builtin open(); typeshed types ``fileobj`` as a narrower protocol
    end = os.fstat(cast(BinaryIO, tar.fileobj).fileno()).st_size
    members: dict[str, tarfile.TarInfo] = {}
    try:
        for member in tar:
            if len(members) >= MAX_MEMBERS:
                raise InvalidBundle(f"{path} holds more than {MAX_MEMBERS} members, which no bundle does")
            if member.name in members or not member.isfile():
                what = "two members named" if member.name in members else "a member that is not a regular file,"
                raise UntrustedBundle(f"{path} holds {what} {member.name!r}: it was altered; nothing was imported")
            if member.sparse is not None:
                raise InvalidBundle(
                    f"{path} is not a modelshelf bundle (its member {member.name!r} is sparse: "
                    f"{member.size} bytes declared over far fewer stored); nothing was imported"
                )
            if member.offset_data + member.size > end:
                raise InvalidBundle(
                    f"{path} is not a modelshelf bundle (it is truncated: {member.name!r} declares {member.size} "
                    f"bytes, the file ends {max(end - member.offset_data, 0)} bytes into it); nothing was imported"
                )
            members[member.name] = member
    except tarfile.TarError as exc:
        raise InvalidBundle(f"{path} is not a modelshelf bundle (it is truncated or damaged: {exc})") from None
    _check_end(tar, end, path)
    return members


def _check_end(tar: tarfile.TarFile, end: int, path: Path) -> None:
    """Refuse a tar that does not end in its end-of-archive blocks of zeros.

    ``tarfile`` stops silently at a header cut short, so a bundle cut inside
    a member's header would otherwise look like one that lacks that member.
    """
    tail = end - tar.offset
    file = tar.fileobj
    assert file is not None
    file.seek(tar.offset)
    while chunk := file.read(_TAIL_CHUNK):
        if chunk.count(0) != len(chunk):
            raise InvalidBundle(
                f"{path} is not a modelshelf bundle (it is truncated or damaged at byte {tar.offset}: "
                "a member's header is cut off or garbled)"
            )
    if tail < 2 * tarfile.BLOCKSIZE:
        raise InvalidBundle(
            f"{path} is not a modelshelf bundle (it is truncated: its end-of-archive marker is missing)"
        )


def _read_member(tar: tarfile.TarFile, member: tarfile.TarInfo, limit: int, path: Path) -> bytes:
    """The bytes of a small member, refused on its declared size before any is read."""
    if member.size > limit:
        raise InvalidBundle(
            f"{path}: its {member.name} declares {member.size} bytes, more than the {limit} a bundle's may hold; "
            "nothing was imported"
        )
    try:
        stream = tar.extractfile(member)
        data = b"" if stream is None else stream.read(limit)
    except (tarfile.TarError, OSError) as exc:
        raise InvalidBundle(f"{path} is not a modelshelf bundle (it is truncated or damaged: {exc})") from None
    if len(data) != member.size:
        raise InvalidBundle(f"{path} is not a modelshelf bundle (it is truncated inside {member.name})")
    return data


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
    from registry.trust.keys import TRUSTED_KEYS_VARIABLE, check_signature, trusted_public_keys  # cryptography: lazily

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
    except (ValueError, RecursionError) as exc:
        reason = "nested too deeply" if isinstance(exc, RecursionError) else str(exc)
        raise InvalidBundle(f"{path} is not a modelshelf bundle (its {MANIFEST} is not JSON: {reason})") from None
    if not isinstance(manifest, dict) or manifest.get("kind") != BUNDLE_KIND:
        raise InvalidBundle(f"{path} is not a modelshelf bundle (no {BUNDLE_KIND} manifest)")
    if manifest.get("version") != BUNDLE_VERSION:
        raise InvalidBundle(f"{path} is a bundle of version {manifest.get('version')!r}; upgrade modelshelf to read it")
    entries = manifest.get("versions")
    if not isinstance(entries, list):
        raise InvalidBundle(f"{path}: the manifest lists no versions")
    for entry in entries:
        if not isinstance(entry, dict) or not {"name", "version", "checksum", "created_at"} <= set(entry):
            raise InvalidBundle(f"{path}: a manifest entry lacks its name, version, checksum or date")
    return entries


def _blob_members(
    path: Path, members: dict[str, tarfile.TarInfo], entries: list[BundleEntry]
) -> dict[str, tarfile.TarInfo]:
    """The blob member of each digest the manifest lists, of the listed size; a member it does not list is refused.

    The sizes are compared before a byte is staged, so a member can make the
    importer write no more than the manifest says, and the file holds.
    """
    blobs: dict[str, tarfile.TarInfo] = {}
    for entry in entries:
        member = members.get(f"blobs/{entry.digest}")
        if member is None:
            raise CorruptedArtifact(f"{path} lacks the blob {entry.checksum}", expected=entry.checksum)
        if entry.size != member.size:
            raise CorruptedArtifact(
                f"{path} was altered: the blob of {entry.source} is {member.size} bytes, the "
                f"manifest says {entry.size}; nothing was imported",
                expected=entry.checksum,
            )
        blobs[entry.digest] = member
    unlisted = sorted(set(members) - {MANIFEST, SIGNATURE} - {f"blobs/{digest}" for digest in blobs})
    if unlisted:
        raise UntrustedBundle(
            f"{path} holds {unlisted[0]!r}, which its manifest does not list: it was altered; nothing was imported"
        )
    return blobs
