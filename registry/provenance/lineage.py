"""Where a model came from: the code that registered it, and a fingerprint of the data it was trained on.

:func:`capture_lineage` runs on every registration, so it is cheap and never fails: HEAD is read from the
``.git`` files, git runs once (for the dirty flag only), and whatever cannot be learnt is ``None``. ``GIT_*``
variables are ignored and stripped from git's environment (a ``GIT_DIR`` set by a hook must not make the lineage
describe another tree); git runs without its optional index lock, so it never collides with the user's own
``git commit``, and still refuses repositories owned by others (``safe.directory``). HEAD is read again on every
call (a notebook may commit between two registrations); git's answer is reused only while everything it is decided
from is unchanged, down to the stat data of every tracked file (:mod:`registry.provenance.gitwatch` says what is
watched and why that is exact), so a loop of registrations in an unchanged tree runs git once.

Training-data fingerprints live in :mod:`registry.provenance.fingerprint`.
"""

from __future__ import annotations

import contextlib
import functools
import getpass
import os
import re
import selectors
import signal
import socket
import stat
import subprocess
import sys
import threading
import time
from collections.abc import Callable
from typing import Any, NamedTuple

from registry.provenance import gitwatch
from registry.provenance.environment import package_version

__all__ = ["capture_lineage", "identity", "start_capture"]

#: Seconds git may take to tell whether the work tree is dirty; beyond that ``git_dirty`` is ``None``.
GIT_TIMEOUT = 2.0

# The catalog's column sizes (registry.catalog.schema), which this module may not import.
_IDENTITY_LIMIT = 255
_VERSION_LIMIT = 64
_SCRIPT_LIMIT = 4096
_HEX = re.compile(r"[0-9a-f]{40}|[0-9a-f]{64}")  # a SHA-1 or SHA-256 object name
_PER_WORKTREE_REFS = ("refs/bisect/", "refs/worktree/", "refs/rewritten/")


class _Repo(NamedTuple):
    worktree: str  # the directory holding .git
    gitdir: str  # its own git directory, with HEAD
    commondir: str  # refs and packed-refs; not gitdir in a linked worktree


_repos: dict[str, _Repo] = {}  # start directory -> the repository found from it (misses are not kept)


def _read(path: str, limit: int = 64 * 1024) -> bytes | None:
    """A small regular file's bytes, or ``None``: a FIFO, a directory or a huge file never blocks or raises."""
    data = b""
    with contextlib.suppress(OSError):
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NONBLOCK", 0))
        try:
            data = os.read(fd, limit + 1) if stat.S_ISREG(os.fstat(fd).st_mode) else b""
        finally:
            os.close(fd)
    return data if 0 < len(data) <= limit else None


def _text(path: str) -> str | None:
    data = _read(path)
    return data.decode("utf-8", "replace").strip() if data is not None else None


def _open_dotgit(worktree: str) -> _Repo | None:
    dotgit = os.path.join(worktree, ".git")
    gitdir: str | None = dotgit
    if not os.path.isdir(dotgit):
        text = _text(dotgit)  # a linked worktree or a submodule: "gitdir: <path>"
        gitdir = os.path.join(worktree, text[7:].strip()) if text and text.startswith("gitdir:") else None
    if gitdir is None or not os.path.isfile(os.path.join(gitdir, "HEAD")):
        return None
    common = _text(os.path.join(gitdir, "commondir"))
    commondir = os.path.join(gitdir, common) if common else gitdir
    return _Repo(worktree, os.path.normpath(gitdir), os.path.normpath(commondir))


def _find_repo(start: str) -> _Repo | None:
    """The work tree holding ``start``, walking up from its real path as git does; cached when found."""
    if start in _repos:
        return _repos[start]
    directory = os.path.realpath(start)
    while (repo := _open_dotgit(directory)) is None:
        if os.path.dirname(directory) == directory:
            return None
        directory = os.path.dirname(directory)
    if len(_repos) >= 256:
        _repos.clear()
    _repos[start] = repo
    return repo


