"""Searching versions: a parsed filter (:mod:`registry.query`) compiled to one SQL statement.

Every predicate becomes a SQLAlchemy expression with bound parameters, never
text spliced into SQL, and the database does the filtering, sorting and
limiting; Python only builds the results that come back.

Semantics, the same on every engine:

* A predicate on ``metrics.KEY``, ``params.KEY``, ``tags.KEY`` or
  ``lineage.KEY`` is true only for versions that have that key: each is an
  ``id IN (SELECT version_id …)`` over the indexed key/value table, so logic
  stays two-valued and ``not`` means exactly "not that".
* ``a != v`` and ``a not in (…)`` mean "has ``a``, and it is not ``v``".
  ``a is null`` means "has no ``a``" (a param whose JSON value is null counts
  as absent).
* ``params.KEY`` compares by the stored JSON type: ``params.k = 3`` matches
  the number 3 (or 3.0), never the string ``'3'``; ``true``/``false`` match
  booleans.
* ``like`` ignores the case of ASCII letters on every engine (MariaDB/MySQL
  fold other letters too); ``%`` matches any run, ``_`` one character, and
  ``\\`` escapes either.
* ``lineage.data`` accepts the fingerprint with or without ``sha256:``;
  ``lineage.commit = 'abc1234'`` (and ``!=``, ``in``) matches an abbreviated
  commit (4+ hex digits); ``lineage.parent`` takes a pinned reference such
  as ``'iris:3'``.
* Versions without the ordering key sort last, whatever the direction; ties
  fall back to name, then version.
"""

from __future__ import annotations

import math
import re
from collections.abc import Sequence
from typing import Any

from sqlalchemy import ColumnElement, Select, SQLColumnExpression, and_, false, not_, or_, select

from registry import query as q
from registry.catalog.schema import (
    LatestMetricRow,
    LineageRow,
    ModelRow,
    ParamValueRow,
    TagRow,
    VersionRow,
    aliased,
)
from registry.digests import digest_of
from registry.names import parse_ref
from registry.validation import dumps

_LINEAGE_COLUMNS = {
    "data": LineageRow.data_digest,
    "commit": LineageRow.git_commit,
    "dirty": LineageRow.git_dirty,
    "script": LineageRow.script,
    "user": LineageRow.user_name,
    "host": LineageRow.host,
    "modelshelf_version": LineageRow.modelshelf_version,
    "parent": LineageRow.parent_id,
}
#: The parent version and its model, outer-joined to every version row that search and lookups read.
PARENT = aliased(VersionRow, name="parent_version")
PARENT_MODEL = aliased(ModelRow, name="parent_model")
_PLAIN_COLUMNS = {
    "version": VersionRow.version,
    "created_at": VersionRow.created_at,
    "format": VersionRow.format,
    "name": ModelRow.name,
}
_ABBREVIATED_COMMIT = re.compile(r"[0-9a-f]{4,63}")
#: ``a != v`` and ``a not like p`` are "has ``a``, and not (``a = v``)": the operator tested under not.
_NEGATIONS = {"!=": "=", "not like": "like"}
#: Param kinds that count as having a value (``null`` is treated as absent).
_VALUED_KINDS = ("number", "string", "bool", "json")


def param_rows(version_id: int, params: dict[str, Any]) -> list[dict[str, Any]]:
    """The typed ``param_values`` rows of a version's top-level params, as search compares them."""
    rows = []
    for key, value in params.items():
        row: dict[str, Any] = {"version_id": version_id, "key": key, "kind": "json", "number": None, "text": None}
        if value is None:
            row["kind"] = "null"
        elif isinstance(value, bool):
            row.update(kind="bool", number=1.0 if value else 0.0)
        elif isinstance(value, (int, float)) and math.isfinite(float(value)):
            row.update(kind="number", number=float(value))
        elif isinstance(value, str):
            row.update(kind="string", text=value)
        else:
            row["text"] = dumps(value)
        rows.append(row)
    return rows


