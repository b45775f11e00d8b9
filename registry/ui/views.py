"""What each page shows, built as plain data from the public :class:`~registry.Registry` API.

Nothing here knows of HTTP or templates: the routes (:mod:`registry.ui.routes`)
call these functions and hand the result to a template. Keeping the data
plain makes each view testable without a server, and keeps every database
read going through the facade, so the trust checks of a keyed registry
apply to the web view exactly as to ``get`` and ``search``.
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from registry.domain import AliasPeriod, Event, ModelSummary, ModelVersion, VersionPage
from registry.errors import InvalidInput, InvalidQuery, TrustError
from registry.facade import Registry
from registry.query import Field, field_name, parse_filter

#: A value longer than this is shown folded (its start, and the rest behind a click).
FOLD_AT = 80

#: Page sizes the versions table offers; the first is the default.
PAGE_SIZES = (50, 100, 200, 500)

#: Columns of the versions table that sort in the database, mapped to their field in the filter language.
SORTABLE = {"version": "version", "created": "created_at", "format": "format"}

#: At most this many metric columns are chosen by default (the first keys, sorted, of every live version).
DEFAULT_METRIC_COLUMNS = 4


def show_value(value: Any) -> str:
    """A param, environment or signature value as text: strings as they are, anything else as JSON."""
    if isinstance(value, str):
        return value
    return json.dumps(value, sort_keys=True, ensure_ascii=False, default=str)


def flatten(mapping: Mapping[str, Any], prefix: str = "") -> list[tuple[str, str]]:
    """Nested dicts as ``outer__inner`` keys, scikit-learn's spelling for pipeline params, sorted.

    >>> flatten({"clf": {"C": 1.0}, "scaler": "StandardScaler()"})
    [('clf__C', '1.0'), ('scaler', 'StandardScaler()')]
    """
    rows: list[tuple[str, str]] = []
    for key in sorted(mapping):
        value = mapping[key]
        full = f"{prefix}__{key}" if prefix else str(key)
        if isinstance(value, dict) and value:
            rows.extend(flatten(value, full))
        else:
            rows.append((full, show_value(value)))
    return rows


@dataclass(frozen=True)
class QueryError:
    """A malformed filter, with the text split at the position the parser named."""

    message: str
    before: str
    at: str
    after: str
    position: int | None


def query_error(error: InvalidQuery) -> QueryError:
    """Where in the query the problem is, so the page can mark it (``position`` is 0-based)."""
    query, position = error.query, error.position
    if position is None:
        return QueryError(str(error), query, "", "", None)
    position = max(0, min(position, len(query)))
    at = query[position : position + 1] or " "  # past the end: mark the place where something was expected
    return QueryError(str(error), query[:position], at, query[position + 1 :], position)


@dataclass(frozen=True)
class ModelRow:
    """A line of the models page; ``matching`` counts the versions a filter found (``None`` without one)."""

    summary: ModelSummary
    matching: int | None = None


def models(reg: Registry, where: str | None) -> list[ModelRow]:
    """Every model, or with ``where`` those with a live version matching it (``InvalidQuery`` propagates)."""
    summaries = reg.model_summaries()
    if not where:
        return [ModelRow(summary) for summary in summaries]
    parse_filter(where)  # a malformed filter is one InvalidQuery, before any model is read
    # counted by the database, model by model: no version is built in Python, whatever their number
    counts = {summary.name: reg.versions_page(summary.name, where=where, limit=1).total for summary in summaries}
    return [ModelRow(summary, counts[summary.name]) for summary in summaries if counts[summary.name]]


def order_by(sort: str, descending: bool) -> str:
    """The ``order_by`` text for a column of the versions table (``version``, ``created``, a metric key…).

    >>> order_by("metric:f1 score", True)
    'metrics.`f1 score` desc'
    """
    if sort.startswith("metric:"):
        field = field_name(Field("metrics", sort.removeprefix("metric:")))
    else:
        field = SORTABLE.get(sort, "version")
    return f"{field} desc" if descending else field


@dataclass(frozen=True)
class VersionsTable:
    """One page of the versions table and what it needs to draw its controls."""

    page: VersionPage
    number: int
    pages: int
    per: int
    sort: str
    descending: bool
    metrics: list[str]
    available_metrics: list[str]
    where: str | None
    #: The cursor this page was read after (``None``: by offset), and the cursors of the pages before it.
    after: str | None = None
    back: tuple[str, ...] = ()


def versions_table(
    reg: Registry,
    name: str,
    *,
    number: int,
    per: int,
    sort: str,
    descending: bool,
    metrics: Sequence[str],
    where: str | None,
    after: str | None = None,
    back: Sequence[str] = (),
) -> VersionsTable:
    """Page ``number`` (1-based) of ``name``'s versions, sorted and limited in the database.

    With ``after`` (the ``next_cursor`` of the page before) the page is read
    after that cursor, which costs what page 1 costs however deep it is;
    ``number`` then only labels it, and ``back`` (the cursors of the pages
    before, at most :data:`BACK_CURSORS` kept) lets the previous link page
    by cursor too. Without it the page is read by offset.

    The metric columns offered, and the first :data:`DEFAULT_METRIC_COLUMNS`
    shown when none are chosen, are the keys of every live version, so a
    newest version without metrics yet hides none of the others'.
    ``per`` must be one of :data:`PAGE_SIZES` (``InvalidInput`` otherwise).
    """
    if per not in PAGE_SIZES:
        raise InvalidInput(f"per={per} must be one of {', '.join(map(str, PAGE_SIZES))}")
    known = reg.metric_names(name)
    ordered = order_by(sort, descending)
    if after is None:
        page = reg.versions_page(name, where=where or None, order_by=ordered, offset=(number - 1) * per, limit=per)
    else:
        page = reg.versions_page(name, where=where or None, order_by=ordered, after=after, limit=per)
    available = sorted(set(known) | set(metrics))
    chosen = list(metrics) if metrics else known[:DEFAULT_METRIC_COLUMNS]
    pages = max(1, -(-page.total // per))
    kept = tuple(back[-BACK_CURSORS:]) if after is not None else ()
    return VersionsTable(page, number, pages, per, sort, descending, chosen, available, where, after, kept)


#: How many cursors of earlier pages a versions page link carries (for "previous"); farther back pages by offset.
BACK_CURSORS = 8


def pager_links(table: VersionsTable) -> dict[str, dict[str, Any]]:
    """The query changes of the pager's links: ``first``, ``previous``, ``next``, ``last`` (those that apply).

    Next goes after this page's cursor (flat at any depth); previous after
    the last cursor of ``back``, or page 1, or by offset when the trail ran
    out; last by offset (a cursor only reads forward).
    """
    links: dict[str, dict[str, Any]] = {}
    number = table.number
    if number > 1:
        links["first"] = {"page": 1}
        if number == 2:
            links["previous"] = {"page": 1}
        elif table.back:
            links["previous"] = {"page": number - 1, "after": table.back[-1], "back": list(table.back[:-1])}
        else:
            links["previous"] = {"page": number - 1}
    if table.page.next_cursor is not None:
        trail = [*table.back, table.after] if table.after is not None else []
        links["next"] = {"page": number + 1, "after": table.page.next_cursor, "back": trail[-BACK_CURSORS:]}
    if number < table.pages:
        links["last"] = {"page": table.pages}
    return links


@dataclass(frozen=True)
class StepRow:
    """One logged value of a metric of a version."""

    step: int | None
    value: float
    at: datetime


@dataclass(frozen=True)
class VersionDetail:
    """Everything the version page shows."""

    mv: ModelVersion
    params: list[tuple[str, str]]
    history: dict[str, list[StepRow]]
    environment: list[tuple[str, str]]
    chain: list[str]
    signature: list[tuple[str, str]]
    canary: str | None
    load_snippet: str
    cli_snippet: str
    fetch_snippet: str


def canary_status(reg: Registry, mv: ModelVersion) -> str | None:
    """What the version page says of its prediction canary: recorded rows and methods, or ``None`` (none).

    The page never re-runs it: that unpickles the model, which a read-only
    page must not do; it names the command that does.
    """
    found = reg.canary(mv.ref)
    if found is None:
        return None
    methods = ", ".join(sorted(found.outputs))
    return f"{found.rows} rows recorded ({methods}); modelshelf check {mv.ref} re-runs it"


def version_detail(reg: Registry, name: str, version: int) -> VersionDetail:
    """One version in full (``VersionNotFound``/``ModelNotFound`` propagate, as 404s)."""
    mv = reg.get(name, version=version)
    history: dict[str, list[StepRow]] = {key: [] for key in sorted(mv.metrics)}
    for point in reg.version_history(name, version):
        history.setdefault(point.key, []).append(StepRow(point.step, point.value, point.timestamp))
    signature = [] if mv.input_signature is None else flatten(_without_empty(mv.input_signature.to_json()))
    return VersionDetail(
        mv=mv,
        params=flatten(mv.params),
        history=history,
        environment=flatten(mv.environment),
        chain=[mv.ref, *reg.ancestors(mv.ref)],
        signature=signature,
        canary=canary_status(reg, mv),
        load_snippet=f"reg.load({json.dumps(mv.ref)})",
        cli_snippet=f"modelshelf show {mv.ref}",
        fetch_snippet=f"modelshelf fetch {mv.ref}",
    )


def _without_empty(data: Mapping[str, Any]) -> dict[str, Any]:
    return {key: value for key, value in data.items() if value is not None}


def alias_marks(reg: Registry, name: str, aliases: Iterable[str]) -> dict[int, list[str]]:
    """Version → the aliases that pointed at it at some time: what the metric chart marks."""
    marks: dict[int, list[str]] = {}
    for alias in aliases:
        for period in reg.alias_history(name, alias):
            names = marks.setdefault(period.version, [])
            if alias not in names:
                names.append(alias)
    return marks


@dataclass(frozen=True)
class Timeline:
    """Each alias's periods, and (for the "as of" picker) which version each pointed at then."""

    periods: dict[str, list[AliasPeriod]]
    as_of: datetime | None
    at: dict[str, AliasPeriod | None] = field(default_factory=dict)