def _packed_ref(commondir: str, ref: str) -> str | None:
    data = _read(os.path.join(commondir, "packed-refs"), limit=256 * 1024 * 1024)
    if not data:
        return None
    # A plain search for " <ref>" at a line's end, then a check of the line: a regex over a file of
    # hundreds of thousands of refs cost a tenth of a second per registration.
    needle, start = b" " + ref.encode(), 0
    while (found := data.find(needle, start)) >= 0:
        end = found + len(needle)
        start = end
        if data[end : end + 1] not in (b"\n", b"\r", b""):
            continue
        line_start = data.rfind(b"\n", 0, found) + 1
        name = data[line_start:found]
        if _HEX.fullmatch(name.decode("ascii", "replace")):
            return name.decode()
    return None


def _head_commit(repo: _Repo) -> str | None:
    """Follow HEAD through symbolic refs to a commit: the loose ref first, then ``packed-refs``, as git does."""
    text = _text(os.path.join(repo.gitdir, "HEAD"))
    for _ in range(8):  # symbolic refs may chain; a longer chain is a loop
        if text is None or _HEX.fullmatch(text):
            return text
        ref = text[4:].strip() if text.startswith("ref:") else ""
        if ref == "refs/heads/.invalid":  # a reftable repository: its refs are not files, so ask git
            status, out = _git(repo, "rev-parse", "--verify", "--quiet", "HEAD")
            text = out.decode("ascii", "replace").strip() if status == 0 else ""
            return text if _HEX.fullmatch(text) else None
        parts = ref.split("/")
        if parts[0] != "refs" or any(p in ("", ".", "..") or "\\" in p or "\0" in p for p in parts):
            return None  # not a ref name: refuse to follow it out of the repository
        base = repo.gitdir if ref.startswith(_PER_WORKTREE_REFS) else repo.commondir
        text = _text(os.path.join(base, *parts)) or _packed_ref(repo.commondir, ref)  # None: no commit yet
    return None


def _git(repo: _Repo, *args: str) -> tuple[int, bytes]:
    """Run git in the work tree: (exit status, output); (-1, b"") when it cannot run at all."""
    env = {key: value for key, value in os.environ.items() if not key.startswith("GIT_")}
    env.update(GIT_OPTIONAL_LOCKS="0", GIT_TERMINAL_PROMPT="0")
    flags = getattr(subprocess, "CREATE_NO_WINDOW", 0)
    try:
        proc = subprocess.Popen(
            ["git", *args],
            cwd=repo.worktree,
            env=env,
            creationflags=flags,
            start_new_session=True,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
        )
    except (OSError, ValueError, subprocess.SubprocessError):  # not installed, work tree gone
        return -1, b""
    # Its output is read with select() against a deadline, not run(timeout=), which polls for the exit and adds
    # a millisecond to every call, nor a timer, whose thread costs half a millisecond to start.
    chunks: list[bytes] = []
    try:
        if os.name == "nt":  # select() takes no pipes there
            out = proc.communicate(timeout=GIT_TIMEOUT)[0]
            return proc.returncode, out
        assert proc.stdout is not None
        descriptor = proc.stdout.fileno()
        deadline = time.monotonic() + GIT_TIMEOUT
        with selectors.DefaultSelector() as selector:
            selector.register(descriptor, selectors.EVENT_READ)
            while True:
                remaining = deadline - time.monotonic()
                if remaining <= 0 or not selector.select(remaining):
                    _kill(proc)  # too slow: the flag stays unknown
                    return -1, b""
                chunk = os.read(descriptor, 65536)
                if not chunk:
                    break
                chunks.append(chunk)
        proc.wait()
    except (OSError, subprocess.TimeoutExpired):  # the pipe failed, or git is too slow: the flag stays unknown
        return -1, b""
    finally:
        if proc.returncode is None:  # timed out or interrupted by KeyboardInterrupt: leave no git behind
            _kill(proc)
            proc.wait()
        if proc.stdout is not None:
            proc.stdout.close()
    return proc.returncode, b"".join(chunks)


def _kill(proc: subprocess.Popen[bytes]) -> None:
    # The whole process group, as a child of git may hold the pipe open; while git is unreaped, the id is still its.
    if proc.poll() is not None:
        return
    with contextlib.suppress(OSError):
        if hasattr(os, "killpg"):
            os.killpg(proc.pid, signal.SIGKILL)
        else:
            proc.kill()


