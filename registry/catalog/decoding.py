"""Raw catalog values turned into the values the column types give, with as little Python per value as exactness allows.

Why this exists: reads that return thousands of rows (a metric's history,
a broad search) spent most of their time in per-value Python, not in the
database. SQLAlchemy's result processors call two Python functions per
timestamp (the dialect's parser, then :class:`~registry.catalog.schema.UTCDateTime`),
and a frozen dataclass's ``__init__`` sets each field through
``object.__setattr__``. The bulk reads therefore select those columns
untyped (:func:`raw`) and decode them here:

* :func:`utc` parses what SQLite stores in one C call, and gives exactly
  what ``UTCDateTime`` gives on every engine;
* :func:`plain_dataclass` checks, at import, that a frozen dataclass may
  be built without its ``__init__`` (which sets each field through
  ``object.__setattr__``), as the bulk reads build the domain's values.

The slow, typed reads stay the reference: the tests compare both on every engine.
"""

from __future__ import annotations

from dataclasses import fields, is_dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import ColumnElement, String, type_coerce

_from_iso = datetime.fromisoformat
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


def plain_dataclass(cls: type[Any], names: tuple[str, ...]) -> type[Any]:
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