def timeline(reg: Registry, name: str, as_of: datetime | None) -> Timeline:
    """The alias timeline of ``name``; with ``as_of``, what each alias served at that moment."""
    aliases = reg.alias_names(name)
    periods = {alias: reg.alias_history(name, alias) for alias in aliases}
    at = {}
    if as_of is not None:
        at = {alias: next((p for p in periods[alias] if p.covers(as_of)), None) for alias in aliases}
    return Timeline(periods, as_of, at)


@dataclass(frozen=True)
class CompareRow:
    """One key of one section: its value in each version (``None``: absent), and whether they differ."""

    key: str
    values: list[str | None]
    changed: bool


def _rows(per_version: Sequence[Mapping[str, str]]) -> list[CompareRow]:
    keys = sorted({key for values in per_version for key in values})
    rows = []
    for key in keys:
        values = [values.get(key) for values in per_version]
        rows.append(CompareRow(key, values, len(set(values)) > 1))
    return rows


def compare(versions: Sequence[ModelVersion]) -> dict[str, list[CompareRow]]:
    """Side-by-side sections (params, metrics, tags, environment, signature, data fingerprint) of versions."""

    def data_of(mv: ModelVersion) -> dict[str, str]:
        lineage = mv.lineage
        if lineage is None:
            return {}
        found = {"data": lineage.data, "data_shape": lineage.data_shape, "data_columns": lineage.data_columns}
        return dict(flatten(_without_empty(found)))

    def signature_of(mv: ModelVersion) -> dict[str, str]:
        if mv.input_signature is None:
            return {}
        return dict(flatten(_without_empty(mv.input_signature.to_json())))

    return {
        "params": _rows([dict(flatten(mv.params)) for mv in versions]),
        "metrics": [
            CompareRow(row.key, [None if v is None else f"{float(v):.6g}" for v in row.values], row.changed)
            for row in _rows([{key: repr(value) for key, value in mv.metrics.items()} for mv in versions])
        ],
        "tags": _rows([dict(mv.tags) for mv in versions]),
        "environment": _rows([dict(flatten(mv.environment)) for mv in versions]),
        "signature": _rows([signature_of(mv) for mv in versions]),
        "data fingerprint": _rows([data_of(mv) for mv in versions]),
    }


#: The audit trail shows at most this many events, the newest.
AUDIT_LIMIT = 500


def audit(reg: Registry, model: str | None, alias: str | None, action: str | None) -> list[Event]:
    """The audit trail, newest first, filtered by model, alias and action, at most :data:`AUDIT_LIMIT`.

    The database filters and limits: only the events shown are read, whatever the length of the trail.
    """
    found = reg.events(model or None, limit=AUDIT_LIMIT, alias=alias or None, action=action or None)
    return list(reversed(found))


@dataclass(frozen=True)
class Check:
    """The outcome of re-hashing one version's artifact from this UI: when, and what was found."""

    at: datetime
    ok: bool
    detail: str


def check_artifact(reg: Registry, ref: str) -> Check:
    """Read the artifact of ``ref`` through the verified path (nothing unpickled) and say whether it matched.

    The registry keeps no record of verification runs, so the version page
    shows the last check this UI process made, and offers to make one.
    """
    try:
        with reg.open_artifact(ref) as stream:
            while stream.read(1 << 20):
                pass
    except TrustError as exc:
        return Check(datetime.now(UTC), False, str(exc))
    return Check(datetime.now(UTC), True, "the bytes in the store match the recorded digest")
