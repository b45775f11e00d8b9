"""When git's dirty flag may be reused: a record of everything ``git status`` decides it from.

Running ``git status --porcelain --untracked-files=no`` costs a process on
every registration (2 ms, and 8 ms or more after a fresh clone or checkout,
where git re-reads every file whose stat data it cannot trust and, running
without its optional lock, never refreshes them). Its answer is a function
of a few things this module can observe for the price of some ``lstat``
calls, so :func:`observe` records them *before* git runs, and the answer is
reused while a later observation is equal:

* the commit HEAD names (read from the ``.git`` files every time) and HEAD
  itself (a checkout of another branch at the same commit may switch an
  ``includeIf "onbranch:"``);
* the index file: git writes every change to a new file and renames it into
  place, so its inode, size and times move;
* every tracked path, as ``lstat`` sees it (mode, inode, device, size,
  mtime, ctime). This is the test git itself applies before reading a
  file's content, so an edit is seen exactly when git would see it without
  hashing; a touched but unchanged file only makes git run again;
* the directories on the way to those paths (mode, inode and device only: a
  directory replaced by a symbolic link or another directory is seen, a new
  untracked file inside one, which cannot change the answer, is not);
* the configuration and attribute files that change how content compares
  (``core.autocrlf``, filters, ``core.fileMode``...): the repository's and
  the worktree's, the global ones (``~/.gitconfig``, ``$XDG_CONFIG_HOME/git``),
  the system ones (``/etc`` and the ``etc`` beside the git on ``PATH``),
  ``info/attributes``, every file they include (conditions or not) and a
  ``core.attributesFile``; ``packed-refs`` and ``refs/replace`` (a replace
  ref changes the tree HEAD stands for); the owner of the work tree and git
  directory (``safe.directory``); and ``HOME``, ``XDG_CONFIG_HOME`` and
  ``PATH``, which choose those files and the git binary.

Anything that changes after an observation is seen by the next one, with
one hole that is closed by refusing to record: a file written twice within
one timestamp tick (a few milliseconds; one or two seconds on some
filesystems) keeps the same stat data. So an observation in which any
watched file's mtime or ctime is less than :data:`RACY_SECONDS` old is not
recorded, and git runs until the tree has been still that long. Nothing is
recorded, and git runs every time, for a tree with a submodule (its own work
tree would need a watch), a split or sparse index or one of an unknown
version, more than :data:`MAX_PATHS` tracked paths (where Python's ``lstat``
calls may cost as much as git's own parallel check), a ``core.worktree``
setting, or configuration this reader cannot follow with certainty.

What this record cannot see, git's index cannot either: a write that moves
neither mtime nor ctime (through a shared memory mapping whose page is
already dirty, or with the clock set back) and a filesystem clock more than
:data:`RACY_SECONDS` behind this machine's. Not watched: a system
configuration outside ``/etc`` and ``<prefix of git>/etc``, and environment
variables other than those three (``GIT_*`` never reach git here).
"""

from __future__ import annotations

import contextlib
import errno
import operator
import os
import shutil
import stat
import struct
import time
from typing import NamedTuple

__all__ = ["MAX_PATHS", "RACY_SECONDS", "Watch", "known", "observe", "remember"]

#: A file changed more recently than this is not trusted to show its next change in its stat data.
RACY_SECONDS = 3.0
#: Above this many index entries git runs every time. Measured on a 2-core machine: ``git status`` costs about
#: 2 ms plus 2.5 µs per tracked path, this watch 1.5 µs per path; git's parallel stat on more cores can win on
#: large trees, and the watch's lists grow with them.
MAX_PATHS = 10_000

_INDEX_LIMIT = 64 * 1024 * 1024
_CONFIG_LIMIT = 1024 * 1024
_MAX_CONFIG_FILES = 32
_GONE = (errno.ENOENT, errno.ENOTDIR)

# A file's stat data as git compares it; ``None`` when it does not exist.
_Stat = tuple[int, int, int, int, int, int] | None


class Watch(NamedTuple):
    """One observation of a repository; equal observations mean git would answer the same."""

    repo: tuple[str, str]  # (work tree, git directory): what the record is kept under
    key: tuple[object, ...]  # HEAD, index, configuration, owners, environment
    stats: tuple[_Stat, ...]  # every tracked path, then the directories above them


class _Index(NamedTuple):
    stat: _Stat
    files: tuple[bytes, ...]  # absolute paths of the tracked files
    directories: tuple[bytes, ...]  # absolute paths of the directories holding them
    watchable: bool


