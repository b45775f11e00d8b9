"""The search filter language: text in, a typed and validated syntax tree out.

``Registry.search(where=..., order_by=...)`` takes two small languages, a filter
(``metrics.accuracy > 0.9 and tags.team = 'cv'``) and an ordering
(``metrics.accuracy desc, version``). This module only parses and checks them;
the catalog compiles the tree into SQL, so nothing here knows of SQLAlchemy.
The grammar is LALR (lark), not regular expressions, and every error is one line
(the CLI prints it so) naming the 0-based position, the text there and what
would have been valid::

    invalid filter at position 19 ('and 1'): expected a value (a number, a 'quoted string', true or false) after '>'

Fields are ``metrics.KEY``, ``params.KEY``, ``tags.KEY``, ``lineage.KEY`` and the
columns ``version``, ``created_at``, ``format``, ``name``. A KEY is the rest of an
identifier of ``[A-Za-z0-9_./:-]`` (``metrics.val/acc``; there is no arithmetic, so
``-`` is safe) or backquoted (``metrics.`f1 score` ``, a doubled backquote for
one). Types are checked after parsing, so their messages can be specific:
metrics are numbers, versions whole numbers, tags, formats, names and lineage
strings, ``lineage.dirty`` a boolean, params any literal, and ``created_at`` a
quoted ISO-8601 date, parsed here into an aware UTC ``datetime`` (naive is UTC).
``not`` binds tighter than ``and``, ``and`` tighter than ``or``; nested ``and``
and ``or`` are flattened, so equal filters give equal trees.

>>> parse_filter("tags.team = 'cv' and not version in (1, 2)")  # doctest: +NORMALIZE_WHITESPACE
And(parts=(Comparison(field=Field(kind='tags', key='team'), op='=', value='cv'),
           Not(part=Membership(field=Field(kind='version', key=None), values=(1, 2), negated=False))))
"""

from __future__ import annotations

import functools
import math
import re
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, NoReturn, cast

from registry.errors import InvalidQuery
from registry.limits import MAX_KEY_LENGTH, MAX_QUERY_INT, MAX_VERSION
from registry.names import MODEL_NAME_PATTERN
from registry.validation import storable_text

if TYPE_CHECKING:
    from lark import Lark, Token, Tree

__all__ = [
    "LINEAGE_KEYS",
    "MAX_QUERY_LENGTH",
    "And",
    "Comparison",
    "Field",
    "Membership",
    "Node",
    "Not",
    "NullCheck",
    "Or",
    "OrderKey",
    "field_name",
    "parse_filter",
    "parse_order_by",
]

LINEAGE_KEYS = ("data", "commit", "dirty", "script", "user", "host", "modelshelf_version", "parent")
MAX_QUERY_LENGTH = 10_000
_SECTIONS = ("metrics", "params", "tags", "lineage")
_COLUMNS = ("version", "created_at", "format", "name")
_MAX_IN_VALUES = 1000
#: Deeper trees are refused: nobody writes them, and every consumer of the tree recurses.
_MAX_DEPTH = 100
_PLAIN_KEY = re.compile(r"[A-Za-z0-9_./:-]+")
_DATETIME = re.compile(
    r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,6})?)?(?:Z|[+-][0-9]{2}:[0-9]{2})?)?"
)
_FIELDS_TEXT = "metrics.KEY, params.KEY, tags.KEY, lineage.KEY, version, created_at, format and name"
_VALUE_TEXT = "a value (a number, a 'quoted string', true or false)"
_STRING_TEXT = "a 'quoted string'"
_DATE_TEXT = "a quoted ISO-8601 date such as '2026-11-01' or '2026-11-01T12:00:00+02:00'"
_KEYWORDS = ("and", "or", "not", "in", "is", "null", "like", "true", "false", "asc", "desc")
# A keyword matches in any case and only as a whole word (``index`` is not ``in`` + ``dex``), and is never a field
# (``and = 1`` fails at ``and``, not at ``=``); and/or leave no token in the tree.
_IDENT_CHAR = r"[A-Za-z0-9_.\/:-]"  # in a lark /regex/, "/" is escaped
_KEYWORD_TERMINALS = {word: ("_" if word in ("and", "or") else "") + word.upper() for word in _KEYWORDS}
_COMPARE_TEXT = "a comparison such as =, < or >="
_BACKQUOTE_HINT = "a key with other characters is backquoted, as in metrics.`f1 score`"
# Where like is refused, and why (lineage.dirty too).
_NOT_TEXT = {"metrics": "metrics are numbers", "version": "versions are numbers", "created_at": "created_at is a date"}


