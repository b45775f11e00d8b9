"""Bundles: moving versions between registries as one tar file (air-gapped transfer).

A bundle is an uncompressed tar holding ``manifest.json`` (for each version:
name, source version, checksum, size, format, params, tags, description,
environment, imports, lineage, input signature, creation time and full
metric history) and one member
``blobs/<digest>`` per distinct artifact.

Importing is all or nothing: the tar's structure and every field of the
manifest are checked first (:mod:`registry.bundles.checks`,
:mod:`registry.bundles.manifest`), then every blob is streamed into the
target store, exactly its declared size, and hashed on the way; if any
digest differs from the manifest the bundle is refused before a single
version is recorded. Versions get new numbers in
the target (the mapping is returned), keep their history and tags, and are
tagged ``modelshelf.imported-from`` with their origin, so importing the same
bundle again finds them and records nothing twice. Aliases are not carried
over: promoting is a decision for the target registry. Nor is a lineage's
parent, which names a version of the source registry; the origin tag keeps
the way back.

Signed bundles (:mod:`registry.trust.keys`): a registry with a bundle key signs
the exact manifest bytes it exports and adds the member ``manifest.sig``.
An import reads the manifest and its signature before believing anything
in either, checks the signature, and goes on only if the signer's public
key is trusted, or if the caller said ``allow_unsigned`` (for an unsigned
bundle or an unknown signer; never for a signature that does not match).
Then the tar must hold exactly the manifest, the signature and one blob
per digest the manifest lists, each of the listed size, and every blob is
hashed against the now authenticated manifest. So a bundle whose blob was
replaced and whose manifest was rewritten to the new digest is refused, and
the target's HMAC signing key never signs bytes nobody vouched for. Who
signed the bundle, or who accepted it unsigned, is kept in each imported
version's register event (``reg.events()``, ``modelshelf log``).
"""

from __future__ import annotations

import io
import json
import os
import tarfile
from collections.abc import Iterable
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from typing import IO, TYPE_CHECKING, Any

from registry.bundles.checks import BUNDLE_KIND, BUNDLE_VERSION, MANIFEST, SIGNATURE, check_bundle, open_bundle
from registry.bundles.checks import bundle_signer as bundle_signer
from registry.bundles.manifest import ORIGIN_TAG, BundleEntry
from registry.catalog import NewVersion
from registry.domain import MetricPoint, ModelVersion
from registry.errors import CorruptedArtifact, InvalidArgument, InvalidBundle, SerializationError
from registry.facade import Registry
from registry.formats import INHERENTLY_SAFE, NotAPickle, get_format, scan_imports
from registry.store import StagedBlob

_CHUNK = 1024 * 1024

if TYPE_CHECKING:
    from registry.trust.keys import PrivateKeySource, PublicKeySource


@dataclass(frozen=True)
class Imported:
    """What happened to one version of a bundle: its origin and its ref in the target registry."""

    source: str
    target: str
    created: bool
    #: The fingerprint of the key that signed the bundle (``None`` for an unsigned one).
    signer: str | None = None
    #: Whether that key is one the import trusted (``False`` for a bundle accepted with ``allow_unsigned``).
    verified: bool = False