_recorded: dict[tuple[str, str], tuple[Watch, bool]] = {}
_indexes: dict[str, _Index] = {}  # index file -> its parsed paths, while its stat data stay the same
_configs: dict[tuple[str, ...], tuple[tuple[str, ...], tuple[_Stat, ...], bool]] = {}
_system: dict[str, tuple[str, ...]] = {}  # PATH -> the system configuration files of the git it finds


class _Racy(Exception):
    """A watched file changed too recently to be trusted: observe, but do not record."""


def _key(info: os.stat_result) -> tuple[int, int, int, int, int, int]:
    return (info.st_mode, info.st_ino, info.st_dev, info.st_size, info.st_mtime_ns, info.st_ctime_ns)


def _stat(path: str | bytes, oldest: int) -> _Stat:
    """``path``'s stat data, ``None`` if it is not there; :class:`_Racy` if changed after ``oldest`` (ns)."""
    try:
        info = os.lstat(path)
    except OSError as exc:
        if exc.errno in _GONE:
            return None
        raise
    if info.st_mtime_ns > oldest or info.st_ctime_ns > oldest:
        raise _Racy
    return _key(info)


_KEY = operator.attrgetter("st_mode", "st_ino", "st_dev", "st_size", "st_mtime_ns", "st_ctime_ns")
_MTIME, _CTIME = operator.itemgetter(4), operator.itemgetter(5)


def _tracked_stats(paths: tuple[bytes, ...]) -> list[_Stat]:
    """Each path's stat data (``None`` if gone): the hot loop of a registration in an unchanged tree.

    ``lstat`` itself is most of it (0.9 µs a call here); the fields are taken in C.
    """
    lstat = os.lstat
    try:
        return [_KEY(lstat(path)) for path in paths]
    except OSError:  # a path gone (or unreadable): again one by one, to say which
        found: list[_Stat] = []
        for path in paths:
            try:
                found.append(_KEY(lstat(path)))
            except OSError as exc:
                if exc.errno not in _GONE:
                    raise
                found.append(None)
        return found


def _owner(path: str) -> tuple[int, int, int, int]:
    info = os.stat(path)
    return (info.st_mode, info.st_ino, info.st_dev, info.st_uid)


def _varint(data: bytes, pos: int) -> tuple[int, int]:
    """The index v4 offset encoding (git's ``decode_varint``)."""
    byte = data[pos]
    value = byte & 0x7F
    pos += 1
    while byte & 0x80:
        byte = data[pos]
        value = ((value + 1) << 7) | (byte & 0x7F)
        pos += 1
    return value, pos


def _index_paths(data: bytes, hash_size: int) -> list[bytes] | None:
    """The paths of an index file (versions 2 to 4), or ``None`` if it is not one this watch can follow."""
    if len(data) < 12 + hash_size or data[:4] != b"DIRC":
        return None
    version, count = struct.unpack_from(">II", data, 4)
    if version not in (2, 3, 4) or count > MAX_PATHS:
        return None
    end = len(data) - hash_size
    fixed = 40 + hash_size  # ten 32-bit stat fields and the object name, then 16 bits of flags
    paths: list[bytes] = []
    previous = b""
    pos = 12
    for _ in range(count):
        if pos + fixed + 2 > end:
            return None
        (mode,) = struct.unpack_from(">I", data, pos + 24)
        (flags,) = struct.unpack_from(">H", data, pos + fixed)
        cursor = pos + fixed + 2
        if flags & 0x4000:  # extended flags (skip-worktree, intent-to-add)
            if version < 3:
                return None
            cursor += 2
        if stat.S_IFMT(mode) not in (stat.S_IFREG, stat.S_IFLNK):
            return None  # a submodule (gitlink) or a sparse directory
        if version == 4:  # the path shares a prefix with the previous one
            strip, cursor = _varint(data, cursor)
            nul = data.find(b"\0", cursor, end)
            if nul < 0 or strip > len(previous):
                return None
            path = previous[: len(previous) - strip] + data[cursor:nul]
            pos = nul + 1
        else:
            nul = data.find(b"\0", cursor, end)
            if nul < 0:
                return None
            path = data[cursor:nul]
            pos += (cursor - pos + len(path) + 8) & ~7  # 1 to 8 NULs pad each entry to a multiple of 8
        if not path or any(part in (b"", b".", b"..") for part in path.split(b"/")):
            return None
        paths.append(path)
        previous = path
    while pos + 8 <= end:  # extensions: a split index keeps its entries elsewhere, a sparse one has directories
        signature = data[pos : pos + 4]
        (size,) = struct.unpack_from(">I", data, pos + 4)
        if signature in (b"link", b"sdir"):
            return None
        pos += 8 + size
    return paths if pos == end else None