@dataclass(frozen=True)
class Field:
    """A field of a version: ``kind`` is a section with a ``key``, or a plain column with ``key=None``."""

    kind: str
    key: str | None


@dataclass(frozen=True)
class Comparison:
    """``field op value``; ``op`` is one of ``= != < <= > >= like``, ``not like`` (``<>`` becomes ``!=``)."""

    field: Field
    op: str
    value: str | int | float | bool | datetime


@dataclass(frozen=True)
class Membership:
    """``field in (v1, v2, ...)``, or ``not in`` when ``negated``; 1 to 1000 values."""

    field: Field
    values: tuple[str | int | float | bool | datetime, ...]
    negated: bool


@dataclass(frozen=True)
class NullCheck:
    """``field is null`` (the key is absent), or ``is not null`` when ``negated``."""

    field: Field
    negated: bool


@dataclass(frozen=True)
class And:
    """All of ``parts`` hold; at least two, none of them an ``And`` (``a and (b and c)`` is flattened)."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Or:
    """Any of ``parts`` holds; at least two, none of them an ``Or``."""

    parts: tuple[Node, ...]


@dataclass(frozen=True)
class Not:
    """``part`` does not hold."""

    part: Node


Node = Comparison | Membership | NullCheck | And | Or | Not
_Value = str | int | float | bool | datetime
_DIRTY = Field("lineage", "dirty")  # the one lineage key that is not text
_PARENT = Field("lineage", "parent")  # a pinned reference, matched whole
_PINNED_REF = re.compile(rf"(?:{MODEL_NAME_PATTERN.pattern}):([1-9][0-9]{{0,9}})")
_REF_TEXT = "a pinned reference such as 'iris-knn:3'"


@dataclass(frozen=True)
class OrderKey:
    """One ``FIELD [asc|desc]`` of an ordering."""

    field: Field
    descending: bool


def field_name(field: Field) -> str:
    """The field as it is written in a query, so that messages and round trips use one spelling.

    >>> field_name(Field("metrics", "f1 score")), field_name(Field("params", "clf__C")), field_name(Field("name", None))
    ('metrics.`f1 score`', 'params.clf__C', 'name')
    """
    if field.key is None:
        return field.kind
    if _PLAIN_KEY.fullmatch(field.key):
        return f"{field.kind}.{field.key}"
    return f"{field.kind}.`{field.key.replace('`', '``')}`"


def parse_filter(text: str) -> Node:
    """Parse and check a ``where=`` filter, raising :class:`InvalidQuery` with the position of the first problem.

    >>> parse_filter("metrics.accuracy >= 0.9 or tags.stage is null")  # doctest: +NORMALIZE_WHITESPACE
    Or(parts=(Comparison(field=Field(kind='metrics', key='accuracy'), op='>=', value=0.9),
              NullCheck(field=Field(kind='tags', key='stage'), negated=False)))
    """
    source = _Source.of(text, "filter")
    return _node(_parse_tree(source, "filter"), source, 0)


def parse_order_by(text: str) -> tuple[OrderKey, ...]:
    """Parse an ``order_by=`` list of ``FIELD [asc|desc]``, ascending by default; each field at most once.

    >>> parse_order_by("version desc")
    (OrderKey(field=Field(kind='version', key=None), descending=True),)
    """
    source = _Source.of(text, "order_by")
    seen: dict[Field, int] = {}
    keys = []
    for order_key in _parse_tree(source, "order_by").children:
        token = _token(_tree(_tree(order_key).children[0]).children[0])
        field = _field(token, source)
        if field in seen:
            reason = f"{_show(field_name(field))} is already ordered by at position {seen[field]}; name it once"
            source.fail(token.start_pos, reason, "a field not yet in the ordering")
        seen[field] = _start(token)
        keys.append(OrderKey(field, descending=getattr(_tree(order_key).children[-1], "type", None) == "DESC"))
    return tuple(keys)


@dataclass(frozen=True)
class _Source:
    """The text being parsed and which language it is in, for the error messages."""

    text: str
    what: str

    @classmethod
    def of(cls, text: object, what: str) -> _Source:
        if not isinstance(text, str):
            reason = f"invalid {what}: expected a string such as 'version > 2', got {type(text).__name__}"
            raise InvalidQuery(reason, query=repr(text)[:80], expected="a string")
        source = cls(text, what)
        if len(text) > MAX_QUERY_LENGTH:
            reason = f"the text is {len(text)} characters long, the limit is {MAX_QUERY_LENGTH}; split the search"
            source.fail(MAX_QUERY_LENGTH, reason, f"at most {MAX_QUERY_LENGTH} characters")
        return source

    def fail(self, position: int | None, reason: str, expected: str) -> NoReturn:
        """Raise the one-line :class:`InvalidQuery` for ``position`` (the length of the text: at the end).

        ``None`` is accepted because lark types token positions as optional (a hand-made token has none);
        its lexer always sets them, and a missing one reads as the end of the text.
        """
        where = "at the end"
        if position is not None and position < len(self.text):
            snippet = self.text[position : position + 20] + ("..." if len(self.text) > position + 20 else "")
            where = f"at position {position} ({snippet!r})"
        message = f"invalid {self.what} {where}: {reason}"
        raise InvalidQuery(message, query=self.text, position=position, expected=expected)


_GRAMMAR = r"""
?filter: or_expr
?or_expr: and_expr (_OR and_expr)*
?and_expr: not_expr (_AND not_expr)*
?not_expr: NOT not_expr -> negation
    | _LPAR or_expr _RPAR
    | field OP value -> comparison
    | field NOT? LIKE value -> like
    | field NOT? IN _LPAR values? _RPAR -> membership
    | field IS NOT? NULL -> null_check
