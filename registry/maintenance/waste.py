"""Waste in a store, found once: the frozen :class:`WastePlan` that ``verify`` reports and ``gc`` carries out.

Waste is what no live version needs: blobs no live version references, and
temporary files (artifacts being written, or left by a crash). One scan of
the store against the catalog's live digests builds the plan; ``verify``
turns it into problems and ``gc`` executes it, so the two can never
disagree on what is waste (they once walked the store with two pieces of
code). The plan is frozen: executing it removes what it lists and nothing
else, and every blob is still freed only under the catalog lock after
re-checking that no live version references it (a register may have
reused it since the scan). Nothing younger than ``min_age`` is removed: a
register in flight elsewhere may have published it and not yet committed
its row. A file under ``blobs/`` not named by a digest is not modelshelf's:
reported, never removed.
"""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass

from registry.catalog import Catalog
from registry.digests import checksum_of
from registry.domain import GcReport, Problem
from registry.limits import GC_MIN_AGE
from registry.store import BlobStore, StoredFile

#: Files younger than this are never reported as waste nor removed, in seconds.
DEFAULT_MIN_AGE = GC_MIN_AGE


@dataclass(frozen=True)
class WastePlan:
    """What a store holds that no live version needs, in the store's order, with when it was looked at.

    ``blobs`` are unreferenced files under the blob directory (``digest``
    ``None`` for a stray file not named by one); ``temporary_files`` are
    every temporary file. Whether each is old enough to remove is
    :meth:`is_young`, judged against ``now`` so the report and the removal
    agree.
    """

    blobs: tuple[StoredFile, ...]
    temporary_files: tuple[StoredFile, ...]
    now: float
    min_age: float

    def is_young(self, file: StoredFile) -> bool:
        """Whether ``file`` is within the grace period, so it stays whatever it is."""
        return file.mtime > self.now - self.min_age

    def problems(self) -> list[Problem]:
        """The waste old enough to remove, as ``verify`` reports it (``orphan_blob``, ``stale_temp``)."""
        found = []
        for blob in self.blobs:
            if not self.is_young(blob):
                what = checksum_of(blob.digest) if blob.digest else f"stray file {blob.path}"
                found.append(Problem("orphan_blob", f"{what} ({blob.size} bytes) is used by no live version"))
        for temp in self.temporary_files:
            if not self.is_young(temp):
                found.append(Problem("stale_temp", f"temporary file {temp.path} ({temp.size} bytes)"))
        return found


def plan_waste(store: BlobStore, live: Iterable[str], min_age: float = DEFAULT_MIN_AGE) -> WastePlan:
    """Scan ``store`` once for what none of the ``live`` digests needs."""
    needed = set(live)
    return WastePlan(
        blobs=tuple(blob for blob in store.blobs() if blob.digest not in needed),
        temporary_files=tuple(store.temporary_files()),
        now=time.time(),
        min_age=min_age,
    )


def _duration(seconds: float) -> str:
    if seconds < 120:
        return f"{max(seconds, 0):.0f} s"
    if seconds < 7200:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"


def execute(plan: WastePlan, catalog: Catalog, store: BlobStore, *, dry_run: bool) -> GcReport:
    """Remove (or, with ``dry_run``, only list) the plan's waste; what stays is in ``kept`` with the reason."""
    young = f"younger than min_age ({_duration(plan.min_age)})"
    removed: list[str] = []
    kept: list[tuple[str, str]] = []
    freed = 0
    for blob in plan.blobs:
        if blob.digest is None:  # not ours to judge: report, never delete
            kept.append((str(blob.path), "not named by a digest: not modelshelf's, so never removed"))
            continue
        name = checksum_of(blob.digest)
        if plan.is_young(blob):
            kept.append((name, f"{young}: {_duration(plan.now - blob.mtime)} old"))
        elif dry_run or catalog.free_blob_if_unreferenced(blob.digest, blob.size, store.delete):
            removed.append(name)
            freed += blob.size
        else:
            kept.append((name, "in use again (registered meanwhile) or already gone"))
    for temp in plan.temporary_files:
        if plan.is_young(temp):
            kept.append((str(temp.path), f"{young}: {_duration(plan.now - temp.mtime)} old"))
            continue
        if not dry_run:
            store.remove_file(temp)
        removed.append(str(temp.path))
        freed += temp.size
    return GcReport(removed=removed, freed_bytes=freed, dry_run=dry_run, kept=kept)
