"""``verify``, ``gc`` and ``repair``: checking a registry end to end, removing what nothing needs, setting damage aside.

All three walk the catalog and the store side by side; none trusts one to
describe the other.

* ``verify`` reports, for every live version, a missing blob, a blob of
  another size (``size_mismatch``) and with ``deep`` one of another SHA-256
  (``checksum_mismatch``), a catalog row whose digest is not a digest
  (``invalid_digest``: reported, never used as a path, and the rest still
  checked), a version ``repair`` marked ``damaged``, plus catalog schema
  drift; those make the report not ``ok``. Blobs no live version references
  and temporary files older than the grace period are reported as waste.
  A symbolic link where a directory or a blob of the store belongs is
  reported (``symlink``) and makes the report not ``ok``: modelshelf never
  creates one, and nothing here enters, lists through or deletes through it.
* ``verify(sample=(i, n))`` re-hashes only the i-th of n slices of the
  blobs (a blob's slice is its digest's first 32 bits modulo n, so it never
  moves and the n slices cover every blob exactly once): a nightly job
  scrubs everything over n nights, like restic's ``--read-data-subset``.
  ``max_duration`` stops the re-hashing once that many seconds have passed
  (after at least one blob, so every run makes progress) and the report
  names what it did not reach. Presence and sizes are checked for all.
* ``verify`` also walks the catalog's trust: every event chain (accidental
  damage is visible without a key), and with a key every model's seal and
  every version's signature (``legacy_signature`` for v1 ones, which do not
  cover the import inventory).
* ``gc`` removes exactly that waste (one :class:`~registry.maintenance.waste.WastePlan`
  is what ``verify`` reports and ``gc`` carries out), and reports what it kept and why. A
  blob is removed only under the catalog lock after re-checking that no
  live version references it, and only when older than ``min_age`` (one
  hour by default): a register in flight in another process may have just
  published it and not yet committed its row. Temporary files get the same
  grace. ``quarantine/`` is never walked, so never collected.
* ``repair`` re-hashes every live blob; a damaged one (wrong size or hash,
  not a regular file) is moved into ``quarantine/`` (on an object store:
  copied server-side to a ``quarantine/`` key, then deleted), and it and a
  missing one are marked damaged in the catalog. Nothing is deleted. A mark
  heals as soon as the same digest comes back verified: a register or an
  import of the same bytes, the bytes restored in place, or ``source`` (a
  second store holding them: copied in, verified by hash); an object store
  is also healed from this machine's verified cache when it still holds
  them (re-hashed first: the cache is only trusted after its hash).
"""

from __future__ import annotations

import os
import re
import shutil
import time
from collections.abc import Iterable

from registry.catalog import Catalog
from registry.digests import checksum_of
from registry.domain import GcReport, Problem, RepairReport, VerifyReport
from registry.errors import CorruptedArtifact, InvalidArgument, InvalidPath
from registry.maintenance.waste import DEFAULT_MIN_AGE, WastePlan, execute, plan_waste
from registry.store import BlobStore, LocalBlobStore, check_digest, open_store
from registry.trust import signing

__all__ = [
    "DEFAULT_MIN_AGE",
    "HEAL_HINT",
    "WastePlan",
    "check_sample",
    "collect_garbage",
    "in_slice",
    "parse_sample",
    "plan_waste",
    "repair",
    "verify",
]

_SAMPLE = re.compile(r"\s*(\d+)\s*/\s*(\d+)\s*")
HEAL_HINT = "re-register the same bytes, import a bundle holding them, or run `modelshelf repair --from OTHER_STORE`"


def parse_sample(text: str) -> tuple[int, int]:
    """``"i/N"`` (as ``verify --sample`` takes it) as ``(i, N)``, checked by :func:`check_sample`."""
    found = _SAMPLE.fullmatch(text) if isinstance(text, str) else None
    if found is None or not 1 <= int(found.group(1)) <= int(found.group(2)):
        raise InvalidArgument(f"--sample takes i/N with whole numbers 1 <= i <= N (e.g. 3/7), not {text!r}")
    return int(found.group(1)), int(found.group(2))


def check_sample(sample: object) -> tuple[int, int]:
    """``sample`` if it is ``(i, n)`` with integers ``1 <= i <= n``; else a ValueError saying what to give."""
    if (
        not isinstance(sample, tuple)
        or len(sample) != 2
        or not all(isinstance(x, int) and not isinstance(x, bool) for x in sample)
        or not 1 <= sample[0] <= sample[1]
    ):
        raise InvalidArgument(
            f"sample must be (i, n) with whole numbers 1 <= i <= n, the i-th of n slices (e.g. (3, 7)), not {sample!r}"
        )
    return sample[0], sample[1]


def in_slice(digest: str, sample: tuple[int, int] | None) -> bool:
    """Whether the blob ``digest`` belongs to slice ``i`` of ``n`` (every blob is in exactly one)."""
    if sample is None:
        return True
    i, n = sample
    return int(digest[:8], 16) % n == i - 1


def _is_digest(digest: object) -> bool:
    """Whether the catalog's digest may name a blob: the store's own check, so both agree on what is one."""
    try:
        check_digest(digest)
    except CorruptedArtifact:
        return False
    return True


