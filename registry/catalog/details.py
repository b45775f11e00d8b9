"""Each version's tags, latest metrics and aliases, read for one version or for thousands at once.

One version (a lookup) takes one round trip: the three tables in one
``UNION ALL``, run on the driver's cursor (:mod:`registry.catalog.prepared`).
Many versions (a search, a listing) take one query per table, each
ordered by version and key, so the rows group into each version's dict
with no Python per row (``itertools.groupby`` and ``dict``
over ``(key, value)`` pairs, all in C): profiled on a search returning
5,000 versions, the dispatch of 35,000 union rows in a Python loop cost as
much as the query. Keys come in binary order on every engine, so a
version's dicts list them the same way everywhere.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from itertools import groupby
from operator import itemgetter
from typing import Any

from sqlalchemy import ColumnElement, CompoundSelect, Connection, Select, bindparam, literal, null, select, union_all

from registry.catalog.history import LIVE_OF_MODEL
from registry.catalog.prepared import Prepared, run_on_driver, watched
from registry.catalog.schema import AliasRow, LatestMetricRow, TagRow, VersionRow

#: How many ids one ``IN (…)`` list carries (SQLite's old limit on bound parameters is 999).
ID_CHUNK = 500

_VersionFilter = Callable[[Any], ColumnElement[bool]]
#: A tags, a metrics and an aliases query.
_Select = Select[*tuple[Any, ...]]
_Queries = tuple[_Select, _Select, _Select]


@dataclass
class Details:
    """Tags, latest metrics and aliases by version id."""

    tags: dict[int, dict[str, str]] = field(default_factory=dict)
    metrics: dict[int, dict[str, float]] = field(default_factory=dict)
    aliases: dict[int, list[str]] = field(default_factory=dict)

    def take(self, version_id: int) -> tuple[dict[str, float], dict[str, str], list[str]]:
        """One version's metrics, tags and aliases, handed over (no copy): for reads where each version comes once."""
        return self.metrics.pop(version_id, {}), self.tags.pop(version_id, {}), self.aliases.pop(version_id, [])

    def of(self, version_id: int) -> tuple[dict[str, float], dict[str, str], list[str]]:
        """Copies of one version's metrics, tags and aliases (empty when it has none), for it to keep."""
        metrics, tags, aliases = self.metrics.get(version_id), self.tags.get(version_id), self.aliases.get(version_id)
        return (
            {} if metrics is None else dict(metrics),
            {} if tags is None else dict(tags),
            [] if aliases is None else list(aliases),
        )


def _union(version_filter: _VersionFilter) -> CompoundSelect[Any]:
    """Tags, latest metrics and aliases in one round trip: (kind, version_id, key, text, number), by kind and key."""
    return union_all(
        select(literal("t").label("kind"), TagRow.version_id, TagRow.key.label("key"), TagRow.value, null()).where(
            version_filter(TagRow.version_id)
        ),
        select(literal("m"), LatestMetricRow.version_id, LatestMetricRow.key, null(), LatestMetricRow.value).where(
            version_filter(LatestMetricRow.version_id)
        ),
        select(literal("a"), AliasRow.version_id, AliasRow.alias, null(), null()).where(
            version_filter(AliasRow.version_id)
        ),
    )


def _per_table(version_filter: _VersionFilter) -> _Queries:
    """Three queries of (version_id, key, value) rows, ordered by version and key (aliases: by version)."""
    return (
        select(TagRow.version_id, TagRow.key, TagRow.value)
        .where(version_filter(TagRow.version_id))
        .order_by(TagRow.version_id, TagRow.key),
        select(LatestMetricRow.version_id, LatestMetricRow.key, LatestMetricRow.value)
        .where(version_filter(LatestMetricRow.version_id))
        .order_by(LatestMetricRow.version_id, LatestMetricRow.key),
        select(AliasRow.version_id, AliasRow.alias)
        .where(version_filter(AliasRow.version_id))
        .order_by(AliasRow.version_id, AliasRow.alias),
    )


_OF_VERSION = Prepared(_union(lambda column: column == bindparam("version_id")))
_OF_IDS = _per_table(lambda column: column.in_(bindparam("ids", expanding=True)))
_OF_MODEL = _per_table(lambda column: column.in_(select(VersionRow.id).where(LIVE_OF_MODEL)))
_first = itemgetter(0)
_key_value = itemgetter(1, 2)
_second = itemgetter(1)


