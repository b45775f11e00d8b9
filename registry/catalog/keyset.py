"""Ordered reads that stop early: search results and pages, by offset or after a cursor (keyset pagination).

A page "after" a cursor seeks past the sort values of the previous page's
last version (``WHERE (value, version) > (…)``, spelled out term by term)
instead of skipping ``offset`` rows, so page 20,000 costs what page 1 does.
The order is the one :mod:`registry.catalog.search` defines (missing values
last, then name, then version), total, so no version is skipped or repeated
between pages, ties included.

How each order reaches an index and stops after ``limit`` rows:

* a plain column (``version``, …) is one statement the index of
  ``(model_id, version)`` already serves;
* one ``metrics.KEY`` (within one model, also ``metrics.KEY, version [desc]``:
  what ``best`` asks) is read in two parts, each in index order: the
  versions having the metric, joined from ``ix_latest_metrics_model_id``
  or its ``_desc`` twin (whose entries end with the version number, so ties
  come out by version; ``ix_latest_metrics_key_value`` across models) in
  value order, then,
  once those run out, the versions lacking it, by version. The filter is
  spelled as correlated ``EXISTS`` probes, which stop with the read;
* any other order (several keys, params, tags, lineage) is one statement
  sorted by the database, as before: correct, and paginated by cursor too,
  but it reads every matching row before the first is returned.

A cursor is an opaque token: base64url of JSON holding a fingerprint of the
model, filter and order it was made for, and the last row's sort values.
Anything else (edited, truncated, from another query) is refused with
:class:`~registry.errors.InvalidArgument`, never guessed at.
"""

from __future__ import annotations

import base64
import binascii
import contextlib
import hashlib
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, Connection, Select, and_, exists, false, func, literal, or_, select

from registry import query as q
from registry.catalog.schema import LatestMetricRow, ModelRow, VersionRow, aliased
from registry.catalog.search import Term, compile_filter, order_columns, sort_terms
from registry.errors import InvalidArgument
from registry.limits import MAX_INT64

#: The sort values of one row, in the order of its terms (``None`` where the version lacks the key).
Key = list[Any]

_CURSOR_VERSION = 1
#: Longer than any cursor a page makes (its sort values are bounded by what the catalog stores), short enough
#: that decoding a hostile one costs nothing.
MAX_CURSOR_LENGTH = 256 * 1024


@dataclass(frozen=True)
class Query:
    """What a read asks for: the model (``None``: every model), the parsed filter and order."""

    name: str | None
    where: q.Node | None
    order: Sequence[q.OrderKey]

    @property
    def one_model(self) -> bool:
        return self.name is not None

    def fingerprint(self) -> str:
        """What a cursor is bound to: a page of another query must not be continued with it."""
        text = repr((self.name, self.where, tuple(self.order)))
        return hashlib.sha256(text.encode()).hexdigest()[:16]


def encode_cursor(query: Query, key: Key) -> str:
    """The opaque cursor that continues ``query`` after the row whose sort values are ``key``."""
    values = [{"t": value.isoformat()} if isinstance(value, datetime) else value for value in key]
    text = json.dumps([_CURSOR_VERSION, query.fingerprint(), values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_cursor(query: Query, cursor: object) -> Key:
    """The sort values ``cursor`` carries, checked against ``query``'s terms; ``InvalidArgument`` otherwise."""
    if not isinstance(cursor, str) or not cursor:
        raise InvalidArgument(f"after must be a cursor (the next_cursor of a previous page, a str), not {cursor!r}")
    hint = "pass the next_cursor of a page of the same model, filter and order, or leave after= out to start"
    if len(cursor) > MAX_CURSOR_LENGTH:
        raise InvalidArgument(f"after={_shown(cursor)} is {len(cursor):,} characters, more than any cursor: {hint}")
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4))
        version, fingerprint, values = json.loads(raw)
    except (binascii.Error, UnicodeDecodeError, ValueError, TypeError, RecursionError):  # nested [[[…]]]
        raise InvalidArgument(f"after={_shown(cursor)} is not a page cursor modelshelf made: {hint}") from None
    if version != _CURSOR_VERSION or not isinstance(values, list):
        raise InvalidArgument(f"after={_shown(cursor)} is not a page cursor modelshelf made: {hint}")
    if fingerprint != query.fingerprint():
        raise InvalidArgument(f"after={_shown(cursor)} was made for another model, filter or order: {hint}")
    terms = sort_terms(query.order, one_model=query.one_model)
    if len(values) != len(terms):
        raise InvalidArgument(f"after={_shown(cursor)} does not match its order's terms: {hint}")
    return [_value(term, value, cursor, hint) for term, value in zip(terms, values, strict=True)]


def _value(term: Term, value: Any, cursor: str, hint: str) -> Any:
    if value is None and term.nullable:
        return None
    if term.kind is datetime and isinstance(value, dict) and isinstance(value.get("t"), str):
        try:
            moment = datetime.fromisoformat(value["t"])
        except ValueError:
            moment = None
        if moment is not None and moment.tzinfo is not None:
            return moment
    elif term.kind is float and isinstance(value, (int, float)) and not isinstance(value, bool):
        with contextlib.suppress(OverflowError):  # an int too large for a float
            if math.isfinite(float(value)):  # json reads NaN and Infinity, which no metric holds
                return float(value)
    elif term.kind is int and isinstance(value, int) and not isinstance(value, bool):
        if -MAX_INT64 - 1 <= value <= MAX_INT64:  # what every catalog's integer columns hold
            return value
    elif term.kind in (str, bool) and type(value) is term.kind:
        return value
    raise InvalidArgument(f"after={_shown(cursor)} holds {value!r} where a {term.kind.__name__} belongs: {hint}")


