"""A walk over a bundle's raw 512-byte tar headers, before ``tarfile`` parses any of them.

``tarfile`` reads an extended header (a pax ``x`` header, a GNU long name
``L`` or long link ``K``) whole and turns a pax one into a dict of its
records: a 29 MiB tar of one pax header made of short records made it hold
545 MiB for 7 s before the first member was seen. An export writes at most
a small pax header per member (a long name, a size past 8 GiB), so this
walk, which reads only headers, refuses any extended header over
:data:`MAX_EXTENDED_HEADER`, a global pax header (it would change every
member after it), sparse members in either form, and more members than
``max_members``, all before ``tarfile`` holds any of it.

The walk follows a header's size (or its pax ``size`` record) to the next
header exactly as ``tarfile`` does, and stops at the end-of-archive blocks,
at a header whose checksum is wrong (``tarfile`` refuses that one itself,
with its reason) or at a member that is not a regular file (refused by
:func:`registry.bundles.checks.check_bundle` when ``tarfile`` reaches it).
"""

from __future__ import annotations

import re
import tarfile
from collections.abc import Callable
from pathlib import Path
from typing import IO

from registry.errors import InvalidBundle

# tarfile's header helpers are undocumented, so typeshed leaves them out: typed here, once.
_nti: Callable[[bytes], int] = vars(tarfile)["nti"]
_calc_chksums: Callable[[bytes], tuple[int, int]] = vars(tarfile)["calc_chksums"]

BLOCK = tarfile.BLOCKSIZE
#: Far above the pax header of any exported member (a path of 71 characters, maybe a size).
MAX_EXTENDED_HEADER = 64 * 1024
_EXTENDED = {tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE, tarfile.GNUTYPE_LONGNAME, tarfile.GNUTYPE_LONGLINK}
_REFUSED = {tarfile.XGLTYPE: "a global pax header", tarfile.GNUTYPE_SPARSE: "a sparse member"}
#: One pax record, ``"%d %s=%s\n" % (length, keyword, value)``, matched as ``tarfile`` matches it.
_PAX_RECORD = re.compile(rb"(\d+) ([^=]+)=")


def check_headers(file: IO[bytes], end: int, path: Path, max_members: int) -> None:
    """Walk the headers of the tar in ``file`` (``end`` bytes long); raise :class:`InvalidBundle` on the above."""
    offset, members, pax_size, after_pax = 0, 0, None, False
    while offset + BLOCK <= end:
        file.seek(offset)
        block = file.read(BLOCK)
        if block.count(0) == BLOCK or not _checksum_ok(block):
            return  # the end, or a header tarfile refuses with its own reason
        kind, size, where = block[156:157], _size(block), f"at byte {offset}"
        if size is None:
            return  # tarfile refuses a size it cannot read
        if size < 0:  # base-256 allows it; followed, it would walk backwards
            raise InvalidBundle(f"{path} is not a modelshelf bundle (a member of negative size {where})")
        if kind in _REFUSED:
            raise InvalidBundle(f"{path} is not a modelshelf bundle (it holds {_REFUSED[kind]} {where})")
        if kind in _EXTENDED:
            if size > MAX_EXTENDED_HEADER:
                raise InvalidBundle(
                    f"{path} is not a modelshelf bundle (it holds an extended tar header of {size} bytes {where}, "
                    f"more than the {MAX_EXTENDED_HEADER} an export writes)"
                )
            if kind in (tarfile.XHDTYPE, tarfile.SOLARIS_XHDTYPE):
                if after_pax:
                    raise InvalidBundle(f"{path} is not a modelshelf bundle (two pax headers for one member {where})")
                file.seek(offset + BLOCK)
                pax_size, after_pax = _pax_size(file.read(size), path, where), True
            offset += BLOCK + _padded(size)
            continue
        if kind not in tarfile.REGULAR_TYPES:
            return  # a link, directory or unknown type: check_bundle refuses it when tarfile yields it
        members += 1
        if members > max_members:
            raise InvalidBundle(f"{path} holds more than {max_members} members, which no bundle does")
        offset += BLOCK + _padded(size if pax_size is None else pax_size)
        pax_size, after_pax = None, False


def _checksum_ok(block: bytes) -> bool:
    try:
        return _nti(block[148:156]) in _calc_chksums(block)
    except tarfile.HeaderError:
        return False


def _size(block: bytes) -> int | None:
    try:
        return _nti(block[124:136])
    except tarfile.HeaderError:
        return None


def _padded(size: int) -> int:
    return -(-size // BLOCK) * BLOCK


def _pax_size(data: bytes, path: Path, where: str) -> int | None:
    """The ``size`` record of a pax header, if any; one that is not plain digits, or a sparse keyword, is refused."""
    size, pos = None, 0
    while match := _PAX_RECORD.match(data, pos):
        length, keyword = int(match.group(1)), match.group(2)
        if length == 0:
            return size  # tarfile refuses the header
        if keyword.startswith(b"GNU.sparse."):
            raise InvalidBundle(f"{path} is not a modelshelf bundle (it holds a sparse member {where})")
        if keyword == b"size":
            value = data[match.end(2) + 1 : match.start(1) + length - 1]
            if not (value.isdigit() and len(value) <= 20):  # int() would take "+5" or " 5": refuse, never guess
                raise InvalidBundle(f"{path} is not a modelshelf bundle (a pax size that is not a number {where})")
            size = int(value)
        pos += length
    return size
