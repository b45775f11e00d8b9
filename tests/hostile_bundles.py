"""Hostile bundles, built as real files: what someone who can hand us a tar could make.

Each builder writes a file and returns its path. Sparse members are written
by hand (``tarfile`` reads GNU sparse members but cannot write them): a
header of type ``S`` whose map declares one small region at the end of a
huge file, so a tar of a few KiB expands to gigabytes when read.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import Any

BLOCK = tarfile.BLOCKSIZE


def members(bundle: Path) -> list[tuple[tarfile.TarInfo, bytes]]:
    """Every member of a (valid) bundle with its bytes."""
    with tarfile.open(bundle) as tar:
        return [(m, tar.extractfile(m).read()) for m in tar.getmembers()]  # type: ignore[union-attr]


def manifest_of(bundle: Path) -> dict[str, Any]:
    return json.loads(dict((m.name, data) for m, data in members(bundle))["manifest.json"])


def _regular(name: str, data: bytes) -> bytes:
    info = tarfile.TarInfo(name)
    info.size = len(data)
    padding = (-len(data)) % BLOCK
    return info.tobuf(tarfile.GNU_FORMAT) + data + b"\0" * padding


def _end() -> bytes:
    return b"\0" * (2 * BLOCK)


def write_tar(out: Path, parts: list[bytes]) -> Path:
    out.write_bytes(b"".join(parts) + _end())
    return out


def rewritten(
    bundle: Path, out: Path, edit: Callable[[dict[str, Any]], None] | None = None, *, drop_signature: bool = True
) -> Path:
    """The bundle with its manifest passed through ``edit`` (the blobs unchanged, the signature dropped)."""
    parts = []
    for member, data in members(bundle):
        if member.name == "manifest.sig" and drop_signature:
            continue
        if member.name == "manifest.json" and edit is not None:
            manifest = json.loads(data)
            edit(manifest)
            data = json.dumps(manifest).encode()
        parts.append(_regular(member.name, data))
    return write_tar(out, parts)


def sparse_header(name: str, declared: int, data: bytes) -> bytes:
    """An old-GNU sparse member (type ``S``): ``data`` stored, ``declared`` bytes when read (zeros, then data)."""
    info = tarfile.TarInfo(name)
    info.type = tarfile.GNUTYPE_SPARSE
    info.size = len(data)
    header = bytearray(info.tobuf(tarfile.GNU_FORMAT)[:BLOCK])
    # the sparse map of the old GNU header: (offset, numbytes) pairs at 386, isextended at 482, realsize at 483
    header[386:398] = tarfile.itn(declared - len(data), 12, tarfile.GNU_FORMAT)
    header[398:410] = tarfile.itn(len(data), 12, tarfile.GNU_FORMAT)
    header[482] = 0
    header[483:495] = tarfile.itn(declared, 12, tarfile.GNU_FORMAT)
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return bytes(header) + data + b"\0" * ((-len(data)) % BLOCK)


def lying_header(name: str, declared: int, data: bytes) -> bytes:
    """A regular member whose header declares ``declared`` bytes while only ``data`` follows (a cut-off file)."""
    info = tarfile.TarInfo(name)
    info.size = declared
    return info.tobuf(tarfile.GNU_FORMAT) + data + b"\0" * ((-len(data)) % BLOCK)


def sparse_manifest(out: Path, declared: int) -> Path:
    """A tar of a few KiB whose ``manifest.json`` expands to ``declared`` bytes when read."""
    return write_tar(out, [sparse_header("manifest.json", declared, b"{}")])


def sparse_blob(bundle: Path, out: Path, declared: int) -> Path:
    """The bundle's first version made to claim a blob of ``declared`` bytes, stored as a sparse member.

    Its manifest lists that size and the digest of the bytes the member
    expands to is not what the manifest says: only hashing all of them
    would tell, after writing them.
    """
    fake = hashlib.sha256(b"never written").hexdigest()
    manifest = manifest_of(bundle)
    entry = manifest["versions"][0]
    entry["checksum"], entry["size"] = f"sha256:{fake}", declared
    manifest["versions"] = [entry]
    return write_tar(
        out, [_regular("manifest.json", json.dumps(manifest).encode()), sparse_header(f"blobs/{fake}", declared, b"x")]
    )


def huge_declared_blob(bundle: Path, out: Path, declared: int) -> Path:
    """As :func:`sparse_blob`, but a regular member whose header claims ``declared`` bytes the file does not hold."""
    fake = hashlib.sha256(b"never written").hexdigest()
    manifest = manifest_of(bundle)
    entry = manifest["versions"][0]
    entry["checksum"], entry["size"] = f"sha256:{fake}", declared
    manifest["versions"] = [entry]
    return write_tar(
        out, [_regular("manifest.json", json.dumps(manifest).encode()), lying_header(f"blobs/{fake}", declared, b"x")]
    )


def with_link(bundle: Path, out: Path, kind: bytes) -> Path:
    """The bundle with its first blob replaced by a symlink or hardlink member of the same name."""
    first = manifest_of(bundle)["versions"][0]["checksum"].removeprefix("sha256:")
    parts = []
    for member, data in members(bundle):
        if member.name == f"blobs/{first}":
            link = tarfile.TarInfo(member.name)
            link.type = kind
            link.linkname = "/etc/passwd" if kind == tarfile.SYMTYPE else "manifest.json"
            parts.append(link.tobuf(tarfile.GNU_FORMAT))
        elif member.name != "manifest.sig":
            parts.append(_regular(member.name, data))
    return write_tar(out, parts)


def pax_records(records: dict[str, str]) -> bytes:
    """Pax records as a header's data: ``"%d %s=%s\n"``, the length counting itself."""
    out = []
    for key, value in records.items():
        body = f" {key}={value}\n"
        length = len(body) + len(str(len(body)))
        length = len(body) + len(str(length))
        out.append(f"{length}{body}")
    return "".join(out).encode()