def _git_dirty(repo: _Repo, commit: str, watch: gitwatch.Watch | None) -> bool | None:
    """Ask git whether the tree is dirty; keep the answer for the tree as ``watch`` saw it before git ran."""
    # `status` compares contents where stat data is stale, so a touched file stays clean, in one process;
    # `diff-index HEAD` calls it dirty unless `update-index --refresh` (a second process, and a write) runs first.
    status, out = _git(repo, "status", "--porcelain", "--untracked-files=no")
    dirty = bool(out.strip()) if status == 0 else None
    if watch is not None and dirty is not None:
        gitwatch.remember(watch, dirty)
    return dirty


def _watch(repo: _Repo, commit: str) -> tuple[gitwatch.Watch | None, bool | None]:
    """The tree observed now, and git's answer if it was asked about a tree observed exactly so."""
    watch = gitwatch.observe(repo.worktree, repo.gitdir, repo.commondir, commit)
    return watch, None if watch is None else gitwatch.known(watch)


def _notebook(main: Any) -> str | None:
    vscode = getattr(main, "__vsc_ipynb_file__", None)
    if isinstance(vscode, str) and vscode:
        return os.path.abspath(vscode)
    session = os.environ.get("JPY_SESSION_NAME", "")
    if os.path.isabs(session):
        return session
    # Relative to the Jupyter server's root, which the kernel cannot see; but kernels start in the notebook's folder.
    if session and os.path.isfile(os.path.basename(session)):
        return os.path.abspath(os.path.basename(session))
    return session if session.endswith(".ipynb") else None


def _script() -> tuple[str | None, str | None]:
    """What to record as ``script``, and the real file (if any) to search the repository from."""
    main = sys.modules.get("__main__")
    path = getattr(main, "__file__", None)
    if isinstance(path, str) and path:
        if path.startswith("<"):  # "<stdin>": `python - < file`, `cat file | python`
            return path, None
        path = os.path.abspath(path)
        return path, path if os.path.isfile(path) else None
    if callable(getattr(main, "get_ipython", None)):  # IPython puts it in the user namespace, which is __main__
        notebook = _notebook(main)
        return notebook or "<ipython>", notebook if notebook and os.path.isfile(notebook) else None
    if sys.argv[:1] == ["-c"]:
        return "-c", None
    if sys.argv[:1] == [""] or hasattr(sys, "ps1"):  # the interactive interpreter
        return "<stdin>", None
    return None, None  # embedded: no script to name


def _storable(text: str | None, limit: int) -> str | None:
    """Text every catalog can store: bytes that are not UTF-8 escaped (a path may hold any), no NUL, bounded."""
    if text is None:
        return None
    try:
        raw = text.encode("utf-8", "surrogateescape")  # how Python keeps undecodable bytes of paths and names
    except UnicodeEncodeError:
        raw = text.encode("utf-8", "surrogatepass")
    return raw.decode("utf-8", "backslashreplace").replace("\x00", "")[:limit] or None


@functools.cache
def _process_facts() -> tuple[str | None, str | None, str | None]:
    """(user, host, modelshelf version): fixed for the life of the process, and of its forks."""
    user: str | None = None
    host: str | None = None
    version: str | None = None
    with contextlib.suppress(KeyError, OSError, ImportError):  # a uid with no passwd entry, as in containers
        user = getpass.getuser()
    with contextlib.suppress(OSError):
        host = socket.gethostname() or None
    version = package_version("modelshelf")
    return _storable(user, _IDENTITY_LIMIT), _storable(host, _IDENTITY_LIMIT), _storable(version, _VERSION_LIMIT)


def identity() -> tuple[str | None, str | None]:
    """The (user, host) this process acts as, which the audit trail records with each change; cached.

    >>> identity()[1] == socket.gethostname()
    True
    """
    return _process_facts()[:2]


