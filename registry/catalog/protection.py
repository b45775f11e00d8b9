"""Protected aliases: the stored gates of an alias, and the facts a promotion is decided on.

The catalog does not know what a gate is: it reads, in the transaction
that would move an alias, the candidate version, the alias's current
target and the alias's stored gates (:class:`AliasFacts`), hands them to
the caller's ``decide`` callback, and records what it answers
(:class:`AliasDecision`): an ``alias.promote`` event and the move, or an
``alias.refuse`` event and no move. Both are committed, so a refusal is in
the audit trail too. Because the facts are read under the model's lock
(SQLite's write lock, a row lock on servers), no other writer can move the
alias or change its protection between the check and the move.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, delete, select

from registry.catalog.dialects import upsert
from registry.catalog.schema import AliasProtectionRow, AliasRow, table_of
from registry.domain import ModelVersion

_PROTECTION = table_of(AliasProtectionRow)
_ALIASES = table_of(AliasRow)
_GATES_OF = select(_PROTECTION.c.gates).where(
    _PROTECTION.c.model_id == bindparam("model_id"), _PROTECTION.c.alias == bindparam("alias")
)
_PROTECTED_OF_VERSION = (
    select(_ALIASES.c.alias)
    .join(_PROTECTION, (_PROTECTION.c.model_id == _ALIASES.c.model_id) & (_PROTECTION.c.alias == _ALIASES.c.alias))
    .where(_ALIASES.c.version_id == bindparam("version_id"))
    .order_by(_ALIASES.c.alias)
)
_PROTECTIONS_OF_MODEL = (
    select(_PROTECTION.c.alias, _PROTECTION.c.gates)
    .where(_PROTECTION.c.model_id == bindparam("model_id"))
    .order_by(_PROTECTION.c.alias)
)


@dataclass(frozen=True)
class AliasFacts:
    """What a decision on moving ``alias`` sees, all read in the transaction that would move it.

    ``protection`` is the alias's stored gates (``None``: not protected);
    ``damage`` what ``repair`` found wrong with the candidate's bytes.
    """

    alias: str
    candidate: ModelVersion
    current: ModelVersion | None
    protection: list[dict[str, Any]] | None
    damage: str | None


@dataclass(frozen=True)
class AliasDecision:
    """The answer of a ``decide`` callback: move or not, and what the audit trail records.

    ``record`` (the gates, their verdicts, the reason) becomes the ``new``
    field of an ``alias.promote`` or ``alias.refuse`` event; ``None`` with
    ``allowed`` is a plain alias change with no gates (only the move is recorded);
    ``None`` without ``allowed`` abandons the decision: nothing is recorded
    or moved (the caller needs facts it must gather outside the lock first).
    """

    allowed: bool
    record: dict[str, Any] | None = None


#: The callback that decides a move from its facts.
Decide = Callable[[AliasFacts], AliasDecision]


def gates_of(connection: Connection, model_id: int, alias: str) -> list[dict[str, Any]] | None:
    """The stored gates of one alias, or ``None`` if it is not protected."""
    gates = connection.execute(_GATES_OF, {"model_id": model_id, "alias": alias}).scalar()
    return None if gates is None else list(gates)


def protections(connection: Connection, model_id: int) -> dict[str, list[dict[str, Any]]]:
    """Every protected alias of one model and its stored gates, by alias."""
    return {alias: list(gates) for alias, gates in connection.execute(_PROTECTIONS_OF_MODEL, {"model_id": model_id})}


def protected_aliases_of_version(connection: Connection, version_id: int) -> list[str]:
    """The protected aliases pointing at one version (deleting the version would remove them)."""
    return list(connection.execute(_PROTECTED_OF_VERSION, {"version_id": version_id}).scalars())


def store_gates(
    connection: Connection, model_id: int, alias: str, gates: list[dict[str, Any]], by: str | None, now: datetime
) -> None:
    """Protect ``alias`` with ``gates``, replacing any it had."""
    upsert(
        connection,
        _PROTECTION,
        [{"model_id": model_id, "alias": alias, "gates": gates, "set_by": by, "set_at": now}],
        keys=["model_id", "alias"],
        updates=["gates", "set_by", "set_at"],
    )


def drop_gates(connection: Connection, model_id: int, alias: str) -> None:
    connection.execute(delete(_PROTECTION).where(_PROTECTION.c.model_id == model_id, _PROTECTION.c.alias == alias))