def _read_index(path: str, hash_size: int, worktree: bytes, oldest: int) -> _Index:
    """The index at ``path``, parsed once per version of the file (an unchanged one costs one ``lstat``)."""
    cached = _indexes.get(path)
    if cached is not None:
        with contextlib.suppress(OSError):
            if _key(os.lstat(path)) == cached.stat:
                return cached
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError as exc:
        if exc.errno in _GONE:
            return _Index(None, (), (), False)  # no index: every tracked file is deleted; git tells
        raise
    try:
        info = os.fstat(fd)
        key = _key(info)
        cached = _indexes.get(path)
        if cached is not None and cached.stat == key:
            return cached
        if info.st_mtime_ns > oldest or info.st_ctime_ns > oldest:
            raise _Racy
        if not stat.S_ISREG(info.st_mode) or info.st_size > _INDEX_LIMIT:
            return _Index(key, (), (), False)
        with open(fd, "rb", closefd=False) as file:
            data = file.read(_INDEX_LIMIT + 1)
    finally:
        os.close(fd)
    paths = _index_paths(data, hash_size)
    if paths is None:
        parsed = _Index(key, (), (), False)
    else:
        directories: set[bytes] = set()
        for entry in paths:
            parent = entry.rpartition(b"/")[0]
            while parent and parent not in directories:
                directories.add(parent)
                parent = parent.rpartition(b"/")[0]
        parsed = _Index(
            key,
            tuple(worktree + entry for entry in paths),
            tuple(worktree + directory for directory in sorted(directories)),
            True,
        )
    if len(_indexes) >= 64:
        _indexes.clear()
    _indexes[path] = parsed
    return parsed


def _config_refs(text: bytes, here: str, home: str | None) -> list[str] | None:
    """The files a git config file pulls in (``include.path``, ``includeIf.*.path``, ``core.attributesFile``).

    ``None`` when it sets ``core.worktree`` (git then looks at another tree)
    or says something this reader cannot follow with certainty: a value
    with escapes, quotes or comments, a continued line, a ``~user`` or
    ``%(prefix)`` path.
    """
    lower = text.lower()
    if b"include" not in lower and b"attributesfile" not in lower and b"worktree" not in lower:
        return []
    found: list[str] = []
    section = b""
    for raw in text.splitlines():
        line = raw.strip()
        if line.startswith(b"["):
            end = line.find(b"]")
            if end < 0:
                return None
            section = line[1:end].strip().split(b'"')[0].strip().split(b".")[0].lower()
            line = line[end + 1 :].strip()
        if not line or line[:1] in (b"#", b";"):
            continue
        if line.endswith(b"\\"):
            return None
        name, _, value = line.partition(b"=")
        name, value = name.strip().lower(), value.strip()
        if (section, name) == (b"core", b"worktree"):
            return None
        if (section, name) not in ((b"include", b"path"), (b"includeif", b"path"), (b"core", b"attributesfile")):
            continue
        if len(value) >= 2 and value[:1] == value[-1:] == b'"':
            value = value[1:-1]
        if not value or any(c in value for c in (b"\\", b'"', b"#", b";")) or value.startswith(b"%("):
            return None
        target = os.fsdecode(value)
        if target.startswith("~"):
            if not target.startswith("~/") or home is None:
                return None
            target = os.path.join(home, target[2:])
        elif not os.path.isabs(target) and section == b"core":
            return None  # relative to wherever git was started: not followed
        found.append(os.path.normpath(os.path.join(here, target)))
    return found


def _read_small(path: str) -> tuple[_Stat, bytes]:
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
    except OSError as exc:
        if exc.errno in _GONE:
            return None, b""
        raise
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            return _key(info), b""
        return _key(info), os.read(fd, _CONFIG_LIMIT + 1)
    finally:
        os.close(fd)


