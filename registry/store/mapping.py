"""Read-only shared mappings of verified store files, for ``load(ref, mmap=True)``.

A plain load copies the blob into memory only this process maps, so that
nothing can change the bytes between their hash and their use. That copy is
what several worker processes serving one large model each pay for. A
mapped load instead maps the store's own file read-only and shared
(``MAP_SHARED``, ``PROT_READ``): every process mapping it uses the same
page-cache pages, and joblib's large arrays become read-only views of them.

What that trusts, and why it is checked rather than assumed: a mapping
shows the file's *current* bytes, so whoever can write the file after the
hash could change the arrays of a running model (and, since a pickle's
opcodes are read from the mapping too, what the unpickler reads). The hash
is computed over the mapping itself, and the file must be writable by no
one but this process's own user and root: owned by one of them, with no
write bit for its group or others (an ACL granting write to anyone else
shows as a group write bit). Those two can already change this process
(its code, its memory), so the mapping trusts no one new. A store file
owned by another account, or writable by others, is refused with
:class:`~registry.errors.UntrustedArtifact`, and a plain (private) load
still works. A store on a network disk also trusts every machine that
mounts it writable, which no check here can see.
"""

from __future__ import annotations

import os
import stat

__all__ = ["outside_writers"]


def outside_writers(info: os.stat_result) -> str | None:
    """Why someone other than this process's user or root could rewrite the file ``info`` describes, or ``None``."""
    geteuid = getattr(os, "geteuid", None)
    if geteuid is None:  # pragma: no cover - no POSIX ownership to check (Windows)
        return "this platform has no file ownership to check"
    euid = geteuid()
    if info.st_uid not in (euid, 0):
        return (
            f"it is owned by uid {info.st_uid}, not by this process's user (uid {euid}) or root, and its owner "
            "can make it writable and rewrite the bytes under the mapped arrays"
        )
    if info.st_mode & (stat.S_IWGRP | stat.S_IWOTH):
        return f"its mode {stat.filemode(info.st_mode)} lets its group or others write it"
    return None