values: value (_COMMA value)*
?value: NUMBER | STRING | TRUE | FALSE
field: IDENT | QFIELD
order_by: order_key (_COMMA order_key)*
order_key: field (ASC | DESC)?

OP: "<=" | ">=" | "<>" | "!=" | "=" | "<" | ">"
NUMBER: /-?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][+-]?[0-9]+)?/
STRING: /'(?:[^']|'')*+'/  // possessive: 'it''s is one unclosed string, not 'it' and more
QFIELD.3: /[A-Za-z_][A-Za-z0-9_]*\.`(?:[^`]|``)*+`/
_LPAR: "("
_RPAR: ")"
_COMMA: ","
WS: /[ \t\r\n]+/
%ignore WS
""" + "".join(f"{name}.2: /{word}(?!{_IDENT_CHAR})/i\n" for word, name in _KEYWORD_TERMINALS.items())
_GRAMMAR += f"IDENT: /(?!(?i:{'|'.join(_KEYWORDS)})(?!{_IDENT_CHAR}))[A-Za-z_]{_IDENT_CHAR}*/\n"

_OPERATORS = "an operator (=, !=, <, <=, >, >=, in, not in, like, not like, is null or is not null)"
_TERMINAL_NAMES = {name: f"'{word}'" for word, name in _KEYWORD_TERMINALS.items()}
_TERMINAL_NAMES |= {"_LPAR": "'('", "_COMMA": "','", "_RPAR": "')'", "$END": "the end"}


@functools.cache
def _parser() -> Lark:
    """The one LALR parser of both languages, built on first use so that importing this module stays cheap."""
    from lark import Lark

    return Lark(_GRAMMAR, start=["filter", "order_by"], parser="lalr", lexer="contextual", propagate_positions=True)


def _tree(branch: Tree[Token] | Token) -> Tree[Token]:
    """``branch`` as the subtree the grammar puts there: lark types every child as a tree or a token."""
    return cast("Tree[Token]", branch)


def _token(branch: Tree[Token] | Token) -> Token:
    """``branch`` as the token the grammar puts there: lark types every child as a tree or a token."""
    return cast("Token", branch)


def _start(token: Token) -> int:
    """Where ``token`` starts: lark types positions as optional (a hand-made token has none), its lexer sets them."""
    assert token.start_pos is not None, "lark's lexer sets the position of every token it produces"
    return token.start_pos


def _parse_tree(source: _Source, start: str) -> Tree[Token]:
    """Parse with lark, translating its exceptions into one-line messages in the user's terms."""
    from lark.exceptions import UnexpectedCharacters, UnexpectedToken

    interactive = _parser().parse_interactive(source.text, start=start)
    seen: list[Token] = []
    try:
        for token in interactive.iter_parse():  # yields each token just before feeding it
            seen.append(token)
        tree: Tree[Token] = interactive.feed_eof(seen[-1] if seen else None)
        return tree
    except UnexpectedToken as exc:
        at_end = exc.token.type == "$END"
        position = len(source.text) if at_end else _start(exc.token)
        consumed = seen if at_end else [token for token in seen if _start(token) < position]
        expected = _describe(_accepted(consumed, start), consumed)
        reason = f"expected {expected}" + (f" after {consumed[-1].value!r}" if consumed else "")
        if not source.text.strip():
            reason = f"the text is empty; expected {expected}"
        elif exc.token.type == "NULL":
            reason = f"null is only written after 'is' (is null, is not null); {reason}"
        elif exc.token.type == "_RPAR" and not _open_parens(consumed):
            reason = f"this ')' closes no '('; {reason}"
        elif exc.token.type == "OP" and consumed and consumed[-1].type == "OP":
            reason = f"{reason} (one operator only: write = rather than ==)"
        elif not at_end and consumed and consumed[-1].type == "STRING" and consumed[-1].end_pos == position:
            reason = f"{reason} (write '' for a quote inside a string)"
        elif exc.token.type == "IDENT" and consumed and consumed[-1].type == "IDENT":
            reason = f"{reason} ({_BACKQUOTE_HINT})"
    except UnexpectedCharacters as exc:
        position = cast(int, exc.pos_in_stream)  # lark declares the class attribute as None; the lexer sets an int
        char = source.text[position]
        expected = _describe(_accepted(seen, start), seen)
        reason = f"unexpected character {char!r}; expected {expected}" + (f" after {seen[-1].value!r}" if seen else "")
        if char == "'":
            reason, expected = "this string is never closed: end it with ' (and write '' for a quote)", "a closing '"
        elif char == "`" and not re.match(r"`(?:[^`]|``)*+`", source.text[position:]):
            reason, expected = "this key is never closed: end it with ` (and write `` for a backquote)", "a closing `"
        elif char == "`":
            reason = "a backquoted key follows its section, as in metrics.`f1 score`"
        elif char == '"':
            reason = "strings are written in single quotes, as in 'cv'"
        elif seen and seen[-1].type == "IDENT" and seen[-1].end_pos == position:
            reason = f"{reason} ({_BACKQUOTE_HINT})"
    source.fail(position, reason, expected)  # out of the except blocks: lark's exception is no part of the story


