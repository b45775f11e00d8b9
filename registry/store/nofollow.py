"""Directories below a store's root, opened, listed, created and written without following a symbolic link.

A store (or a cache) may be shared, and whoever can write to it can replace
``tmp/`` or a fan-out directory ``blobs/sha256/ab`` with a link to any
other directory. Code that lists such a directory would then report that
directory's files, ``gc`` or ``cache clear`` would delete them, and a
publish would write verified blobs into it. So every step below the root is
opened relative to the one before with ``O_NOFOLLOW | O_DIRECTORY``
(``openat``): a link anywhere on the way fails the open with ``ELOOP`` (or
``ENOTDIR``) instead of being entered, and no link can be swapped in between
a check and the use, because the use goes through the descriptor that was
checked. The root itself is the user's choice and may be a link.

Directories are created with mode 0755, which excludes group and other
write whatever the umask (a umask can only remove bits).

POSIX only, like the rest of the store (it fsyncs directories).
"""

from __future__ import annotations

import contextlib
import errno
import os
import stat
from collections.abc import Iterator
from pathlib import Path

_NO_FOLLOW = getattr(os, "O_NOFOLLOW", 0)
_DIRECTORY = os.O_RDONLY | getattr(os, "O_DIRECTORY", 0) | getattr(os, "O_CLOEXEC", 0)
#: Mode of every directory the store creates: nobody but the owner may add or remove names in it.
DIR_MODE = 0o755
#: errno values meaning "a link (or a non-directory) is where a directory belongs".
LINK_ERRNOS = (errno.ELOOP, errno.ENOTDIR)


def is_link_error(exc: OSError) -> bool:
    """Whether ``exc`` says a step of the path was a symbolic link or not a directory."""
    return exc.errno in LINK_ERRNOS


def open_dir(root: Path, parts: tuple[str, ...], *, create: bool = False, created: list[int] | None = None) -> int:
    """A descriptor of the directory ``root/parts…``, no step below ``root`` being a link.

    With ``create``, missing directories are made (mode :data:`DIR_MODE`).
    For each one made, a descriptor of its parent is appended to ``created``
    (the caller fsyncs and closes them, so the new entries survive a crash);
    without ``created`` they are fsynced and closed here. Raises
    ``FileNotFoundError`` for a missing step, ``OSError`` with ``ELOOP`` or
    ``ENOTDIR`` for a link or a file on the way.
    """
    if create:
        _make_root(root)
    fd = os.open(root, _DIRECTORY)
    try:
        for part in parts:
            if create:
                try:
                    os.mkdir(part, DIR_MODE, dir_fd=fd)
                except FileExistsError:
                    pass
                else:
                    if created is not None:
                        created.append(os.dup(fd))
                    else:
                        os.fsync(fd)
            inner = os.open(part, _DIRECTORY | _NO_FOLLOW, dir_fd=fd)
            os.close(fd)
            fd = inner
    except BaseException:
        os.close(fd)
        raise
    return fd


def _make_root(root: Path) -> None:
    """Create ``root`` and its missing parents, each with :data:`DIR_MODE` (``os.makedirs`` modes only the last)."""
    missing = []
    step = root
    while not step.exists():
        missing.append(step)
        if step.parent == step:
            break
        step = step.parent
    for path in reversed(missing):
        with contextlib.suppress(FileExistsError):
            os.mkdir(path, DIR_MODE)


@contextlib.contextmanager
def directory(root: Path, parts: tuple[str, ...], *, create: bool = False) -> Iterator[int]:
    """:func:`open_dir` as a context manager that closes the descriptor."""
    fd = open_dir(root, parts, create=create)
    try:
        yield fd
    finally:
        os.close(fd)


def entries(root: Path, parts: tuple[str, ...]) -> list[tuple[str, os.stat_result]] | None:
    """The names in ``root/parts…`` with their ``lstat``, sorted; ``None`` if the directory is missing.

    Raises ``OSError`` (``ELOOP``/``ENOTDIR``) if a step is a link or not a
    directory: the caller reports it rather than entering it.
    """
    try:
        fd = open_dir(root, parts)
    except FileNotFoundError:
        return None
    try:
        with os.scandir(fd) as found:
            listed = []
            for entry in found:
                with contextlib.suppress(FileNotFoundError):  # removed while listed
                    listed.append((entry.name, entry.stat(follow_symlinks=False)))
        return sorted(listed, key=lambda item: item[0])
    finally:
        os.close(fd)


def lstat(root: Path, parts: tuple[str, ...]) -> os.stat_result | None:
    """The ``lstat`` of ``root/parts…`` reached without following links, or ``None`` if it cannot be reached."""
    try:
        with directory(root, parts[:-1]) as fd:
            return os.stat(parts[-1], dir_fd=fd, follow_symlinks=False)
    except FileNotFoundError:
        return None
    except OSError as exc:
        if is_link_error(exc):
            return None
        raise


def unlink(root: Path, parts: tuple[str, ...]) -> bool:
    """Remove the name ``root/parts…`` (a link itself, never what it points to); return whether it was there.

    A link among the directories on the way raises ``OSError`` (``ELOOP``):
    nothing is removed through it.
    """
    try:
        with directory(root, parts[:-1]) as fd:
            os.unlink(parts[-1], dir_fd=fd)
            os.fsync(fd)
    except FileNotFoundError:
        return False
    return True


def is_regular(info: os.stat_result | None) -> bool:
    """Whether an ``lstat`` result is a regular file (not a link, directory, FIFO…)."""
    return info is not None and stat.S_ISREG(info.st_mode)