def _entry(mv: ModelVersion, history: list[MetricPoint]) -> dict[str, Any]:
    return {
        "name": mv.name,
        "version": mv.version,
        "checksum": mv.checksum,
        "size": mv.size,
        "format": mv.format,
        "params": mv.params,
        "tags": mv.tags,
        "description": mv.description,
        "environment": mv.environment,
        "imports": None if mv.imports is None else list(mv.imports),
        "lineage": None if mv.lineage is None else {**mv.lineage.to_json(), "parent": None},
        "input_signature": None if mv.input_signature is None else mv.input_signature.to_json(),
        "created_at": mv.created_at.isoformat(),
        "history": [
            {"key": p.key, "value": p.value, "step": p.step, "timestamp": p.timestamp.isoformat()} for p in history
        ],
    }


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def export_bundle(
    reg: Registry,
    refs: list[str],
    path: str | os.PathLike[str],
    *,
    sign_with: PrivateKeySource | None = None,
) -> list[ModelVersion]:
    """Write the versions ``refs`` designate, with their artifacts, to the tar file ``path``.

    The bundle is signed with ``sign_with`` (an Ed25519 private key or the
    path of its PEM file), else with the registry's ``bundle_key``, else
    with the key file ``$MODELSHELF_BUNDLE_KEY`` names; with none of them it
    is unsigned, and an import refuses it unless told ``allow_unsigned``.
    """
    if not refs:
        raise InvalidArgument("name at least one version to export (for example 'iris-knn:3')")
    from registry.trust.keys import bundle_signing_key, sign_manifest  # cryptography: loaded only when bundles move

    key = bundle_signing_key(sign_with if sign_with is not None else reg._bundle_key)
    versions = list({mv.ref: mv for mv in (reg.get(ref) for ref in refs)}.values())
    entries = [_entry(mv, [p for p in reg.metrics_history(mv.name) if p.version == mv.version]) for mv in versions]
    manifest = json.dumps({"kind": BUNDLE_KIND, "version": BUNDLE_VERSION, "versions": entries}, indent=1).encode()
    destination = Path(os.fspath(path))
    temp = destination.with_name(f".{destination.name}.{os.getpid()}.tmp")
    try:
        with tarfile.open(temp, "w", format=tarfile.PAX_FORMAT) as tar:
            _add_member(tar, MANIFEST, manifest)
            if key is not None:
                _add_member(tar, SIGNATURE, sign_manifest(key, manifest))
            written: set[str] = set()
            for mv in versions:
                if mv.digest in written:
                    continue
                with reg.open_artifact(mv.ref) as blob:
                    info = tarfile.TarInfo(f"blobs/{mv.digest}")
                    info.size = mv.size
                    tar.addfile(info, blob)
                written.add(mv.digest)
        os.replace(temp, destination)
    finally:
        temp.unlink(missing_ok=True)
    return versions


def _already_imported(reg: Registry, entry: BundleEntry) -> ModelVersion | None:
    try:
        existing = reg.versions(entry.name)
    except LookupError:
        return None
    for mv in existing:
        if mv.checksum == entry.checksum and mv.tags.get(ORIGIN_TAG) == entry.origin:
            return mv
    return None


def _new_version(
    entry: BundleEntry, staged: StagedBlob, provenance: dict[str, Any], imports: tuple[str, ...] | None
) -> NewVersion:
    """The version to record for one manifest entry (its fields were checked by :mod:`registry.bundles.manifest`).

    ``imports`` is the inventory scanned from the blob itself: the manifest's
    list is the exporter's word (and, from an older registry, a tracer's
    incomplete one), while the safe loader holds the version to this list.
    """
    return NewVersion(
        name=entry.name,
        digest=staged.digest,
        size=staged.size,
        format=entry.format,
        params=entry.params,
        tags=entry.tags,
        description=entry.description,
        environment=entry.environment,
        imports=imports,
        history=entry.history,
        lineage=entry.lineage,
        input_signature=entry.input_signature,
        provenance=provenance,
    )