def _accepted(consumed: list[Token], start: str) -> set[str]:
    """The terminals the parser accepts after ``consumed``, found by replaying the parse and trying each.

    Lark's expected sets are merged LALR lookaheads: they would offer an in-list's ``,`` after ``version = 1``.
    """
    probe = _parser().parse_interactive("", start=start)
    for token in consumed:
        probe.feed_token(token)
    accepted: set[str] = probe.accepts()
    return accepted


def _open_parens(consumed: list[Token]) -> list[int]:
    """The positions of the parentheses opened and not yet closed by ``consumed``."""
    stack: list[int] = []
    for token in consumed:
        if token.type == "_LPAR":
            stack.append(_start(token))
        elif token.type == "_RPAR" and stack:
            stack.pop()
    return stack


def _describe(names: set[str], consumed: list[Token]) -> str:
    """What the parser would have accepted, in words (lark's terminal names are not for users)."""
    parts = []
    if "OP" in names:
        parts.append(_OPERATORS)
        names = names - {"OP", "NOT", "LIKE", "IN", "IS"}
    if names & {"IDENT", "QFIELD"}:
        parts.append("a field such as metrics.accuracy or version")
    if names & {"NUMBER", "STRING", "TRUE", "FALSE"}:
        parts.append(_VALUE_TEXT)
    parts += [_TERMINAL_NAMES[name] for name in _TERMINAL_NAMES if name in names and name not in ("TRUE", "FALSE")]
    opened = _open_parens(consumed)
    if "_RPAR" in names and opened:
        parts[parts.index("')'")] = f"')' to close the '(' at position {opened[-1]}"
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " or " + parts[-1]


