"""The catalog's half of ``verify``: walk every event chain, every model's seal and the imports index.

These read the whole catalog, so they run in ``verify`` only, never on a
load. Each finding is ``(kind, detail, ref)``:

* ``trail_broken`` — an event whose link does not follow from the previous
  one: edited, removed from the middle, reordered, or inserted by hand.
  Checked with or without a key for unkeyed links; keyed links need the key.
* ``state_unsealed`` / ``state_mismatch`` (with a key only) — a model whose
  rows are not its sealed state (see :mod:`registry.catalog.sealing`).
* ``trail_mismatch`` — an alias or a deletion that the trail does not tell
  of (an alias moved, a version deleted or un-deleted by SQL, leaving no
  event). Checked with or without a key: without one it catches the edits
  that did not also forge events.
* ``rolled_back`` (with a key) — a model's sealed state is older than one
  this client has seen (:mod:`registry.trust.freshness`).
* ``inventory_index`` — ``version_imports`` disagrees with a version's
  recorded inventory, so ``audit --deny`` would answer wrongly.
* ``metric_index`` — a ``metrics`` or ``latest_metrics`` row whose copy of
  its version's model or number disagrees with the version: the metric
  indexes read the copies, so pages, ``best`` and histories would misorder
  or misattribute it (with a key, the seal refuses the model already).
"""

from __future__ import annotations

from collections.abc import Callable, Iterator

from sqlalchemy import Connection, or_, select

from registry.catalog.audit import EVENT_COLUMNS
from registry.catalog.chain import check_link
from registry.catalog.inventory import index_name
from registry.catalog.schema import (
    AliasRow,
    EventRow,
    LatestMetricRow,
    MetricRow,
    ModelRow,
    VersionImportRow,
    VersionRow,
)
from registry.catalog.sealing import check_state
from registry.errors import UntrustedArtifact

Finding = tuple[str, str, str | None]

_EVENTS = select(*EVENT_COLUMNS, EventRow.link).order_by(EventRow.model, EventRow.id)


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


_ALIAS_ACTIONS = ("alias.set", "alias.move", "alias.delete")


def told_findings(connection: Connection) -> Iterator[Finding]:
    """Every alias and deletion that differs from what the trail's events say it should be."""
    told_aliases: dict[tuple[str, str], int | None] = {}
    told_deleted: set[tuple[str, int]] = set()
    events = select(EventRow.model, EventRow.action, EventRow.alias, EventRow.version, EventRow.new).where(
        EventRow.action.in_((*_ALIAS_ACTIONS, "version.delete"))
    )
    for model, action, alias, version, new in connection.execute(events.order_by(EventRow.id)):
        if action == "version.delete":
            told_deleted.add((model, version))
        elif alias is not None:
            told_aliases[(model, alias)] = None if action == "alias.delete" else new
    actual_aliases = {
        (model, alias): version
        for model, alias, version in connection.execute(
            select(ModelRow.name, AliasRow.alias, VersionRow.version)
            .join(AliasRow, AliasRow.model_id == ModelRow.id)
            .join(VersionRow, VersionRow.id == AliasRow.version_id)
        )
    }
    for model, alias in sorted(set(told_aliases) | set(actual_aliases)):
        told, actual = told_aliases.get((model, alias)), actual_aliases.get((model, alias))
        if told != actual:
            said = "removed it" if told is None else f"set it to version {told}"
            now = "is not set" if actual is None else f"points at version {actual}"
            yield (
                "trail_mismatch",
                f"alias {alias!r} of {model!r} {now}, but the audit trail last {said}: it was changed outside "
                "modelshelf",
                None,
            )
    deleted = {
        (model, version)
        for model, version in connection.execute(
            select(ModelRow.name, VersionRow.version)
            .join(ModelRow, ModelRow.id == VersionRow.model_id)
            .where(VersionRow.deleted_at.is_not(None))
        )
    }
    for model, version in sorted(deleted - told_deleted):
        yield "trail_mismatch", "is deleted, but the audit trail has no deletion of it", f"{model}:{version}"
    for model, version in sorted(told_deleted - deleted):
        yield "trail_mismatch", "was deleted, says the audit trail, but is live again", f"{model}:{version}"


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


def copy_findings(connection: Connection) -> Iterator[Finding]:
    """Every version with a metric row whose copy of its model or number is not the version's (one finding each)."""
    for table, what in ((LatestMetricRow, "latest metrics"), (MetricRow, "metric history")):
        rows = connection.execute(
            select(ModelRow.name, VersionRow.version)
            .join(VersionRow, VersionRow.model_id == ModelRow.id)
            .join(table, table.version_id == VersionRow.id)
            .where(or_(table.model_id != VersionRow.model_id, table.version != VersionRow.version))
            .group_by(ModelRow.name, VersionRow.version)
            .order_by(ModelRow.name, VersionRow.version)
        )
        for name, number in rows:
            yield (
                "metric_index",
                f"its {what} name another version or model than its own: pages, best() and histories would "
                "misorder it; the catalog was edited outside modelshelf",
                f"{name}:{number}",
            )
