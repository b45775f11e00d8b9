"""Real read-only directories for tests: a read-only bind mount, since ``chmod`` does not stop root.

A test that needs a directory nothing can be written into (a serving
container's read-only volume) asks for the ``read_only_dir`` fixture, or
uses :func:`read_only_mount` itself. Where mounting is impossible (not
root, no ``mount``, a sandbox without the capability) the test is skipped
with the reason; with ``MODELSHELF_REQUIRE_SERVERS=1`` (CI sets it) it
fails instead, so CI never passes by skipping. Tests using it belong in
the slow lane (:mod:`tests.lanes`).

Example::

    from tests.mounts import read_only_dir  # noqa: F401  (a fixture)

    def test_x(read_only_dir: ReadOnlyDir) -> None:
        (read_only_dir.source / "f").write_text("seen through the mount")
        assert (read_only_dir.path / "f").read_text() == "seen through the mount"
"""

from __future__ import annotations

import contextlib
import errno
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.servers import skip_or_fail


@dataclass(frozen=True)
class ReadOnlyDir:
    """``path`` is a read-only view of the writable directory ``source`` (what is put there shows up)."""

    source: Path
    path: Path


def _unavailable(reason: str) -> None:
    skip_or_fail(f"cannot make a read-only bind mount ({reason}); run the tests as root where `mount` works")


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(args, capture_output=True, text=True, timeout=30, check=False)


@contextlib.contextmanager
def read_only_mount(source: Path, target: Path) -> Iterator[Path]:
    """Bind-mount ``source`` read-only at ``target`` (created if needed); unmount on the way out.

    Skips the test (or fails it under ``MODELSHELF_REQUIRE_SERVERS=1``) when
    mounting is impossible, and checks that the mount really refuses a write
    (``EROFS``) before yielding it.
    """
    if shutil.which("mount") is None or shutil.which("umount") is None:
        _unavailable("no mount or umount command")
    target.mkdir(parents=True, exist_ok=True)
    bound = _run("mount", "--bind", str(source), str(target))
    if bound.returncode != 0:
        _unavailable(bound.stderr.strip() or f"mount --bind exited {bound.returncode}")
    try:
        remounted = _run("mount", "-o", "remount,ro,bind", str(target))
        if remounted.returncode != 0:
            _unavailable(remounted.stderr.strip() or f"mount -o remount,ro exited {remounted.returncode}")
        probe = target / ".write-probe"
        try:
            probe.write_bytes(b"")
        except OSError as exc:
            if exc.errno != errno.EROFS:
                raise
        else:
            probe.unlink()
            pytest.fail(f"{target} was remounted read-only but still accepts writes")
        yield target
    finally:
        if _run("umount", str(target)).returncode != 0:
            _run("umount", "-l", str(target))  # lazily, so that a busy mount never outlives the test run


@pytest.fixture
def read_only_dir(tmp_path: Path) -> Iterator[ReadOnlyDir]:
    """A writable ``source`` directory and its read-only view ``path``, both under this test's tmp_path."""
    source = tmp_path / "writable"
    source.mkdir()
    with read_only_mount(source, tmp_path / "read-only") as path:
        yield ReadOnlyDir(source, path)