def _by_digest(live: Iterable[tuple[str, str, int]]) -> dict[str, tuple[int, list[str]]]:
    """Live versions grouped by their bytes, in the catalog's order: shared bytes are checked once."""
    groups: dict[str, tuple[int, list[str]]] = {}
    for ref, digest, size in live:
        groups.setdefault(digest, (size, []))[1].append(ref)
    return groups


def _invalid_detail(digest: object) -> str:
    return (
        f"the catalog records the digest {str(digest)[:80]!r}, which is not 64 hex characters, so its bytes cannot "
        "be looked up: the row was edited by hand or the catalog is damaged; restore it from a backup"
    )


def verify(
    catalog: Catalog,
    store: BlobStore,
    *,
    deep: bool,
    min_age: float = DEFAULT_MIN_AGE,
    key: bytes | None = None,
    sample: tuple[int, int] | None = None,
    max_duration: float | None = None,
) -> VerifyReport:
    """Check every live version's blob, the catalog schema and its trust, and look for waste."""
    problems = [Problem("schema", detail) for detail in catalog.schema_problems(deep=deep)]
    problems.extend(Problem(kind, detail, ref) for kind, detail, ref in catalog.trust_findings())
    if key is not None:
        problems.extend(_signature_problems(catalog, key))
    live = catalog.live_blobs()
    marks = {digest: damage for digest, _, _, damage in catalog.damaged_blobs()}
    hashed: list[str] = []
    not_reached: list[str] = []
    started = time.monotonic()
    for digest, (size, refs) in _by_digest(live).items():
        if not _is_digest(digest):
            problems.extend(Problem("invalid_digest", _invalid_detail(digest), ref) for ref in refs)
            continue
        if digest in marks:
            detail = (
                f"marked damaged by `modelshelf repair`: its blob {checksum_of(digest)} {marks[digest]}; {HEAL_HINT}"
            )
            problems.extend(Problem("damaged", detail, ref) for ref in refs)
            continue
        rehash = deep and in_slice(digest, sample)
        if rehash and max_duration is not None and hashed and time.monotonic() - started >= max_duration:
            not_reached.extend(refs)
            rehash = False
        problem = _check_blob(store, digest, size, rehash)
        if rehash and (problem is None or problem.kind == "checksum_mismatch"):
            hashed.append(digest)
        if problem is not None:
            problems.extend(Problem(problem.kind, problem.detail, ref) for ref in refs)
    problems.extend(plan_waste(store, (digest for _, digest, _ in live), min_age).problems())
    problems.extend(_link_problems(store))
    return VerifyReport(
        problems=problems,
        versions_checked=len(live),
        deep=deep,
        sample=sample,
        hashed=hashed,
        stopped_early=bool(not_reached),
        not_reached=not_reached,
    )


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
    for name, ref, checksum, canary in catalog.live_canaries():
        if isinstance(canary, str):
            problems.append(Problem("canary_mismatch", canary, ref))
        elif not signing.canary_is_valid(key, canary.hmac, name, checksum, canary.to_json()):
            what = "no MAC" if canary.hmac is None else "a MAC that does not match it"
            detail = f"its prediction canary has {what} under this key (altered outside modelshelf): check refuses it"
            problems.append(Problem("canary_mismatch", detail, ref))
    return problems


def _check_blob(store: BlobStore, digest: str, size: int, rehash: bool) -> Problem | None:
    actual_size = store.size_of(digest)
    if actual_size is None:
        return Problem("missing_blob", f"blob {checksum_of(digest)} is missing from {store.location}")
    if actual_size != size:
        return Problem("size_mismatch", f"blob {checksum_of(digest)} has {actual_size} bytes, expected {size}")
    if rehash:
        actual = store.hash_of(digest)
        if actual is None:  # gone since its size was read (or the size came from a stale listing)
            return Problem("missing_blob", f"blob {checksum_of(digest)} is missing from {store.location}")
        if actual != digest:
            return Problem("checksum_mismatch", f"blob {checksum_of(digest)} hashes to {checksum_of(actual)}")
    return None


def _link_problems(store: BlobStore) -> list[Problem]:
    problems = []
    for link in store.links():
        what = f"the blob {checksum_of(link.digest)}" if link.digest else "a directory of the store (or of its cache)"
        detail = (
            f"{link.path} is a symbolic link where {what} belongs; modelshelf never creates links and never "
            "follows them (gc and cache clear leave what it points to alone): remove the link"
        )
        problems.append(Problem("symlink", detail))
    return problems


def collect_garbage(catalog: Catalog, store: BlobStore, *, dry_run: bool, min_age: float = DEFAULT_MIN_AGE) -> GcReport:
    """Remove (or list, with ``dry_run``) unreferenced blobs and stale temporary files older than ``min_age``.

    The waste is planned by the same scan ``verify`` reports
    (:func:`~registry.maintenance.waste.plan_waste`), then carried out.
    What is waste but stays is listed in ``kept`` with the reason.
    """
    plan = plan_waste(store, (digest for _, digest, _ in catalog.live_blobs()), min_age)
    return execute(plan, catalog, store, dry_run=dry_run)