def with_pax_header(out: Path, data: bytes, kind: bytes = tarfile.XHDTYPE, member: bytes = b"{}") -> Path:
    """A tar of one pax header (extended ``x`` or global ``g``) holding ``data``, then a manifest member."""
    header = tarfile.TarInfo("././@PaxHeader")
    header.type = kind
    header.size = len(data)
    padding = b"\0" * ((-len(data)) % BLOCK)
    return write_tar(out, [header.tobuf(tarfile.USTAR_FORMAT) + data + padding, _regular("manifest.json", member)])


def negative_size(out: Path) -> Path:
    """A member whose size field, in base-256, is negative (checksum right)."""
    header = bytearray(tarfile.TarInfo("manifest.json").tobuf(tarfile.GNU_FORMAT)[:BLOCK])
    header[124:136] = b"\xff" * 11 + b"\x00"
    header[148:156] = b" " * 8
    header[148:156] = b"%06o\0 " % sum(header)
    return write_tar(out, [bytes(header)])


def sizes_in_pax_headers(bundle: Path, out: Path) -> Path:
    """The bundle rewritten as an export of blobs past 8 GiB is: each size in a pax header, the ustar field 0."""
    parts = []
    for member, data in members(bundle):
        records = pax_records({"size": str(len(data))})
        pax = tarfile.TarInfo("././@PaxHeader")
        pax.type = tarfile.XHDTYPE
        pax.size = len(records)
        plain = tarfile.TarInfo(member.name)
        plain.size = 0
        parts.append(pax.tobuf(tarfile.USTAR_FORMAT) + records + b"\0" * ((-len(records)) % BLOCK))
        parts.append(plain.tobuf(tarfile.USTAR_FORMAT) + data + b"\0" * ((-len(data)) % BLOCK))
    return write_tar(out, parts)


def many_members(out: Path, count: int) -> Path:
    return write_tar(out, [_regular(f"blobs/{i}", b"") for i in range(count)])


def truncated(bundle: Path, out: Path, keep: int) -> Path:
    out.write_bytes(bundle.read_bytes()[:keep])
    return out


def gzipped(bundle: Path, out: Path) -> Path:
    out.write_bytes(gzip.compress(bundle.read_bytes()))
    return out


def text_file(out: Path, data: bytes = b"just some notes\n") -> Path:
    out.write_bytes(data)
    return out


def tar_bytes(parts: list[bytes]) -> io.BytesIO:
    return io.BytesIO(b"".join(parts) + _end())