def details_of_version(connection: Connection, version_id: int) -> Details:
    """One version's tags, latest metrics and aliases, in one round trip."""
    details = Details()
    tags: dict[str, str] = {}
    metrics: dict[str, float] = {}
    aliases: list[str] = []
    for kind, _, key, text_value, number in _OF_VERSION.rows(connection, {"version_id": version_id}):
        if kind == "t":
            tags[key] = text_value
        elif kind == "m":
            metrics[key] = number
        else:
            aliases.append(key)
    # in binary key order, as the bulk reads give them (code point order is UTF-8's byte order)
    details.tags[version_id] = dict(sorted(tags.items()))
    details.metrics[version_id] = dict(sorted(metrics.items()))
    details.aliases[version_id] = aliases
    return details


class _OfIds:
    """One of the bulk detail selects for a list of ids, run on the driver's cursor with the ids bound in place.

    Through ``Connection.execute`` the expanding ``IN`` was compiled again
    for every chunk and each of 35,000 rows became a SQLAlchemy row: three
    fifths of a broad search's detail read, profiled. The statement is
    compiled once per engine and its ``IN`` list spelled for the chunk's
    length; its columns need no conversion (the single-version union,
    :data:`_OF_VERSION`, reads the same ones on the driver's cursor).
    A watched engine (see :func:`~registry.catalog.prepared.watched`), or a
    driver with another parameter style, runs it through ``execute``.
    """

    _MARKERS = {"qmark": "?", "format": "%s", "pyformat": "%s"}

    def __init__(self, statement: _Select) -> None:
        self.statement = statement
        self._spelled: dict[tuple[Any, ...], str] = {}

    def rows(self, connection: Connection, ids: Sequence[int]) -> Sequence[Any]:
        dialect = connection.dialect
        marker = self._MARKERS.get(dialect.paramstyle)
        if marker is None or watched(connection):
            return connection.execute(self.statement, {"ids": list(ids)}).all()
        key = (dialect.name, dialect.paramstyle, dialect.server_version_info, len(ids))
        sql = self._spelled.get(key)
        if sql is None:
            compiled = self.statement.compile(dialect=dialect).string
            sql = compiled.replace("__[POSTCOMPILE_ids]", ", ".join([marker] * len(ids)))
            self._spelled[key] = sql
        return run_on_driver(connection, sql, tuple(ids))


_OF_IDS_FAST = tuple(_OfIds(statement) for statement in _OF_IDS)


def details_of_ids(connection: Connection, ids: Sequence[int]) -> Details:
    """The tags, latest metrics and aliases of the versions ``ids``, in chunks every engine accepts."""
    details = Details()
    tags, metrics, aliases = _OF_IDS_FAST
    for start in range(0, len(ids), ID_CHUNK):
        chunk = ids[start : start + ID_CHUNK]
        details.tags.update(_grouped(tags.rows(connection, chunk)))
        details.metrics.update(_grouped(metrics.rows(connection, chunk)))
        for version_id, group in groupby(aliases.rows(connection, chunk), _first):
            details.aliases[version_id] = list(map(_second, group))
    return details


def details_of_model(connection: Connection, model_id: int) -> Details:
    """The tags, latest metrics and aliases of every live version of the model ``model_id``."""
    details = Details()
    _collect(connection, _OF_MODEL, {"model_id": model_id}, details)
    return details


def _collect(connection: Connection, queries: _Queries, params: dict[str, Any], into: Details) -> None:
    tags, metrics, aliases = queries  # all rows at once: SQLAlchemy builds a list of rows faster than it yields them
    into.tags.update(_grouped(connection.execute(tags, params).all()))
    into.metrics.update(_grouped(connection.execute(metrics, params).all()))
    for version_id, group in groupby(connection.execute(aliases, params).all(), _first):
        into.aliases[version_id] = list(map(_second, group))


def _grouped(rows: Iterable[Any]) -> dict[int, dict[str, Any]]:
    """``{version_id: {key: value}}`` from ``(version_id, key, value)`` rows ordered by version."""
    return {version_id: dict(map(_key_value, group)) for version_id, group in groupby(rows, _first)}
