"""The catalog's half of ``verify``: walk every event chain, every model's seal and the imports index.

These read the whole catalog, so they run in ``verify`` only, never on a
load. Each finding is ``(kind, detail, ref)``:

* ``trail_broken`` — an event whose link does not follow from the previous
  one: edited, removed from the middle, reordered, or inserted by hand.
  Checked with or without a key for unkeyed links; keyed links need the key.
* ``state_unsealed`` / ``state_mismatch`` (with a key only) — a model whose
  rows are not its sealed state (see :mod:`registry.catalog.sealing`).
* ``rolled_back`` (with a key) — a model's sealed state is older than one
  this client has seen (:mod:`registry.freshness`).
* ``inventory_index`` — ``version_imports`` disagrees with a version's
  recorded inventory, so ``audit --deny`` would answer wrongly.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Connection, select

from registry.catalog.chain import check_link
from registry.catalog.inventory import index_name
from registry.catalog.schema import EventRow, ModelRow, VersionImportRow, VersionRow
from registry.catalog.sealing import check_state
from registry.errors import UntrustedArtifact

Finding = tuple[str, str, str | None]

_EVENTS = select(
    EventRow.id,
    EventRow.at,
    EventRow.action,
    EventRow.model,
    EventRow.version,
    EventRow.alias,
    EventRow.old,
    EventRow.new,
    EventRow.user_name,
    EventRow.host,
    EventRow.link,
).order_by(EventRow.model, EventRow.id)


def trail_findings(connection: Connection, key: bytes | None) -> Iterator[Finding]:
    """Every event whose link is not the one its predecessor and fields give (at most one per model)."""
    previous: dict[str, str | None] = {}
    broken: set[str] = set()
    for row in connection.execute(_EVENTS).mappings():
        model = row["model"]
        if model in broken:
            continue
        state = check_link(key, previous.get(model), row, row["link"])
        if state == "broken":
            broken.add(model)
            yield (
                "trail_broken",
                f"event #{row['id']} ({row['action']} of {model!r}) does not follow from the event before it: "
                "the audit trail was edited, shortened or reordered outside modelshelf",
                None,
            )
        previous[model] = row["link"]


def state_findings(
    connection: Connection, key: bytes, observe: Callable[[str | None, str, int], None] | None = None
) -> Iterator[Finding]:
    """Every model whose rows are not its sealed state under ``key``, or (``observe``) older than one seen."""
    for (name,) in connection.execute(select(ModelRow.name).order_by(ModelRow.name)):
        verdict = check_state(connection, key, name, with_metrics=True)
        if verdict is None:
            continue
        if verdict.problem is not None:
            yield verdict.problem, verdict.detail, None
        elif observe is not None:
            try:
                observe(verdict.catalog_id, name, verdict.seq)
            except UntrustedArtifact as exc:
                yield "rolled_back", str(exc), None


def index_findings(connection: Connection) -> Iterator[Finding]:
    """Every version whose ``version_imports`` rows are not its recorded inventory."""
    indexed: dict[int, set[str]] = {}
    for version_id, name in connection.execute(select(VersionImportRow.version_id, VersionImportRow.name)):
        indexed.setdefault(version_id, set()).add(name)
    rows = connection.execute(
        select(VersionRow.id, ModelRow.name, VersionRow.version, VersionRow.imports)
        .join(ModelRow, ModelRow.id == VersionRow.model_id)
        .where(VersionRow.deleted_at.is_(None))
        .order_by(ModelRow.name, VersionRow.version)
    )
    for version_id, name, number, imports in rows:
        recorded = {index_name(str(item)) for item in imports or ()}
        found = indexed.get(version_id, set())
        if recorded != found:
            missing, extra = sorted(recorded - found), sorted(found - recorded)
            yield (
                "inventory_index",
                f"the imports index lacks {missing} and has {extra} beyond the recorded inventory: "
                "`modelshelf audit` would answer wrongly; it was edited outside modelshelf",
                f"{name}:{number}",
            )
