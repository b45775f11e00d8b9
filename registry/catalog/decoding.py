"""Raw catalog values turned into the values the column types give, with as little Python per value as exactness allows.

Why this exists: reads that return thousands of rows (a metric's history,
a broad search) spent most of their time in per-value Python, not in the
database. SQLAlchemy's result processors call two Python functions per
timestamp (the dialect's parser, then :class:`~registry.catalog.schema.UTCDateTime`),
``json.loads`` ran once per row on an environment that every version of a
model shares, and a frozen dataclass's ``__init__`` sets each field through
``object.__setattr__``. The bulk reads therefore select those columns
untyped (:func:`raw`) and decode them here:

* :func:`utc` parses what SQLite stores in one C call, and gives exactly
  what ``UTCDateTime`` gives on every engine (:func:`utc_all` a column of them);
* :class:`JsonTexts` parses each distinct JSON text once per read and
  hands each row its own copy, so no two results share a mutable value
  (:func:`loads` parses what does not repeat, with half ``json.loads``'s overhead);
* :func:`collector_paused` keeps the garbage collector from traversing
  the objects a bulk read is still building;
* :func:`plain_dataclass` checks, at import, that a frozen dataclass may
  be built without its ``__init__`` (which sets each field through
  ``object.__setattr__``), as the bulk reads build the domain's values.

The slow, typed reads stay the reference: the tests compare both on every engine.
"""

from __future__ import annotations

import gc
import json
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from itertools import repeat
from json.scanner import make_scanner
from operator import attrgetter
from typing import Any, TypeVar, cast

from sqlalchemy import JSON, ColumnElement, Dialect, String, type_coerce

_T = TypeVar("_T")
_from_iso = datetime.fromisoformat
_zone_of = attrgetter("tzinfo")
_UTC_ONLY = {UTC}
#: The length of what SQLAlchemy's SQLite type writes: ``2024-01-31 23:59:59.123456``.
_SQLITE_TIMESTAMP_LENGTH = 26


def raw(column: Any) -> ColumnElement[Any]:
    """``column`` selected without its type's result processing (what the driver returns), under its own name."""
    return type_coerce(column, String()).label(column.key)


def utc(value: datetime | str | None) -> datetime | None:
    """A raw timestamp as :class:`~registry.catalog.schema.UTCDateTime` returns it: timezone-aware UTC.

    SQLite gives text (parsed as SQLAlchemy's SQLite type parses it, with
    ``datetime.fromisoformat``), the server drivers naive datetimes; either
    way the stored wall time is read as UTC.
    """
    if value is None:
        return None
    if isinstance(value, str):
        if len(value) == _SQLITE_TIMESTAMP_LENGTH:  # the common case: one C call, the zone parsed with it
            try:
                parsed = _from_iso(value + "+00:00")
            except ValueError:
                parsed = None
            if parsed is not None and parsed.tzinfo is UTC:
                return parsed
        return _from_iso(value).replace(tzinfo=UTC)
    return value.replace(tzinfo=UTC)


def utc_all(values: Sequence[Any]) -> list[datetime | None]:
    """``[utc(value) for value in values]``, in a few C calls when every value is SQLite's text of a naive time.

    A history of 10,000 points spent a fifth of its Python in ``utc``'s
    per-value checks. Here the zone is appended to every text and the lot
    parsed by ``map`` (no Python per value); any value this cannot take as
    ``utc`` would (a datetime from a server driver, ``None``, a text
    carrying its own zone, which then fails to parse) sends the whole list
    through :func:`utc` instead, so the result is the same either way.
    """
    try:  # str.__add__ refuses anything but text (TypeError), fromisoformat a text it cannot take (ValueError)
        parsed: list[datetime | None] = list(map(_from_iso, map(str.__add__, values, repeat("+00:00"))))
    except (TypeError, ValueError):
        return [utc(value) for value in values]
    if values and set(map(_zone_of, parsed)) != _UTC_ONLY:  # never seen: utc() then reads the wall time as UTC
        return [utc(value) for value in values]
    return parsed


_SCALARS = (str, int, float, bool, type(None))


def _is_flat(value: Any) -> bool:
    """Whether a shallow copy of a parsed JSON value is a full copy (nothing mutable inside)."""
    if isinstance(value, dict):
        return all(type(item) in _SCALARS for item in value.values())
    if isinstance(value, list):
        return all(type(item) in _SCALARS for item in value)
    return type(value) in _SCALARS


def _copy(value: Any) -> Any:
    if type(value) is dict:
        return dict(value)
    if type(value) is list:
        return list(value)
    return value


def is_immutable(value: Any) -> bool:
    """Whether ``value`` holds nothing that can change: scalars and tuples of them, at any depth."""
    if type(value) is tuple:
        return all(is_immutable(item) for item in value)
    return type(value) in _SCALARS


