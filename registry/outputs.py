"""Files written where the user asked (``fetch -o``, ``export -o``, ``--plot``): whole or not at all.

Each such file is written under a process-unique temporary name beside
its destination and renamed onto it only once complete, so a reader (or
the user after a crash) sees the old file or the new one, never half of
it. The temporary file is removed on every way out; that removal is best
effort, because on a read-only mount even unlinking a file that was never
created fails (EROFS), and that second error must not hide the first.

A destination the user can fix (a missing directory, a file where a
directory should be, a read-only mount, no permission) is an
:class:`~registry.errors.InvalidPath`, exit code 2 on the command line,
the same for every command; a failure of the disk itself (full, I/O) is a
:class:`~registry.errors.StoreError`.

>>> import tempfile, pathlib
>>> target = pathlib.Path(tempfile.mkdtemp()) / "out.bin"
>>> with replacing(target, what="the copy") as file:
...     _ = file.write(b"whole")
>>> target.read_bytes()
b'whole'
"""

from __future__ import annotations

import contextlib
import errno
import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import BinaryIO

from registry.errors import InvalidPath, RegistryError, StoreError

#: Errors that say the destination itself is unusable, which the user fixes by giving another path.
PATH_ERRNOS = frozenset(
    {errno.ENOENT, errno.ENOTDIR, errno.EISDIR, errno.EACCES, errno.EPERM, errno.EROFS, errno.ENAMETOOLONG, errno.ELOOP}
)


def output_error(destination: Path, exc: OSError, what: str) -> RegistryError:
    """The one-line error for ``what`` (``"the bundle"``) that could not be written to ``destination``."""
    reason = exc.strerror or str(exc)
    if exc.errno in PATH_ERRNOS:
        return InvalidPath(
            f"cannot write {what} to {destination}: {reason}; give a file in an existing directory you can write"
        )
    return StoreError(f"cannot write {what} to {destination}: {reason}")


@contextlib.contextmanager
def replacing(destination: Path, *, what: str, durable: bool = False) -> Iterator[BinaryIO]:
    """A new file that replaces ``destination`` when the block ends without an error.

    ``durable`` fsyncs it before the rename (a verified artifact copy must
    survive a power cut as what it claims to be). A :class:`RegistryError`
    raised in the block (a blob that fails its check) passes through
    unchanged, and nothing is renamed.
    """
    temp = destination.with_name(f".{destination.name}.{os.getpid()}-{secrets.token_hex(4)}.tmp")
    try:
        with open(temp, "xb") as file:
            yield file
            if durable:
                file.flush()
                os.fsync(file.fileno())
        os.replace(temp, destination)
    except RegistryError:
        raise
    except OSError as exc:
        raise output_error(destination, exc, what) from exc
    finally:
        with contextlib.suppress(OSError):  # best effort: see the module docstring
            temp.unlink()