def _shown(cursor: str) -> str:
    return repr(cursor if len(cursor) <= 60 else cursor[:57] + "...")


def seek(terms: Sequence[Term], key: Key) -> ColumnElement[bool]:
    """Rows strictly after the row whose sort values are ``key``, in the order of ``terms``.

    Lexicographic, term by term: after on this term, or equal on it and after on the rest. A term a
    row lacks sorts after every value of it, and rows lacking it are equal on it.
    """
    term, value = terms[0], key[0]
    column = term.expression
    if value is None:  # the last row lacks it: only rows lacking it too can follow, by the next terms
        same: ColumnElement[bool] = column.is_(None)
        after: ColumnElement[bool] = false()
    else:
        same = column == value
        beyond = column < value if term.descending else column > value
        after = or_(column.is_(None), beyond) if term.nullable else beyond
    if len(terms) == 1:
        return after
    return or_(after, and_(same, seek(terms[1:], key[1:])))


@dataclass(frozen=True)
class Page:
    """Rows of :data:`~registry.catalog.version_rows.VERSION_COLUMNS`, and the sort values of each."""

    rows: list[Any]
    keys: list[Key]


def read(
    connection: Connection,
    base: Select[Any],
    query: Query,
    *,
    limit: int | None,
    offset: int = 0,
    after: Key | None = None,
    model_id: int | None = None,
) -> Page:
    """The versions of ``base`` (live ones, of ``model_id`` if given) matching ``query``, in its order."""
    metric = _single_metric(query.order, model_id is not None)
    if metric is not None and limit is not None:
        return _two_parts(connection, base, query, metric, limit, offset, after, model_id)
    terms = sort_terms(query.order, one_model=query.one_model)
    statement = base if query.where is None else base.where(compile_filter(query.where))
    if after is not None:
        statement = statement.where(seek(terms, after))
    statement = statement.add_columns(*(term.expression for term in terms)).order_by(*order_columns(terms))
    statement = statement.limit(limit) if limit is not None else statement
    statement = statement.offset(offset) if offset else statement
    return _page(connection.execute(statement).all(), len(terms))


def _single_metric(order: Sequence[q.OrderKey], one_model: bool) -> q.OrderKey | None:
    """The metric of an order one metric index gives: ``metrics.KEY``, or within one model ``metrics.KEY, version``."""
    if not order or order[0].field.kind != "metrics":
        return None
    if len(order) == 1 or (one_model and len(order) == 2 and order[1].field.kind == "version"):
        return order[0]
    return None


def _two_parts(
    connection: Connection,
    base: Select[Any],
    query: Query,
    metric: q.OrderKey,
    limit: int,
    offset: int,
    after: Key | None,
    model_id: int | None,
) -> Page:
    """Versions having the metric, in value order from its index, then those lacking it, by version."""
    value = aliased(LatestMetricRow, "sort_metric")
    ties = sort_terms(query.order[1:], one_model=query.one_model)  # by version (newest first if asked), after name
    on = (value.version_id == VersionRow.id) & (value.key == metric.field.key)
    having_ties = ties
    if model_id is not None:
        on = on & (value.model_id == model_id)  # the per-model index, read in order
        # its copy of the version number: ties come out of the index by version, with no sort of a tie group
        having_ties = [Term(value.version, ties[0].descending, False, int)]
    filtered = base if query.where is None else base.where(compile_filter(query.where, correlated=True))
    having = [Term(value.value, metric.descending, False, float), *having_ties]
    first = filtered.join(value, on)
    if after is not None and after[0] is not None:
        first = first.where(seek(having, after))
    rows: list[Any] = []
    if after is None or after[0] is not None:
        first = first.add_columns(*(term.expression for term in having)).order_by(*order_columns(having))
        first = first.limit(limit).offset(offset) if offset else first.limit(limit)
        rows = list(connection.execute(first).all())
        if len(rows) == limit:
            return _page(rows, len(having))
        if offset:  # how many have the metric, to know how far into the others this page starts
            having_count = offset + len(rows) if rows else _count(connection, filtered.join(value, on))
            offset = max(0, offset - having_count)
    lacking = filtered.where(~exists(select(literal(1)).where(on)))
    if after is not None and after[0] is None:
        lacking = lacking.where(seek(ties, after[1:]))
    lacking = lacking.add_columns(literal(None), *(term.expression for term in ties)).order_by(*order_columns(ties))
    lacking = lacking.limit(limit - len(rows))
    lacking = lacking.offset(offset) if offset else lacking
    return _page([*rows, *connection.execute(lacking).all()], len(having))


def _count(connection: Connection, statement: Select[Any]) -> int:
    return int(connection.execute(select(func.count()).select_from(statement.subquery())).scalar_one())


def _page(rows: Sequence[Any], extra: int) -> Page:
    """Split each row into its version columns and its ``extra`` trailing sort values."""
    return Page([row[:-extra] for row in rows], [list(row[-extra:]) for row in rows])


def total(connection: Connection, base: Select[Any], where: q.Node | None, model_id: int) -> int:
    """How many of the model's live versions match ``where``: the model's counter when there is no filter."""
    if where is None:
        return int(connection.execute(select(ModelRow.live_versions).where(ModelRow.id == model_id)).scalar_one())
    return _count(connection, base.where(compile_filter(where)))
