"""Where the tests' scratch files live: in RAM when the machine has room there, and never in the checkout.

Temporary directories. Every registration syncs its blob and the blob's
directory, and SQLite syncs its WAL on each commit (``synchronous=FULL``):
some ten thousand syncs in the fast lane. On a disk shared with other jobs
each one waits its turn, and the waiting cost more than anything a test
computes: a typical test (one registry, two registrations, a load) took
75-120 ms with its directory on disk and 18-55 ms on tmpfs, on the same
loaded machine. On tmpfs the same calls are made and succeed at once; no
test can observe durability across a power cut, so none loses anything it
asserts. A ``--basetemp`` or ``PYTEST_DEBUG_TEMPROOT`` given by the caller
wins: ``PYTEST_DEBUG_TEMPROOT=/tmp python -m pytest`` runs on disk.

Working directory. Each registration records its lineage, and from a git
checkout that means a ``git status`` process per registration (2 ms on a
quiet machine, 25 ms under load; some 1,600 registrations in the fast
lane). The tests run in a scratch directory of their own, so that search
finds no repository, as for a model registered outside one, and a file a
test leaves in its working directory lands there instead of in the
checkout. Lineage inside a repository is tested on purpose, with real
repositories (``tests/test_provenance_lineage.py``). An interpreter whose
own script is in the checkout (a virtualenv inside it, as CI's) still
finds it from there; that costs time, not correctness.

Example (what ``tests/conftest.py`` does before any temporary directory is made)::

    root = ram_temp_root()
    if root is not None:
        os.environ["PYTEST_DEBUG_TEMPROOT"] = root
"""

from __future__ import annotations

import os

#: The RAM file system Linux mounts for shared memory, present on most machines (not macOS).
RAM_DIR = "/dev/shm"

#: Free room the RAM file system must have: pytest keeps its last three runs' directories there.
MIN_FREE_BYTES = 2 * 1024**3


def ram_temp_root(directory: str = RAM_DIR, min_free: int = MIN_FREE_BYTES) -> str | None:
    """``directory`` when pytest's temporary root should move there, else ``None``.

    ``None`` when the caller already chose a root (``PYTEST_DEBUG_TEMPROOT``),
    when ``directory`` is missing or not writable, or when it has less than
    ``min_free`` bytes free (a container's default ``/dev/shm`` of 64 MiB).

    >>> ram_temp_root("/no/such/directory") is None
    True
    """
    if os.environ.get("PYTEST_DEBUG_TEMPROOT"):
        return None
    try:
        room = os.statvfs(directory)
    except OSError:
        return None
    if not os.path.isdir(directory) or not os.access(directory, os.W_OK | os.X_OK):
        return None
    return directory if room.f_bavail * room.f_frsize >= min_free else None
