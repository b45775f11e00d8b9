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
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import ColumnElement, SQLColumnExpression, and_, exists, false, literal, not_, or_, select

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
    """Turns one parsed filter into a WHERE clause over ``versions`` joined with ``models``.

    ``correlated`` spells each key/value test as a correlated ``EXISTS`` (one probe of the table's primary
    key per version considered) instead of ``id IN (SELECT …)``, which SQLite reads whole into a list
    first: the form for a read that walks an index in order and stops after a few rows.
    """

    def __init__(self, correlated: bool = False) -> None:
        self.correlated = correlated

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
            return self.member(LineageRow, column.is_not(None))
        table = LatestMetricRow if field.kind == "metrics" else TagRow
        return self.keyed(table, field.key)

    def keyed(self, table: Any, key: str | None, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        return self.member(table, table.key == key, *conditions)

    def member(self, table: Any, *conditions: ColumnElement[bool]) -> ColumnElement[bool]:
        """Versions with a row of ``table`` meeting ``conditions``."""
        if self.correlated:
            return exists(select(literal(1)).where(table.version_id == VersionRow.id, *conditions))
        return VersionRow.id.in_(select(table.version_id).where(*conditions))

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
        return self.member(LineageRow, condition)

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


def drives(tree: q.Node) -> bool:
    """Whether ``tree`` requires a selective equality that an index reaches: the versions it names can start the read.

    The rule: an ``=`` or ``in`` on a number (or boolean) param, or on a
    metric, at the top of the filter or in one of its top-level ``and``
    parts. ``ix_param_values_key_number`` and ``ix_latest_metrics_key_value``
    go straight to those versions; tags and string params are indexed by
    key only, which reaches every version having the key, so they do not
    count. A read of every match (no limit) then starts there, as many
    rows read as returned, instead of walking all of the model's versions.
    """
    parts = tree.parts if isinstance(tree, q.And) else (tree,)
    return any(_reaches_an_index(part) for part in parts)


def _reaches_an_index(node: q.Node) -> bool:
    if isinstance(node, q.Comparison) and node.op == "=":
        values: tuple[Any, ...] = (node.value,)
    elif isinstance(node, q.Membership) and not node.negated:
        values = node.values
    else:
        return False
    if node.field.kind == "metrics":
        return True
    return node.field.kind == "params" and all(isinstance(value, (int, float)) for value in values)


def compile_filter(tree: q.Node, *, correlated: bool = False) -> ColumnElement[bool]:
    """The WHERE clause of a parsed filter (:func:`registry.query.parse_filter`); see :class:`_Compiler`."""
    return _Compiler(correlated).node(tree)


@dataclass(frozen=True)
class Term:
    """One ORDER BY expression: its direction, whether a version can lack it (missing sorts last), its type.

    ``kind`` is the Python type a value of it has (what a page cursor may carry for it).
    """

    expression: Any
    descending: bool
    nullable: bool
    kind: type


def sort_terms(order: Sequence[q.OrderKey], *, one_model: bool) -> list[Term]:
    """The ORDER BY terms of parsed sort keys, then the ties: name (not within one model), then version.

    Within one model an order that names the version already is total, so the version is not added again.
    """
    terms: list[Term] = []
    for key in order:
        plain = key.field.kind in _PLAIN_COLUMNS
        for expression, kind in _sort_expressions(key.field):
            terms.append(Term(expression, key.descending, not plain, kind))
    if not one_model:
        terms.append(Term(ModelRow.name, False, False, str))
    # within one model a version is unique: after an order by it, another version term is redundant, and would
    # keep an index that ends with the version from giving the order
    if not (one_model and any(key.field.kind == "version" for key in order)):
        terms.append(Term(VersionRow.version, False, False, int))
    return terms


def order_columns(terms: Sequence[Term]) -> list[Any]:
    """ORDER BY elements for ``terms``: a term a version can lack first sorts by whether it has it."""
    columns: list[Any] = []
    for term in terms:
        if term.nullable:
            columns.append(term.expression.is_(None))  # false (has a value) sorts before true
        columns.append(term.expression.desc() if term.descending else term.expression.asc())
    return columns


_PLAIN_KINDS: dict[str, type] = {"version": int, "created_at": datetime, "format": str, "name": str}


def _sort_expressions(field: q.Field) -> Sequence[tuple[Any, type]]:
    if field.kind in _PLAIN_COLUMNS:
        return [(_PLAIN_COLUMNS[field.kind], _PLAIN_KINDS[field.kind])]
    if field.kind == "metrics":
        return [(_value_of(LatestMetricRow, LatestMetricRow.value, field.key), float)]
    if field.kind == "tags":
        return [(_value_of(TagRow, TagRow.value, field.key), str)]
    if field.kind == "params":  # numbers (and booleans) first, then strings
        kinds = ParamValueRow.kind.in_(("number", "bool"))
        return [
            (_value_of(ParamValueRow, ParamValueRow.number, field.key, kinds), float),
            (_value_of(ParamValueRow, ParamValueRow.text, field.key, ParamValueRow.kind == "string"), str),
        ]
    if field.key == "parent":  # by reference, not by the internal id
        return [(PARENT_MODEL.name, str), (PARENT.version, int)]
    return [(_LINEAGE_COLUMNS[field.key or ""], bool if field.key == "dirty" else str)]  # joined (see FROM_VERSIONS)


def _value_of(table: Any, column: Any, key: str | None, *conditions: ColumnElement[bool]) -> Any:
    return (
        select(column)
        .where(table.version_id == VersionRow.id, table.key == key, *conditions)
        .correlate(VersionRow)
        .scalar_subquery()
    )
