"""Metric histories and series: indexed queries, and results built with as little Python per row as exactness allows.

``metrics_history`` over a model with 10,000 versions returns 10,000
points. Profiled, the time went to SQLite sorting each version's points
(the portable ``step IS NULL DESC, step`` cannot be read from an index),
to the timestamp's two result processors, and to ``MetricPoint.__init__``;
so the ordering is spelled per engine (:class:`~registry.catalog.dialects.NullsFirst`),
``ix_metrics_history`` holds every column a history reads in that order,
the timestamp is selected raw and parsed in one call, and the points are
built directly (see :mod:`registry.catalog.decoding`). One metric's
history (the common read) no longer seeks ``ix_metrics_history`` once per
version: ``metrics`` repeats each row's model and version number, so it is
one range of ``ix_metrics_model_key`` in history order, the model's
deleted versions read once (``ix_versions_deleted``) and left out; its
timestamps are parsed as one column (:func:`~registry.catalog.decoding.utc_all`).

Order, the same on every engine: by version, then step with unset steps
first, then time, then insertion.

A model's metric names are read by skipping through ``ix_latest_metrics_model_id``:
one seek per name (the first key after the previous one that a live version
has), not a scan of every version's metrics, so they cost the same at a
million versions as at ten.

A series (each version's current value of a key, what a chart draws) is
one query per key whose rows are already the ``(version, value)`` pairs
returned, so no Python runs per row. Both run on the driver's cursor
(:mod:`registry.catalog.prepared`), with the garbage collector paused.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from sqlalchemy import Connection, bindparam, select

from registry.catalog.decoding import collector_paused, plain_dataclass, raw, utc_all
from registry.catalog.dialects import NullsFirst
from registry.catalog.prepared import Prepared
from registry.catalog.schema import LatestMetricRow, MetricRow, VersionRow
from registry.domain import MetricPoint

#: The live versions of one model (``model_id`` bound).
LIVE_OF_MODEL = (VersionRow.model_id == bindparam("model_id")) & VersionRow.deleted_at.is_(None)

_POINT = plain_dataclass(MetricPoint, ("version", "key", "value", "step", "timestamp"))
_ORDER = (VersionRow.version, NullsFirst(MetricRow.step), MetricRow.timestamp, MetricRow.id)
_TIMESTAMP = raw(MetricRow.timestamp)
_HISTORY = (
    select(VersionRow.version, MetricRow.key, MetricRow.value, MetricRow.step, _TIMESTAMP)
    .join(VersionRow, VersionRow.id == MetricRow.version_id)
    .where(LIVE_OF_MODEL)
    .order_by(*_ORDER)
)
_DELETED_OF_MODEL = select(VersionRow.id).where(
    VersionRow.model_id == bindparam("model_id"), VersionRow.deleted_at.is_not(None)
)
# One range of ix_metrics_model_key, in history order; the model's deleted versions are read once, as a list the
# rows are checked against, not looked up row by row. The key is fetched even when given: MySQL's binary collation
# ignores trailing spaces, so the stored key is the answer.
_HISTORY_OF_METRIC = (
    select(MetricRow.version, MetricRow.key, MetricRow.value, MetricRow.step, _TIMESTAMP)
    .where(
        MetricRow.model_id == bindparam("model_id"),
        MetricRow.key == bindparam("key"),
        MetricRow.version_id.not_in(_DELETED_OF_MODEL),
    )
    .order_by(MetricRow.version, NullsFirst(MetricRow.step), MetricRow.timestamp, MetricRow.id)
)
_HISTORY_OF_VERSION = _HISTORY.where(VersionRow.version == bindparam("version"))
_SERIES = (
    select(VersionRow.version, LatestMetricRow.value)
    .join(VersionRow, VersionRow.id == LatestMetricRow.version_id)
    .where(LIVE_OF_MODEL, LatestMetricRow.key == bindparam("key"))
    .order_by(VersionRow.version)
)
_FIRST_NAME = (
    select(LatestMetricRow.key)
    .join(VersionRow, VersionRow.id == LatestMetricRow.version_id)
    .where(LatestMetricRow.model_id == bindparam("model_id"), VersionRow.deleted_at.is_(None))
    .order_by(LatestMetricRow.key)
    .limit(1)
)
_NEXT_NAME = _FIRST_NAME.where(LatestMetricRow.key > bindparam("after"))
# Run on the driver's cursor: no column needs SQLAlchemy's conversion, and a row object per point cost 10%.
_HISTORY_FAST, _HISTORY_OF_METRIC_FAST = Prepared(_HISTORY), Prepared(_HISTORY_OF_METRIC)
_HISTORY_OF_VERSION_FAST, _SERIES_FAST = Prepared(_HISTORY_OF_VERSION), Prepared(_SERIES)


def model_history(connection: Connection, model_id: int, metric: str | None) -> list[MetricPoint]:
    """Every logged value of the live versions of the model ``model_id`` (only ``metric``'s, if given)."""
    with collector_paused():
        if metric is None:
            return _points(_HISTORY_FAST.rows(connection, {"model_id": model_id}))
        return _points(_HISTORY_OF_METRIC_FAST.rows(connection, {"model_id": model_id, "key": metric}))


def version_history(connection: Connection, model_id: int, version: int) -> list[MetricPoint]:
    """Every logged value of one live version of the model ``model_id``, in history order."""
    return _points(_HISTORY_OF_VERSION_FAST.rows(connection, {"model_id": model_id, "version": version}))


def metric_names(connection: Connection, model_id: int) -> list[str]:
    """The distinct keys of the current metrics of the model's live versions, sorted: one index seek each."""
    names: list[str] = []
    found = connection.execute(_FIRST_NAME, {"model_id": model_id}).scalar()
    while found is not None:
        names.append(found)
        found = connection.execute(_NEXT_NAME, {"model_id": model_id, "after": found}).scalar()
    return names


def metric_series(connection: Connection, model_id: int, keys: Sequence[str]) -> dict[str, list[tuple[int, float]]]:
    """Each live version's current value of each of ``keys`` (distinct), as ``(version, value)`` by version."""
    with collector_paused():
        return {key: _SERIES_FAST.rows(connection, {"model_id": model_id, "key": key}) for key in keys}


def _points(rows: Sequence[Any]) -> list[MetricPoint]:
    """``MetricPoint(*row)`` for each row, built directly (see :func:`~registry.catalog.decoding.plain_dataclass`).

    The timestamps are parsed as one column first (:func:`~registry.catalog.decoding.utc_all`).
    """
    new, set_fields, point_type = object.__new__, object.__setattr__, _POINT
    times = utc_all([row[4] for row in rows])
    return [
        set_fields(point := new(point_type), "__dict__", {
            "version": version, "key": key, "value": value, "step": step, "timestamp": timestamp
        }) or point
        for (version, key, value, step, _), timestamp in zip(rows, times, strict=True)
    ]  # fmt: skip
