"""``verify`` and ``gc``: checking a registry end to end, and removing what nothing needs.

Both walk the catalog and the store side by side; neither trusts one to
describe the other.

* ``verify`` reports, for every live version, a missing blob or a blob of
  another size (and with ``deep``, another SHA-256), plus catalog schema
  drift; those make the report not ``ok``. Blobs no live version references
  and temporary files older than the grace period are reported as waste.
  A symbolic link where a directory or a blob of the store belongs is
  reported (``symlink``) and makes the report not ``ok``: modelshelf never
  creates one, and nothing here enters, lists through or deletes through it.
* ``verify`` also walks the catalog's trust: every event chain (accidental
  damage is visible without a key), and with a key every model's seal and
  every version's signature (``legacy_signature`` for v1 ones, which do not
  cover the import inventory).
* ``gc`` removes exactly that waste. A blob is removed only under the
  catalog lock after re-checking that no live version references it, and
  only when older than ``min_age`` (one hour by default): a register in
  flight in another process may have just published it and not yet
  committed its row. Temporary files get the same grace.
"""

from __future__ import annotations

import time

from registry import signing
from registry.catalog import Catalog
from registry.domain import GcReport, Problem, VerifyReport
from registry.store import LocalBlobStore

#: Files younger than this are never reported as waste nor removed, in seconds.
DEFAULT_MIN_AGE = 3600.0


def verify(
    catalog: Catalog,
    store: LocalBlobStore,
    *,
    deep: bool,
    min_age: float = DEFAULT_MIN_AGE,
    key: bytes | None = None,
) -> VerifyReport:
    """Check every live version's blob, the catalog schema and its trust, and look for waste."""
    problems = [Problem("schema", detail) for detail in catalog.schema_problems(deep=deep)]
    problems.extend(Problem(kind, detail, ref) for kind, detail, ref in catalog.trust_findings())
    if key is not None:
        problems.extend(_signature_problems(catalog, key))
    live = catalog.live_blobs()
    checked: dict[str, Problem | None] = {}  # digest → its problem, so shared bytes are checked once
    for ref, digest, size in live:
        if digest not in checked:
            checked[digest] = _check_blob(store, ref, digest, size, deep)
        problem = checked[digest]
        if problem is not None:
            problems.append(Problem(problem.kind, problem.detail, ref))
    problems.extend(_waste(catalog, store, {digest for _, digest, _ in live}, min_age))
    problems.extend(_link_problems(store))
    return VerifyReport(problems=problems, versions_checked=len(live), deep=deep)


def _signature_problems(catalog: Catalog, key: bytes) -> list[Problem]:
    problems = []
    for mv in catalog.live_versions():
        state = signing.check_model_version(key, mv)
        if state == "legacy":
            detail = "signed with a v1 signature, which does not cover its import inventory; re-register it"
            problems.append(Problem("legacy_signature", detail, mv.ref))
        elif state == "missing":
            problems.append(Problem("unsigned", "has no signature: a keyed load refuses it", mv.ref))
        elif state == "invalid":
            detail = "its signature does not match its checksum, size, inventory or params under this key"
            problems.append(Problem("signature_mismatch", detail, mv.ref))
    return problems


def _check_blob(store: LocalBlobStore, ref: str, digest: str, size: int, deep: bool) -> Problem | None:
    actual_size = store.size_of(digest)
    if actual_size is None:
        return Problem("missing_blob", f"blob sha256:{digest} is missing from {store.location}", ref)
    if actual_size != size:
        return Problem("checksum_mismatch", f"blob sha256:{digest} has {actual_size} bytes, expected {size}", ref)
    if deep:
        actual = store.hash_of(digest)
        if actual != digest:
            return Problem("checksum_mismatch", f"blob sha256:{digest} hashes to sha256:{actual}", ref)
    return None


def _waste(catalog: Catalog, store: LocalBlobStore, live: set[str], min_age: float) -> list[Problem]:
    cutoff = time.time() - min_age
    problems = []
    for blob in store.blobs():
        if blob.digest not in live and blob.mtime <= cutoff:
            what = f"sha256:{blob.digest}" if blob.digest else f"stray file {blob.path}"
            problems.append(Problem("orphan_blob", f"{what} ({blob.size} bytes) is used by no live version"))
    for temp in store.temporary_files():
        if temp.mtime <= cutoff:
            problems.append(Problem("stale_temp", f"temporary file {temp.path} ({temp.size} bytes)"))
    return problems


def _link_problems(store: LocalBlobStore) -> list[Problem]:
    problems = []
    for link in store.links():
        what = f"the blob sha256:{link.digest}" if link.digest else "a directory of the store (or of its cache)"
        detail = (
            f"{link.path} is a symbolic link where {what} belongs; modelshelf never creates links and never "
            "follows them (gc and cache clear leave what it points to alone): remove the link"
        )
        problems.append(Problem("symlink", detail))
    return problems


def collect_garbage(
    catalog: Catalog, store: LocalBlobStore, *, dry_run: bool, min_age: float = DEFAULT_MIN_AGE
) -> GcReport:
    """Remove (or list, with ``dry_run``) unreferenced blobs and stale temporary files older than ``min_age``."""
    cutoff = time.time() - min_age
    live = {digest for _, digest, _ in catalog.live_blobs()}
    removed: list[str] = []
    freed = 0
    for blob in store.blobs():
        if blob.digest in live or blob.mtime > cutoff:
            continue
        if blob.digest is None:  # not ours to judge: report, never delete
            continue
        if dry_run:
            removed.append(f"sha256:{blob.digest}")
            freed += blob.size
        elif catalog.free_blob_if_unreferenced(blob.digest, blob.size, store.delete):
            removed.append(f"sha256:{blob.digest}")
            freed += blob.size
    for temp in store.temporary_files():
        if temp.mtime > cutoff:
            continue
        if not dry_run:
            store.remove_file(temp)
        removed.append(str(temp.path))
        freed += temp.size
    return GcReport(removed=removed, freed_bytes=freed, dry_run=dry_run)