def capture_lineage(start: str | os.PathLike[str] | None = None) -> dict[str, Any]:
    """Describe the process registering a model: git commit and dirtiness, script, user, host, modelshelf version.

    The repository is searched upwards from ``start`` (a file or directory), else from the running script's
    directory and, when that is in no repository (a console script in a virtualenv), from the current
    directory. ``git_commit`` is HEAD's full hex name, ``None`` outside a
    repository or before the first commit. ``git_dirty`` is true when a tracked file differs from HEAD, staged or
    not (untracked files do not count); ``None`` when git is missing, fails or takes over ``GIT_TIMEOUT`` seconds,
    or there is no commit. ``script`` is the absolute ``__main__.__file__``; in a notebook its path when VS Code
    (``__vsc_ipynb_file__``) or JupyterLab (``JPY_SESSION_NAME``) tells it, else ``"<ipython>"``; ``"-c"`` for
    ``python -c``; ``"<stdin>"`` for piped or interactive input; ``None`` when embedded. Never raises.

    >>> sorted(capture_lineage())
    ['git_commit', 'git_dirty', 'host', 'modelshelf_version', 'script', 'user']
    """
    script, repo, commit = _locate(start)
    dirty = None
    if repo is not None and commit is not None:
        watch, dirty = _watch(repo, commit)
        if dirty is None:
            dirty = _git_dirty(repo, commit, watch)
    return _lineage(script, commit, dirty)


def _locate(start: str | os.PathLike[str] | None) -> tuple[str | None, _Repo | None, str | None]:
    """(script, repository, HEAD's commit) of :func:`capture_lineage`; ``None`` for what is not there."""
    script, script_file = _script()
    commit = repo = None
    try:
        if start is not None:
            origin = os.path.abspath(os.fspath(start))
            origins = [origin if os.path.isdir(origin) else os.path.dirname(origin)]
        elif script_file:  # then the working directory: a console script lives in a virtualenv, not the project
            origins = [os.path.dirname(script_file), os.getcwd()]
        else:
            origins = [os.getcwd()]
        for origin in origins:
            repo = _find_repo(origin)
            commit = _head_commit(repo) if repo is not None else None
            if commit is None and _repos.pop(origin, None) is not None:  # the cached repository may have moved
                repo = _find_repo(origin)
                commit = _head_commit(repo) if repo is not None else None
            if repo is not None:
                break
    except (OSError, ValueError, TypeError):  # a deleted current directory, a NUL in the path
        repo = commit = None
    return script, repo, commit


def _lineage(script: str | None, commit: str | None, dirty: bool | None) -> dict[str, Any]:
    user, host, version = _process_facts()
    script = _storable(script, _SCRIPT_LIMIT)
    return dict(git_commit=commit, git_dirty=dirty, script=script, user=user, host=host, modelshelf_version=version)


def start_capture(start: str | os.PathLike[str] | None = None) -> Callable[[], dict[str, Any]]:
    """Begin :func:`capture_lineage` and return the function that gives its answer.

    Running git takes a couple of milliseconds, mostly waiting for another
    process, which is as long as serializing a small model: the registry
    starts the capture first and collects it once the artifact is written,
    git running on a helper thread meanwhile. When git's answer for the tree
    as it is now is already known, or there is no git to ask, the capture is
    done on the spot: starting a thread would cost more than it saves.

    >>> finish = start_capture()
    >>> sorted(finish()) == sorted(capture_lineage())
    True
    """
    script, repo, commit = _locate(start)
    if repo is None or commit is None:
        done = _lineage(script, commit, None)
        return lambda: dict(done)
    watch, dirty = _watch(repo, commit)
    if dirty is not None:
        known = _lineage(script, commit, dirty)
        return lambda: dict(known)
    answer: list[dict[str, Any]] = []

    def ask() -> None:
        answer.append(_lineage(script, commit, _git_dirty(repo, commit, watch)))

    helper = threading.Thread(target=ask, name="modelshelf-lineage", daemon=True)
    try:
        helper.start()
    except RuntimeError:  # no thread to be had (interpreter shutting down, thread limit): capture on the spot
        ask()

    def finish() -> dict[str, Any]:
        if helper.ident is not None:
            helper.join()
        return answer[0] if answer else capture_lineage(start)

    return finish