def _node(tree: Tree[Token], source: _Source, depth: int) -> Node:
    """The checked AST node of a parse tree node."""
    if depth > _MAX_DEPTH:
        reason = f"the filter nests deeper than {_MAX_DEPTH} levels; simplify it"
        source.fail(tree.meta.start_pos, reason, f"at most {_MAX_DEPTH} levels of nesting")
    kids = tree.children
    if tree.data in ("or_expr", "and_expr"):
        kind = Or if tree.data == "or_expr" else And
        parts: list[Node] = []
        for kid in kids:
            part = _node(_tree(kid), source, depth + 1)
            parts += part.parts if isinstance(part, kind) else [part]
        return kind(tuple(parts))
    if tree.data == "negation":
        return Not(_node(_tree(kids[1]), source, depth + 1))
    field = _field(_token(_tree(kids[0]).children[0]), source)
    negated = any(getattr(kid, "type", None) == "NOT" for kid in kids[1:])
    operator = _token(kids[2 if negated and tree.data != "null_check" else 1])
    if tree.data == "null_check":
        if field.key is None:
            noun = {"version": "number", "created_at": "creation time"}.get(field.kind, field.kind)
            reason = f"every version has a {noun}, so {field.kind} is never null; compare it with a value instead"
            source.fail(operator.start_pos, reason, _COMPARE_TEXT)
        return NullCheck(field, negated)
    if tree.data == "comparison":
        op = "!=" if operator.value == "<>" else operator.value
        if field == _PARENT and op not in ("=", "!="):
            source.fail(operator.start_pos, "versions are not ordered across models; use = or in", "= != in or is null")
        return Comparison(field, op, _value(field, op, _token(kids[2]), source))
    if tree.data == "like":
        if field.kind in _NOT_TEXT or field == _DIRTY:
            what = _NOT_TEXT.get(field.kind, "lineage.dirty is true or false")
            source.fail(operator.start_pos, f"{what}; like compares text", _COMPARE_TEXT)
        if field == _PARENT:
            source.fail(operator.start_pos, "lineage.parent is matched whole, with = or in", "= != in or is null")
        op = "not like" if negated else "like"
        return Comparison(field, op, _value(field, op, _token(kids[-1]), source))
    if field.kind == "created_at":
        reason = "created_at cannot be matched with 'in'; select a time range with >= and <"
        source.fail(operator.start_pos, reason, _COMPARE_TEXT)
    values = [_token(kid) for kid in _tree(kids[-1]).children] if getattr(kids[-1], "data", None) == "values" else []
    if not values:
        reason = "an in-list needs at least one value, as in (1, 2)"
        source.fail(source.text.index("(", operator.end_pos), reason, _VALUE_TEXT)
    if len(values) > _MAX_IN_VALUES:
        reason = f"an in-list holds at most {_MAX_IN_VALUES} values; split the search"
        source.fail(values[_MAX_IN_VALUES].start_pos, reason, "')' to end the list")
    op = "not in" if negated else "in"
    return Membership(field, tuple(_value(field, op, token, source) for token in values), negated)


def _field(token: Token, source: _Source) -> Field:
    """The field a field token names, or an error listing the fields there are."""
    text, position = token.value, token.start_pos
    section, dot, key = text.partition(".")
    if token.type == "QFIELD":
        key = key[1:-1].replace("``", "`")
    if not dot and text in _COLUMNS:
        return Field(text, None)
    if not dot and text in _SECTIONS:
        source.fail(position, f"{text} needs a key, as in {text}.accuracy", f"{text}.KEY")
    if dot and section in _COLUMNS:
        source.fail(position, f"{section} is a column and has no keys; write {section} alone", section)
    if section not in _SECTIONS:
        import difflib

        close = difflib.get_close_matches(section if dot else text, _SECTIONS if dot else _COLUMNS + _SECTIONS, n=1)
        hint = f" (did you mean {_show(text.replace(section, close[0], 1))}?)" if close else ""
        source.fail(position, f"unknown field {text!r}{hint}; the fields are {_FIELDS_TEXT}", _FIELDS_TEXT)
    if not 1 <= len(key) <= MAX_KEY_LENGTH:
        reason = f"keys are 1-{MAX_KEY_LENGTH} characters long, this one has {len(key)}"
        source.fail(position, reason, f"a key of 1-{MAX_KEY_LENGTH} characters")
    if not storable_text(key):
        source.fail(position, "a key holds no NUL character and no lone surrogate", "a key of printable text")
    if section == "lineage" and key not in LINEAGE_KEYS:
        keys = ", ".join(LINEAGE_KEYS)
        source.fail(position, f"lineage has no key {key!r}; it has {keys}", f"one of lineage.{{{keys}}}")
    return Field(section, key)