def _config_stats(base: tuple[str, ...], home: str | None, oldest: int) -> tuple[_Stat, ...] | None:
    """The stat data of every configuration file git reads from ``base``, includes followed; ``None``: unknown."""
    cached = _configs.get(base)
    if cached is not None:
        files, stats, watchable = cached
        if tuple(_stat(path, oldest) for path in files) == stats:
            return stats if watchable else None
    files_read: list[str] = []
    stats_read: list[_Stat] = []
    pending = list(base)
    watchable = True
    while pending:
        path = pending.pop(0)
        if path in files_read:
            continue
        if len(files_read) >= _MAX_CONFIG_FILES:
            watchable = False
            break
        info, text = _read_small(path)
        if info is not None and (info[4] > oldest or info[5] > oldest):
            raise _Racy
        files_read.append(path)
        stats_read.append(info)
        if len(text) > _CONFIG_LIMIT:
            watchable = False
            continue
        refs = _config_refs(text, os.path.dirname(path), home)
        if refs is None:
            watchable = False
        else:
            pending.extend(refs)
    if len(_configs) >= 64:
        _configs.clear()
    _configs[base] = (tuple(files_read), tuple(stats_read), watchable)
    return tuple(stats_read) if watchable else None


def _system_files(search_path: str | None) -> tuple[str, ...]:
    """The system configuration and attribute files: ``/etc``'s and those of the prefix of the git on ``PATH``."""
    key = search_path or ""
    if key not in _system:
        places = {os.path.normpath(os.sep + "etc")}
        git = shutil.which("git", path=search_path)
        if git is not None:
            prefix = os.path.dirname(os.path.dirname(os.path.realpath(git)))
            places.update({os.path.join(prefix, "etc"), os.path.join(os.path.dirname(prefix), "etc")})
        _system[key] = tuple(
            os.path.join(place, name) for place in sorted(places) for name in ("gitconfig", "gitattributes")
        )
    return _system[key]


def observe(worktree: str, gitdir: str, commondir: str, commit: str) -> Watch | None:
    """What ``git status`` in ``worktree`` would decide from, now; ``None`` if it cannot be watched now."""
    oldest = time.time_ns() - int(RACY_SECONDS * 1e9)
    home = os.environ.get("HOME") or None
    xdg = os.environ.get("XDG_CONFIG_HOME") or (os.path.join(home, ".config") if home else None)
    search_path = os.environ.get("PATH")
    try:
        index = _read_index(
            os.path.join(gitdir, "index"), len(commit) // 2, os.fsencode(worktree) + os.fsencode(os.sep), oldest
        )
        if not index.watchable:
            return None
        configs = [os.path.join(commondir, "config"), os.path.join(gitdir, "config.worktree")]
        if home:
            configs.append(os.path.join(home, ".gitconfig"))
        if xdg:
            configs.extend((os.path.join(xdg, "git", "config"), os.path.join(xdg, "git", "attributes")))
        configs.extend(_system_files(search_path))
        configs.append(os.path.join(commondir, "info", "attributes"))
        config_stats = _config_stats(tuple(configs), home, oldest)
        if config_stats is None:
            return None
        key = (
            commit,
            _stat(os.path.join(gitdir, "HEAD"), oldest),
            index.stat,
            config_stats,
            _stat(os.path.join(commondir, "packed-refs"), oldest),
            _stat(os.path.join(commondir, "refs", "replace"), oldest),
            _owner(worktree),
            _owner(gitdir),
            (home, xdg, search_path),
        )
        stats: list[_Stat] = _tracked_stats(index.files)
        present = [found for found in stats if found is not None]
        if present and max(max(map(_MTIME, present)), max(map(_CTIME, present))) > oldest:
            raise _Racy
        for directory in index.directories:
            try:
                info = os.lstat(directory)
            except OSError as exc:
                if exc.errno not in _GONE:
                    raise
                stats.append(None)
            else:
                stats.append((info.st_mode, info.st_ino, info.st_dev, 0, 0, 0))
    except (_Racy, OSError, ValueError, struct.error, IndexError):
        return None
    return Watch((worktree, gitdir), key, tuple(stats))


def known(watch: Watch) -> bool | None:
    """git's answer for a tree observed exactly as ``watch`` was before, or ``None``: ask git."""
    recorded = _recorded.get(watch.repo)
    if recorded is None or recorded[0] != watch:
        return None
    return recorded[1]


def remember(watch: Watch, dirty: bool) -> None:
    """Keep git's answer for the tree as it was observed just before git ran."""
    if len(_recorded) >= 64:
        _recorded.clear()
    _recorded[watch.repo] = (watch, dirty)