def _compare(column: SQLColumnExpression[Any], op: str, value: object) -> ColumnElement[bool]:
    if op == "=":
        return column == value
    if op == "!=":
        return column != value
    if op == "<":
        return column < value
    if op == "<=":
        return column <= value
    if op == ">":
        return column > value
    if op == ">=":
        return column >= value
    if op == "like":
        return column.ilike(value, escape="\\")
    if op == "in":
        assert isinstance(value, tuple), "the parser gives an in-list as a tuple"
        return column.in_(value)
    raise AssertionError(f"unknown operator {op!r}")  # the parser admits no other


class _Compiler:
    """Turns one parsed filter into a WHERE clause over ``versions`` joined with ``models``."""

    # -- the tree ---------------------------------------------------------------

    def node(self, node: q.Node) -> ColumnElement[bool]:
        if isinstance(node, q.And):
            return and_(*(self.node(part) for part in node.parts))
        if isinstance(node, q.Or):
            return or_(*(self.node(part) for part in node.parts))
        if isinstance(node, q.Not):
            return not_(self.node(node.part))
        if isinstance(node, q.NullCheck):
            present = self.present(node.field)
            return present if node.negated else not_(present)
        if isinstance(node, q.Membership):
            matches = self.matches(node.field, "in", node.values)
            return and_(self.present(node.field), not_(matches)) if node.negated else matches
        if isinstance(node, q.Comparison):
            if node.op in _NEGATIONS:  # "has it, and it is not …": the positive test under not
                positive = self.matches(node.field, _NEGATIONS[node.op], node.value)
                return and_(self.present(node.field), not_(positive))
            return self.matches(node.field, node.op, node.value)
        raise AssertionError(f"unknown node {node!r}")

    # -- one field ----------------------------------------------------------------

    def present(self, field: q.Field) -> ColumnElement[bool]:
        """Whether a version has a value for ``field``."""
        if field.kind in _PLAIN_COLUMNS:
            return _PLAIN_COLUMNS[field.kind].is_not(None)
        if field.kind == "params":
            return self.keyed(ParamValueRow, field.key, ParamValueRow.kind.in_(_VALUED_KINDS))
        if field.kind == "lineage":
            column = _LINEAGE_COLUMNS[field.key or ""]
            return VersionRow.id.in_(select(LineageRow.version_id).where(column.is_not(None)))
        table = LatestMetricRow if field.kind == "metrics" else TagRow
        return self.keyed(table, field.key)

    @staticmethod
    def keyed(table: Any, key: str | None, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return VersionRow.id.in_(select(table.version_id).where(table.key == key, *conditions))

    def matches(self, field: q.Field, op: str, value: Any) -> ColumnElement[bool]:
        """Versions whose ``field`` passes ``op`` against ``value`` (a tuple for ``in``)."""
        if field.kind in _PLAIN_COLUMNS:
            return _compare(_PLAIN_COLUMNS[field.kind], op, value)
        if field.kind == "metrics":
            return self.keyed(LatestMetricRow, field.key, _compare(LatestMetricRow.value, op, value))
        if field.kind == "tags":
            return self.keyed(TagRow, field.key, _compare(TagRow.value, op, value))
        if field.kind == "params":
            return self.params(field.key, op, value)
        return self.lineage(field.key or "", op, value)

    def params(self, key: str | None, op: str, value: Any) -> ColumnElement[bool]:
        values = value if isinstance(value, tuple) else (value,)
        by_kind: dict[str, list[Any]] = {}
        for item in values:
            if isinstance(item, bool):
                by_kind.setdefault("bool", []).append(1.0 if item else 0.0)
            elif isinstance(item, (int, float)):
                by_kind.setdefault("number", []).append(float(item))
            else:
                by_kind.setdefault("string", []).append(item)
        tests = []
        for kind, items in by_kind.items():
            column = ParamValueRow.text if kind == "string" else ParamValueRow.number
            operand = tuple(items) if isinstance(value, tuple) else items[0]
            tests.append(and_(ParamValueRow.kind == kind, _compare(column, op, operand)))
        return self.keyed(ParamValueRow, key, or_(*tests)) if tests else false()

    def lineage(self, key: str, op: str, value: Any) -> ColumnElement[bool]:
        column = _LINEAGE_COLUMNS[key]
        values = value if isinstance(value, tuple) else (value,)
        if key in ("data", "commit"):  # digests are stored in lower case, without a prefix
            values = tuple(digest_of(item.lower(), check=False) for item in values)
        elif key == "parent":
            values = tuple(self.parent_id(item) for item in values)
        if key == "commit" and op in ("=", "in"):  # an abbreviated commit matches the commits it begins
            condition = or_(
                *(column.like(v + "%") if _ABBREVIATED_COMMIT.fullmatch(v) else column == v for v in values)
            )
        else:
            condition = _compare(column, op, values if isinstance(value, tuple) else values[0])
        return VersionRow.id.in_(select(LineageRow.version_id).where(condition))

    @staticmethod
    def parent_id(ref: str) -> Any:
        """The id of the version a pinned reference names (the parser checked its form)."""
        pinned = parse_ref(ref)
        return (
            select(VersionRow.id)
            .join(ModelRow, ModelRow.id == VersionRow.model_id)
            .where(ModelRow.name == pinned.name, VersionRow.version == pinned.version)
            .scalar_subquery()
        )


def compile_filter(tree: q.Node) -> ColumnElement[bool]:
    """The WHERE clause of a parsed filter (:func:`registry.query.parse_filter`)."""
    return _Compiler().node(tree)


def order_columns(order: Sequence[q.OrderKey]) -> list[Any]:
    """ORDER BY elements for parsed sort keys; missing values sort last, then name and version break ties."""
    columns: list[Any] = []
    for key in order:
        for expression in _sort_expressions(key.field):
            columns.append(expression.is_(None))  # false (has a value) sorts before true
            columns.append(expression.desc() if key.descending else expression.asc())
    columns.extend([ModelRow.name, VersionRow.version])
    return columns


def _sort_expressions(field: q.Field) -> Sequence[Any]:
    if field.kind in _PLAIN_COLUMNS:
        return [_PLAIN_COLUMNS[field.kind]]
    if field.kind == "metrics":
        return [_value_of(LatestMetricRow, LatestMetricRow.value, field.key)]
    if field.kind == "tags":
        return [_value_of(TagRow, TagRow.value, field.key)]
    if field.kind == "params":  # numbers (and booleans) first, then strings
        return [
            _value_of(ParamValueRow, ParamValueRow.number, field.key, ParamValueRow.kind.in_(("number", "bool"))),
            _value_of(ParamValueRow, ParamValueRow.text, field.key, ParamValueRow.kind == "string"),
        ]
    if field.key == "parent":  # by reference, not by the internal id
        return [PARENT_MODEL.name, PARENT.version]
    return [_LINEAGE_COLUMNS[field.key or ""]]  # joined already (see FROM_VERSIONS)


def _value_of(table: Any, column: Any, key: str | None, *conditions: ColumnElement[bool]) -> Any:
    return (
        select(column)
        .where(table.version_id == VersionRow.id, table.key == key, *conditions)
        .correlate(VersionRow)
        .scalar_subquery()
    )


def search_statement(
    base: Select[Any], where: q.Node | None, order: Sequence[q.OrderKey], limit: int | None, offset: int = 0
) -> Select[Any]:
    """``base`` (the version rows of live versions) filtered, ordered, and limited from ``offset`` on."""
    statement = base if where is None else base.where(compile_filter(where))
    statement = statement.order_by(*order_columns(order))
    statement = statement.limit(limit) if limit is not None else statement
    return statement.offset(offset) if offset else statement