def _literal(token: Token, source: _Source) -> _Value:
    """The Python value of a literal token: an int or float as written, an unescaped str, a bool."""
    if token.type == "STRING":
        return str(token.value)[1:-1].replace("''", "'")
    if token.type in ("TRUE", "FALSE"):
        return token.type == "TRUE"
    if re.fullmatch(r"-?[0-9]+", token.value):
        digits = token.value.lstrip("-").lstrip("0") or "0"
        number: float = int(token.value) if len(digits) <= 20 else MAX_QUERY_INT + 1  # int() of 5000 digits is slow
        if abs(number) > MAX_QUERY_INT:
            reason = f"integers are at most {MAX_QUERY_INT} in size; write a float such as 1e20 for larger numbers"
            source.fail(token.start_pos, reason, "a smaller integer")
        return number
    number = float(token.value)
    if not math.isfinite(number):
        source.fail(token.start_pos, "this number is too large to be a float", "a finite number")
    return number


def _value(field: Field, op: str, token: Token, source: _Source) -> _Value:
    """The literal of ``token``, checked against what ``field`` holds."""
    value, name, position = _literal(token, source), _show(field_name(field)), token.start_pos
    quoted = f"'{token.value.lower() if token.type != 'NUMBER' else token.value}'"
    example = f"{name} {op} {quoted}" if op not in ("in", "not in") else f"{name} {op} ({quoted})"
    if op in ("like", "not like"):
        if not isinstance(value, str):
            source.fail(position, f"like compares text; write {example}", "a 'quoted pattern'")
        if (len(value) - len(value.rstrip("\\"))) % 2:
            source.fail(position, "a like pattern cannot end with a lone \\ (it escapes what follows)", "a pattern")
        return value
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if field.kind == "metrics" and not is_number:
        source.fail(position, f"metrics are numbers; compare {name} with a number such as 0.9", "a number")
    if field.kind == "version" and not (is_number and isinstance(value, int)):
        how = "whole numbers" if is_number else "numbers, written without quotes"
        source.fail(position, f"versions are {how}, as in version {op} 3", "a whole number")
    if field.kind == "version" and isinstance(value, int) and abs(value) > MAX_VERSION:
        source.fail(position, f"versions are at most {MAX_VERSION}", "a smaller whole number")
    if isinstance(value, str) and not storable_text(value):
        source.fail(position, "a string holds no NUL character and no lone surrogate", _STRING_TEXT)
    pinned = _PINNED_REF.fullmatch(value) if field == _PARENT and isinstance(value, str) else None
    if field == _PARENT and not (pinned and int(pinned[1]) <= MAX_VERSION):
        source.fail(position, f"lineage.parent holds {_REF_TEXT}, not {token.value}", _REF_TEXT)
    if field.kind == "created_at":
        return _datetime(token, value, source)
    if field == _DIRTY:
        if not isinstance(value, bool):
            source.fail(position, "lineage.dirty is true or false", "true or false")
    elif field.kind in ("tags", "format", "name", "lineage") and not isinstance(value, str):
        what = "tags are strings" if field.kind == "tags" else f"{name} is a string"
        source.fail(position, f"{what}, write {example}", _STRING_TEXT)
    if isinstance(value, bool) and op not in ("=", "!=", "in", "not in"):
        source.fail(position, f"true and false are not ordered; compare {name} with = or !=", "= or !=")
    return value


def _datetime(token: Token, value: _Value, source: _Source) -> datetime:
    """An aware UTC datetime from a quoted ISO-8601 date or datetime; naive means UTC."""
    if not isinstance(value, str) or not _DATETIME.fullmatch(value):
        source.fail(token.start_pos, f"created_at is compared with {_DATE_TEXT}", _DATE_TEXT)
    try:
        moment = datetime.fromisoformat(value.replace("Z", "+00:00"))
        return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
    except ValueError as exc:
        source.fail(token.start_pos, f"{value!r} is not a real date or time ({exc})", _DATE_TEXT)
    except OverflowError:  # an offset that moves the moment out of the years 1-9999
        source.fail(token.start_pos, f"{value!r} falls outside the years 1 to 9999 in UTC", _DATE_TEXT)


def _show(text: str) -> str:
    """``text`` made safe for a one-line message (control characters escaped)."""
    return text if text.isprintable() else repr(text)[1:-1]