_scan = make_scanner(json.JSONDecoder())  # type: ignore[arg-type]  # typeshed types the C scanner oddly


def loads(text: Any) -> Any:
    """``json.loads(text)``, calling the C scanner directly for text as modelshelf writes it (half the time).

    ``json.loads`` wraps the scanner in Python that skips surrounding white
    space and refuses trailing data; text with neither (what the catalog's
    JSON serializer writes) gives the same value straight from the scanner,
    and anything else goes through ``json.loads`` itself, errors included.
    """
    if type(text) is str:
        try:
            value, end = _scan(text, 0)
        except (StopIteration, ValueError, RecursionError):  # json.loads says what is wrong, in its own words
            return json.loads(text)
        if end == len(text):
            return value
    return json.loads(text)


@contextmanager
def collector_paused() -> Iterator[None]:
    """Python's cyclic garbage collector paused while a bulk read builds its results, then as it was.

    Building 5,000 versions makes some 200,000 objects, and the collector,
    run every 700 allocations, kept traversing them (and, every so often,
    the whole heap): 20% of a broad search's time, profiled. What a read
    builds has no reference cycles (dicts, tuples, frozen dataclasses), so
    no collection could free any of it; the objects are collected as usual
    once the read is done.
    """
    paused = gc.isenabled()
    if paused:
        gc.disable()
    try:
        yield
    finally:
        if paused:
            gc.enable()


_json_is_text: dict[str, bool] = {}


def json_is_text(dialect: Dialect) -> bool:
    """Whether ``dialect``'s driver returns JSON columns as text (SQLAlchemy then parses them) or parsed already.

    psycopg parses ``json`` columns itself, and SQLAlchemy's JSON type then
    has no result processor; SQLite's and MySQL's drivers return text.
    """
    known = _json_is_text.get(dialect.name)
    if known is None:
        known = JSON().dialect_impl(dialect).result_processor(dialect, None) is not None
        _json_is_text[dialect.name] = known
    return known


class JsonTexts:
    """Decodes one read's raw JSON column values as the JSON type would, each distinct text parsed once.

    A text seen again (every version of a model has the same environment)
    gives a fresh shallow copy of the first parse when that is a full copy,
    and is parsed again otherwise, so callers never share a mutable value.
    ``dialect=None`` reads values that are Python already (a row assembled
    from what was just written).
    """

    def __init__(self, dialect: Dialect | None) -> None:
        self.parses = dialect is not None and json_is_text(dialect)
        self._seen: dict[Any, tuple[bool, Any]] = {}
        self._made: dict[Any, Any] = {}

    def __call__(self, value: Any) -> Any:
        """The Python value of one raw JSON column value (``None`` for SQL ``NULL``)."""
        if value is None or not self.parses:
            return value
        seen = self._seen.get(value)
        if seen is not None:
            flat, parsed = seen
            return _copy(parsed) if flat else loads(value)
        parsed = loads(value)
        flat = _is_flat(parsed)
        self._seen[value] = (flat, parsed if flat else None)
        return _copy(parsed) if flat else parsed

    def once(self, value: Any) -> Any:
        """The Python value of a raw JSON value not expected to repeat (no memo kept)."""
        if value is None or not self.parses:
            return value
        return loads(value)

    def made(self, value: Any, make: Callable[[Any], _T], immutable: Callable[[_T], bool]) -> _T:
        """``make(parsed value)``, kept per distinct text when ``immutable`` says the result can be shared."""
        if not self.parses or value is None:
            return make(value)
        found = self._made.get(value, self)
        if found is not self:
            return cast(_T, found)
        result = make(loads(value))
        if immutable(result):
            self._made[value] = result
        return result


def plain_dataclass(cls: type[_T], names: tuple[str, ...]) -> type[_T]:
    """``cls``, checked to be a frozen dataclass with exactly the fields ``names`` that its ``__init__`` only stores.

    The bulk reads make such instances directly (``object.__new__`` and the
    field dict in one assignment), three times faster than the generated
    ``__init__``, which sets each field through ``object.__setattr__``. That
    is only the same object while ``__init__`` does nothing else: no
    ``__post_init__``, no ``__slots__``, no field outside ``__init__``. This
    check runs when the reading module is imported, so a change to the
    class fails at once instead of building a different object.
    """
    problem = None
    if not is_dataclass(cls) or not cls.__dataclass_params__.frozen:  # type: ignore[attr-defined]
        problem = "is not a frozen dataclass"
    elif hasattr(cls, "__post_init__") or "__slots__" in cls.__dict__:
        problem = "has a __post_init__ or __slots__"
    elif tuple(cls.__dataclass_fields__) != names or not all(field.init for field in fields(cls)):
        problem = f"has the fields {tuple(cls.__dataclass_fields__)}, not {names}"
    if problem is not None:
        raise TypeError(f"{cls.__name__} {problem}: the catalog's bulk reads cannot build it directly; update them")
    return cls
