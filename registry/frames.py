"""Results as pandas DataFrames: ``search``, ``versions``, ``metrics_history`` and ``events`` with ``as_frame=True``.

``pd.DataFrame(reg.search(...))`` leaves params, metrics and tags as
nested dicts and times as Python objects. These functions flatten them the
way MLflow's ``search_runs`` does, one column per key, named as the search
language names the field (``metrics.accuracy``, ``params.clf__C``,
``tags.team``, ``lineage.commit``), so a column name is also a filter::

    >>> frame = reg.search("iris-knn", as_frame=True)                  # doctest: +SKIP
    >>> frame.sort_values("metrics.accuracy")[["ref", "params.n_neighbors"]]  # doctest: +SKIP

Column types are fixed, whatever the rows:

* ``created_at``, ``at`` and ``timestamp`` are ``datetime64[ns, UTC]``;
  ``version``, ``size`` and ``id`` are ``int64``; text is pandas' ``string``.
* ``metrics.KEY`` is ``float64``, ``NaN`` where a version lacks the metric.
* ``params.KEY`` keeps its JSON type when every version that has it agrees:
  ``int64`` (``Int64``, with ``<NA>``, where some versions lack it), ``float64``
  for numbers that are not all integers, ``bool`` (``boolean``), ``string``;
  any other mix, and lists or dicts, stay Python objects in an ``object``
  column, ``None`` where missing. A param whose value is ``None`` counts as
  absent, as in ``search``.
* ``tags.KEY`` is ``string``; ``step`` and an event's ``version`` are ``Int64``,
  ``<NA>`` where there is none.

An empty result is an empty frame that still has the fixed columns, so code
that selects them works on zero rows. pandas is imported by the first call,
never by ``import registry``; without it the call raises
:class:`~registry.errors.MissingDependency` naming the extra to install.
"""

from __future__ import annotations

import sys
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

from registry.domain import Event, Lineage, MetricPoint, ModelVersion
from registry.errors import MissingDependency
from registry.limits import MAX_INT64

if TYPE_CHECKING:  # re-exported for the facade's annotations, which may not import pandas themselves
    from pandas import DataFrame as DataFrame
    from pandas import Series

#: The columns every versions frame starts with, and their types; ``metrics.*``, ``params.*``, ``tags.*`` follow.
VERSION_COLUMNS: dict[str, str] = {
    "name": "string",
    "version": "int64",
    "ref": "string",
    "created_at": "datetime64[ns, UTC]",
    "format": "string",
    "size": "int64",
    "checksum": "string",
    "description": "string",
    "aliases": "object",
    "signed": "bool",
}
#: The lineage columns that end every versions frame: search field → :class:`~registry.domain.Lineage` field.
LINEAGE_COLUMNS: dict[str, tuple[str, str]] = {
    "lineage.data": ("data", "string"),
    "lineage.commit": ("git_commit", "string"),
    "lineage.dirty": ("git_dirty", "boolean"),
    "lineage.script": ("script", "string"),
    "lineage.user": ("user", "string"),
    "lineage.host": ("host", "string"),
    "lineage.modelshelf_version": ("modelshelf_version", "string"),
    "lineage.parent": ("parent", "string"),
}
#: The columns of a metric history frame.
HISTORY_COLUMNS: dict[str, str] = {
    "name": "string",
    "version": "int64",
    "key": "string",
    "value": "float64",
    "step": "Int64",
    "timestamp": "datetime64[ns, UTC]",
}
#: The columns of an audit trail frame.
EVENT_COLUMNS: dict[str, str] = {
    "id": "int64",
    "at": "datetime64[ns, UTC]",
    "action": "string",
    "model": "string",
    "version": "Int64",
    "alias": "string",
    "old": "object",
    "new": "object",
    "user": "string",
    "host": "string",
}


def versions_frame(versions: Iterable[ModelVersion]) -> DataFrame:
    """One row per version, in the order given; ``metrics.*``, ``params.*``, ``tags.*`` flattened, keys sorted.

    What ``search`` and ``versions`` return with ``as_frame=True``; also
    usable on any list of :class:`~registry.domain.ModelVersion` you
    already hold (``best`` results gathered across models, say).

    >>> versions_frame([]).columns[:4].tolist()                          # doctest: +SKIP
    ['name', 'version', 'ref', 'created_at']
    """
    pd = _pandas()
    rows = list(versions)
    columns: dict[str, Series] = {
        "name": _typed(pd, [mv.name for mv in rows], "string"),
        "version": _typed(pd, [mv.version for mv in rows], "int64"),
        "ref": _typed(pd, [mv.ref for mv in rows], "string"),
        "created_at": _typed(pd, [mv.created_at for mv in rows], "datetime64[ns, UTC]"),
        "format": _typed(pd, [mv.format for mv in rows], "string"),
        "size": _typed(pd, [mv.size for mv in rows], "int64"),
        "checksum": _typed(pd, [mv.checksum for mv in rows], "string"),
        "description": _typed(pd, [mv.description for mv in rows], "string"),
        "aliases": _typed(pd, [tuple(mv.aliases) for mv in rows], "object"),
        "signed": _typed(pd, [mv.hmac is not None for mv in rows], "bool"),
    }
    for key in sorted({key for mv in rows for key in mv.metrics}):
        columns[f"metrics.{key}"] = _typed(pd, [mv.metrics.get(key) for mv in rows], "float64")
    for key in sorted({key for mv in rows for key, value in mv.params.items() if value is not None}):
        values = [mv.params.get(key) for mv in rows]
        columns[f"params.{key}"] = _typed(pd, values, _param_dtype(values))
    for key in sorted({key for mv in rows for key in mv.tags}):
        columns[f"tags.{key}"] = _typed(pd, [mv.tags.get(key) for mv in rows], "string")
    for column, (attribute, dtype) in LINEAGE_COLUMNS.items():
        columns[column] = _typed(pd, [_lineage(mv.lineage, attribute) for mv in rows], dtype)
    return pd.DataFrame(columns)