def _damage(store: BlobStore, digest: str, size: int) -> str | None:
    """What is wrong with the blob, re-hashed from the store itself (never a cache), or ``None`` if intact."""
    actual_size = store.size_of(digest)
    if actual_size is None:
        if isinstance(store, LocalBlobStore) and os.path.lexists(store.path_of(digest)):
            return "is not a regular file (a link, a directory or a device)"
        return "is missing"
    if actual_size != size:
        return f"has {actual_size} bytes, expected {size}"
    actual = store.hash_of(digest)
    if actual is None:
        return "is missing"
    return None if actual == digest else f"hashes to {checksum_of(actual)}"


def repair(
    catalog: Catalog, store: BlobStore, *, dry_run: bool, source: str | os.PathLike[str] | None = None
) -> RepairReport:
    """Quarantine and mark every damaged or missing live blob, then heal what can be healed (see the module)."""
    other = _source_store(source) if source is not None else None
    marks = {digest: damage for digest, _, _, damage in catalog.damaged_blobs()}
    report = RepairReport(dry_run=dry_run)
    for digest, (size, refs) in _by_digest(catalog.live_blobs()).items():
        if not _is_digest(digest):
            report.unhealed.extend((ref, _invalid_detail(digest)) for ref in refs)
            continue
        found = _damage(store, digest, size)
        damage = marks.get(digest)
        if found is None:
            if damage is not None:  # the bytes are back in place: heal without copying
                _heal(catalog, store, digest, size, refs, "its bytes are back in the store", report)
            continue
        if damage is None or found != "is missing":  # new damage, or other bad bytes under a marked name
            damage = found
            _set_aside(catalog, store, digest, size, damage, refs, report)
        origin = next((s for s in _origins(store, other) if _intact(s, digest, size)), None)
        if origin is not None:
            _heal(catalog, store, digest, size, refs, f"copied from {origin.location}, verified", report, origin)
        else:
            why = f"not found intact in {other.location}; " if other is not None else ""
            report.unhealed.extend((ref, f"blob {checksum_of(digest)} {damage}; {why}{HEAL_HINT}") for ref in refs)
    return report


def _source_store(source: str | os.PathLike[str]) -> BlobStore:
    """The store to copy healthy bytes from: it must exist (a typo must not read as "the bytes are nowhere")."""
    other = open_store(source)
    if isinstance(other, LocalBlobStore) and not (other.root / "blobs").is_dir():
        raise InvalidPath(
            f"--from {os.fspath(source)}: there is no blob store there (no blobs/ directory); give the directory "
            "of another registry's store (its home, by default) or an object-store URL"
        )
    return other


def _set_aside(
    catalog: Catalog, store: BlobStore, digest: str, size: int, damage: str, refs: list[str], report: RepairReport
) -> None:
    """Move the damaged bytes into quarantine and mark the blob (or, dry, say it would)."""
    if report.dry_run:
        if damage != "is missing":
            report.quarantined.append((checksum_of(digest), "(dry run: would move it into quarantine/)"))
        report.marked.extend((ref, f"blob {checksum_of(digest)} {damage}") for ref in refs)
        return
    where = store.quarantine(digest)
    if where is not None:
        report.quarantined.append((checksum_of(digest), where))
    marked = catalog.mark_damaged(digest, size, damage)
    report.marked.extend((ref, f"blob {checksum_of(digest)} {damage}") for ref in marked)


def _origins(store: BlobStore, other: BlobStore | None) -> list[BlobStore]:
    """Where intact bytes may be found: the store given, then an object store's own local cache."""
    cache = getattr(store, "cache", None)  # only an object store has one: not part of the protocol
    return [origin for origin in (other, cache) if isinstance(origin, BlobStore)]


def _intact(other: BlobStore, digest: str, size: int) -> bool:
    try:
        return other.size_of(digest) == size and other.hash_of(digest) == digest
    except (CorruptedArtifact, OSError):
        return False


def _heal(
    catalog: Catalog,
    store: BlobStore,
    digest: str,
    size: int,
    refs: list[str],
    how: str,
    report: RepairReport,
    other: BlobStore | None = None,
) -> None:
    """Clear the blob's mark, first copying it in from ``other`` (verified by hash) when given."""
    if report.dry_run:
        report.healed.extend((ref, f"(dry run) would heal: {how}") for ref in refs)
        return
    if other is None:
        healed = catalog.heal(digest, size, lambda: None)
    else:
        failed = [(ref, f"the copy from {other.location} did not verify; {HEAL_HINT}") for ref in refs]
        try:
            with other.open_verified(digest, size) as reader:  # read once, hashed, then copied
                staged = store.stage(lambda file: shutil.copyfileobj(reader, file, 1024 * 1024))
        except CorruptedArtifact:  # changed since it was checked: keep the mark
            report.unhealed.extend(failed)
            return
        with staged:
            if staged.digest != digest or staged.size != size:
                report.unhealed.extend(failed)
                return
            healed = catalog.heal(digest, size, staged.publish)
    report.healed.extend((ref, how) for ref in healed)