def import_bundle(
    reg: Registry,
    path: str | os.PathLike[str],
    *,
    trusted_keys: Iterable[PublicKeySource] | None = None,
    allow_unsigned: bool = False,
) -> list[Imported]:
    """Add the versions of the bundle at ``path`` to ``reg``; see the module docstring.

    ``trusted_keys`` are the public keys (files, directories of ``*.pub``
    files, or key objects) whose signatures are accepted; without them,
    those ``$MODELSHELF_TRUSTED_KEYS`` names. An unsigned bundle, or one
    signed by another key, raises :class:`~registry.errors.UntrustedBundle`
    unless ``allow_unsigned``; a signature that does not match always does.
    A file that is not a bundle, or one that is damaged or malformed, raises
    :class:`~registry.errors.InvalidBundle`; in every case nothing is
    recorded or stored.
    """
    source = Path(os.fspath(path))
    if not source.is_file():
        raise InvalidBundle(f"{source} is not a file; give the path of a bundle written by `modelshelf export`")
    results: list[Imported] = []
    actor = reg._catalog.actor
    who = "@".join(part for part in (actor.user, actor.host) if part) or "unknown"
    with open_bundle(source) as tar, ExitStack() as staged_blobs:
        bundle = check_bundle(
            tar, source, trusted_keys=trusted_keys, allow_unsigned=bool(allow_unsigned), accepted_by=who
        )
        signer, verified = bundle.signer, bundle.verified
        staged: dict[str, StagedBlob] = {}
        inventories: dict[str, tuple[str, ...] | None] = {}
        batch = []
        pending = []
        for entry in bundle.entries:  # every field of every entry was checked: only the bytes are left
            existing = _already_imported(reg, entry)
            if existing is not None:
                results.append(Imported(entry.source, existing.ref, False, signer, verified))
                continue
            if entry.digest not in staged:
                member = bundle.blobs[entry.digest]
                content = io.BytesIO()
                blob = staged_blobs.enter_context(
                    reg._store.stage(lambda file, m=member, c=content: _copy(tar, m, file, c, source))
                )
                if blob.digest != entry.digest:
                    raise CorruptedArtifact(
                        f"{source} was altered: the blob of {entry.source} hashes to "
                        f"sha256:{blob.digest}, the manifest says {entry.checksum}; nothing was imported",
                        expected=entry.checksum,
                        actual=f"sha256:{blob.digest}",
                    )
                staged[entry.digest] = blob
                inventories[entry.digest] = _scanned_imports(entry, content)
            blob = staged[entry.digest]
            batch.append((_new_version(entry, blob, bundle.provenance, inventories[blob.digest]), blob))
            pending.append(entry)
        for entry, mv in zip(pending, reg._insert_all(batch), strict=True):  # one transaction
            results.append(Imported(entry.source, mv.ref, True, signer, verified))
    return results


def _copy(tar: tarfile.TarFile, member: tarfile.TarInfo, file: IO[bytes], content: IO[bytes], source: Path) -> None:
    """Stream a blob member into the store, keeping the bytes for the import scan (one read of the tar).

    Exactly the member's declared size is read (checked against the
    manifest and the file's length before this runs); a file that ends
    sooner is refused as truncated. ``content`` keeps the bytes for the
    import scan, which reads a pickle whole: memory is bounded by what the
    file holds, never by what a header claims.
    """
    try:
        stream = tar.extractfile(member)
        remaining = member.size
        while remaining and stream is not None and (chunk := stream.read(min(_CHUNK, remaining))):
            file.write(chunk)
            content.write(chunk)
            remaining -= len(chunk)
    except (tarfile.TarError, EOFError) as exc:
        raise InvalidBundle(
            f"{source} is not a modelshelf bundle (it is truncated inside {member.name}: {exc})"
        ) from None
    if remaining:
        raise InvalidBundle(f"{source} is not a modelshelf bundle (it is truncated inside {member.name})")


def _scanned_imports(entry: BundleEntry, content: IO[bytes]) -> tuple[str, ...] | None:
    """The globals a blob imports, read by the scanner; ``None`` for bytes that are not a pickle of its format.

    A blob that begins as a pickle but cannot be read to its end may still be
    run in part by CPython's unpickler: it is refused (see
    ``registry.formats.filecheck.scanned_imports``), so no imported version hides from
    ``audit --deny`` behind a missing inventory.
    """
    content.seek(0)
    try:
        fmt = get_format(entry.format)
    except ValueError:
        return None
    try:
        return scan_imports(fmt, content)
    except (NotAPickle, ValueError):
        return None
    except SerializationError as exc:
        if fmt.name in INHERENTLY_SAFE:
            return None
        raise SerializationError(
            f"the blob of {entry.source} begins as a {fmt.name} file but cannot be "
            f"read to its end ({exc}); its imports cannot be recorded, so nothing was imported"
        ) from exc