def history_frame(points: Iterable[MetricPoint], name: str | None = None) -> DataFrame:
    """One row per logged value (``Registry.metrics_history``), in its order: by version, step, then time.

    ``name`` fills the ``name`` column, so histories of several models can
    be concatenated; ``step`` is ``<NA>`` for values logged without one.
    """
    pd = _pandas()
    rows = list(points)
    return pd.DataFrame(
        {
            "name": _typed(pd, [name] * len(rows), "string"),
            "version": _typed(pd, [p.version for p in rows], "int64"),
            "key": _typed(pd, [p.key for p in rows], "string"),
            "value": _typed(pd, [p.value for p in rows], "float64"),
            "step": _typed(pd, [p.step for p in rows], "Int64"),
            "timestamp": _typed(pd, [p.timestamp for p in rows], "datetime64[ns, UTC]"),
        }
    )


def events_frame(events: Iterable[Event]) -> DataFrame:
    """One row per audit event (``Registry.events``), oldest first; ``old`` and ``new`` stay Python values."""
    pd = _pandas()
    rows = list(events)
    return pd.DataFrame(
        {
            column: _typed(pd, [getattr(event, column) for event in rows], dtype)
            for column, dtype in EVENT_COLUMNS.items()
        }
    )


def _pandas() -> Any:
    """pandas, imported now (never at ``import registry``), or the error that says which extra brings it."""
    try:
        import pandas
    except ImportError:
        raise MissingDependency(
            "pandas", "pandas", "as_frame=True needs pandas: pip install 'modelshelf[pandas]'"
        ) from None
    return pandas


def _typed(pd: Any, values: list[Any], dtype: str) -> Series:
    """A column of ``dtype``; ``object`` columns keep each value as it is (tuples, lists and dicts included)."""
    if dtype == "object":
        series = pd.Series(range(len(values)), dtype=object)  # filled one by one: a list of lists is not a 2-D shape
        for index, value in enumerate(values):
            series.iat[index] = value
        return series
    if dtype == "float64":
        values = [float("nan") if value is None else value for value in values]
    return pd.Series(values, dtype=dtype)


def _param_dtype(values: list[Any]) -> str:
    """The column type of one param: its JSON type where every version that has it agrees (see the module doc)."""
    present = [value for value in values if value is not None]
    complete = len(present) == len(values)
    kinds = {type(value) for value in present}
    if kinds == {bool}:
        return "bool" if complete else "boolean"
    if kinds == {int}:
        if all(-MAX_INT64 - 1 <= value <= MAX_INT64 for value in present):
            return "int64" if complete else "Int64"
        return "object"
    if kinds <= {int, float}:
        return "float64"
    if kinds == {str}:
        return "string"
    return "object"


def _lineage(lineage: Lineage | None, attribute: str) -> Any:
    return None if lineage is None else getattr(lineage, attribute)


def require_pandas(purpose: str) -> None:
    """Raise :class:`MissingDependency` naming ``purpose`` unless pandas can be imported."""
    try:
        import pandas  # noqa: F401
    except ImportError:
        advice = f"{purpose} needs pandas: pip install 'modelshelf[pandas]'"
        raise MissingDependency("pandas", "pandas", advice) from None


def input_frame(data: Any, columns: Any = None, *, purpose: str) -> DataFrame:
    """``pandas.DataFrame(data, columns=columns)``: rows, records or a dict of columns, as a model's input.

    The prediction server turns JSON tables into frames here, so pandas is
    imported by this module alone; ``purpose`` names what needed it in the
    :class:`MissingDependency` raised without pandas.
    """
    require_pandas(purpose)
    import pandas

    return pandas.DataFrame(data, columns=columns)


def csv_frame(text: str, *, purpose: str) -> DataFrame:
    """A CSV table with a header row, read by pandas as ``pandas.read_csv`` reads a file."""
    require_pandas(purpose)
    import io

    import pandas

    return pandas.read_csv(io.StringIO(text))


def is_frame(value: Any) -> bool:
    """Whether ``value`` is a pandas DataFrame, without importing pandas when nobody has."""
    pandas = sys.modules.get("pandas")
    return pandas is not None and isinstance(value, pandas.DataFrame)
