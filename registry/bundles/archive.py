"""Writing a bundle's tar and reading its blobs back: the bytes of the format, not the recording of versions.

A bundle is an uncompressed PAX tar holding ``manifest.json`` (one entry per
version: :func:`manifest_entry`), ``manifest.sig`` when it is signed, and one
member ``blobs/<digest>`` per distinct artifact. :func:`write_bundle` writes
it to a temporary name beside the destination and renames it into place, so
a reader never sees half a bundle. On import, :func:`copy_blob` streams one
blob member into the store exactly its declared size, and
:func:`scanned_imports` reads the globals its bytes import with the scanner
that runs nothing: the registry records versions from those, never from the
exporter's word alone.
"""

from __future__ import annotations

import io
import json
import tarfile
from collections.abc import Callable, Iterable
from contextlib import AbstractContextManager
from pathlib import Path
from typing import IO, Any

from registry.bundles.checks import BUNDLE_KIND, BUNDLE_VERSION, MANIFEST, SIGNATURE
from registry.bundles.manifest import BundleEntry
from registry.domain import Canary, MetricPoint, ModelVersion
from registry.errors import InvalidBundle, SerializationError
from registry.formats import INHERENTLY_SAFE, NotAPickle, get_format, scan_imports
from registry.outputs import replacing

_CHUNK = 1024 * 1024

#: Opens one version's verified artifact as a stream (``Registry.open_artifact``).
OpenArtifact = Callable[[str], AbstractContextManager[io.BufferedIOBase]]


def manifest_entry(mv: ModelVersion, history: list[MetricPoint], canary: Canary | None = None) -> dict[str, Any]:
    """The manifest entry of one exported version: every field an import records, its metric history and canary.

    The canary travels as its JSON (rows, inputs, outputs), never its MAC:
    the importer MACs it under its own key, as it signs the version.
    """
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
        "canary": None if canary is None else canary.to_json(),
        "created_at": mv.created_at.isoformat(),
        "history": [
            {"key": p.key, "value": p.value, "step": p.step, "timestamp": p.timestamp.isoformat()} for p in history
        ],
    }


def manifest_bytes(entries: list[dict[str, Any]]) -> bytes:
    """The exact bytes of ``manifest.json`` (what a bundle key signs)."""
    return json.dumps({"kind": BUNDLE_KIND, "version": BUNDLE_VERSION, "versions": entries}, indent=1).encode()


def _add_member(tar: tarfile.TarFile, name: str, data: bytes) -> None:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    tar.addfile(info, io.BytesIO(data))


def write_bundle(
    destination: Path,
    manifest: bytes,
    signature: bytes | None,
    versions: Iterable[ModelVersion],
    open_artifact: OpenArtifact,
) -> None:
    """Write the tar of ``manifest``, its ``signature`` and one blob per distinct digest of ``versions``.

    The file appears at ``destination`` only when complete (written beside
    it under a process-unique name, then renamed, by
    :func:`registry.outputs.replacing`); on any error that temporary file is
    removed, and a destination that cannot be written (a missing directory,
    a read-only mount) is an :class:`InvalidPath` naming it.
    """
    with (
        replacing(destination, what="the bundle") as file,
        tarfile.open(fileobj=file, mode="w", format=tarfile.PAX_FORMAT) as tar,
    ):
        _add_member(tar, MANIFEST, manifest)
        if signature is not None:
            _add_member(tar, SIGNATURE, signature)
        written: set[str] = set()
        for mv in versions:
            if mv.digest in written:
                continue
            with open_artifact(mv.ref) as blob:
                info = tarfile.TarInfo(f"blobs/{mv.digest}")
                info.size = mv.size
                tar.addfile(info, blob)
            written.add(mv.digest)


def copy_blob(tar: tarfile.TarFile, member: tarfile.TarInfo, file: IO[bytes], content: IO[bytes], source: Path) -> None:
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


def scanned_imports(entry: BundleEntry, content: IO[bytes]) -> tuple[str, ...] | None:
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
