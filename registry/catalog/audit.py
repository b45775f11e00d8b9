"""The audit trail: one appended ``events`` row per change, written inside the change's own transaction.

Because the event is inserted by the same transaction that makes the
change, the trail can neither miss a committed change nor record one that
rolled back. Nothing in modelshelf updates or deletes an event.

Each event carries a ``link`` chaining it to the model's previous event
(:mod:`registry.catalog.chain`), computed here as the rows are appended.

Alias history is derived from the trail rather than kept beside it: the
``alias.set``/``alias.move``/``alias.delete`` events of one alias, in order,
are the periods during which it pointed at each version.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import Connection, bindparam, insert, select

from registry.catalog.chain import metric_term, next_link
from registry.catalog.schema import EventRow, table_of
from registry.domain import EVENT_ACTIONS, AliasPeriod, Event

#: The actions that change where an alias points (a server following the alias is told of each one).
ALIAS_MOVES = ("alias.set", "alias.move", "alias.delete")
_EVENTS = table_of(EventRow)
_INSERT_EVENT = insert(_EVENTS)
EVENT_COLUMNS = (
    EventRow.id,
    EventRow.at,
    EventRow.action,
    EventRow.model,
    EventRow.version,
    EventRow.alias,
    EventRow.old,
    EventRow.new,
    EventRow.user_name,
    EventRow.host,
)
_ALIAS_EVENTS = (
    select(*EVENT_COLUMNS)
    .where(
        EventRow.model == bindparam("model"),
        EventRow.alias == bindparam("alias"),
        EventRow.action.in_(ALIAS_MOVES),
    )
    .order_by(EventRow.id)
)
#: The model's chain head: its last event's link (the (model, id) index answers it).
HEAD_QUERY = select(EventRow.link).where(EventRow.model == bindparam("model")).order_by(EventRow.id.desc()).limit(1)


@dataclass(frozen=True)
class Actor:
    """Who makes the changes of one ``Registry``: recorded with every event."""

    user: str | None = None
    host: str | None = None


class EventLog:
    """Collects the events of one write transaction and appends them in one statement.

    Each event's time is taken by the caller once it holds the lock that
    orders the change (the model's row, or SQLite's write lock), so on every
    engine the times of one model's events follow their order, as far as
    the clocks of the client machines writing them agree (times come from
    the client, like every timestamp of the catalog).
    """

    def __init__(self, actor: Actor, key: bytes | None = None) -> None:
        self._actor = actor
        self._key = key
        self._rows: list[dict[str, Any]] = []
        self._metric_deltas: dict[str, int] = {}

    def tally_metrics(
        self, model: str, removed: list[tuple[int, str, float]], added: list[tuple[int, str, float]]
    ) -> None:
        """Note latest-metric values this transaction replaces and writes: the seal's digest moves by them."""
        delta = sum(map(metric_term, added)) - sum(map(metric_term, removed))
        self._metric_deltas[model] = self._metric_deltas.get(model, 0) + delta

    def metric_delta(self, model: str) -> int:
        return self._metric_deltas.get(model, 0)

    def add(
        self,
        action: str,
        model: str,
        version: int | None = None,
        *,
        at: datetime,
        alias: str | None = None,
        old: Any = None,
        new: Any = None,
    ) -> None:
        # One list of actions, which filters (events(action=...), the UI's audit page) accept: a new kind of
        # change must be added there, or it would be recorded but never found.
        assert action in EVENT_ACTIONS, f"{action!r} is not in registry.domain.EVENT_ACTIONS"
        self._rows.append(
            {
                "at": at,
                "action": action,
                "model": model,
                "version": version,
                "alias": alias,
                "old": old,
                "new": new,
                "user_name": self._actor.user,
                "host": self._actor.host,
            }
        )

    def moved_aliases(self) -> list[tuple[str, str]]:
        """The (model, alias) pairs this transaction points elsewhere or removes, each once, in order."""
        moved = ((row["model"], row["alias"]) for row in self._rows if row["action"] in ALIAS_MOVES)
        return list(dict.fromkeys(moved))

    def write(self, connection: Connection) -> dict[str, str]:
        """Insert the collected events, chained; return each touched model's new chain head.

        Call it last in the transaction, before commit, with the models'
        locks held: the previous link read here is then still the last one
        when the rows land. The rows go in one statement, in the order they
        were added, so their ids follow the chain.
        """
        heads: dict[str, str] = {}
        for row in self._rows:
            model = row["model"]
            previous = heads[model] if model in heads else connection.execute(HEAD_QUERY, {"model": model}).scalar()
            row["link"] = heads[model] = next_link(self._key, previous, row)
        if self._rows:
            connection.execute(_INSERT_EVENT, self._rows)
            self._rows = []
        return heads


def _event(row: Any) -> Event:
    return Event(
        id=row.id,
        at=row.at,
        action=row.action,
        model=row.model,
        version=row.version,
        alias=row.alias,
        old=row.old,
        new=row.new,
        user=row.user_name,
        host=row.host,
    )


def read_events(
    connection: Connection,
    model: str | None,
    since: datetime | None,
    limit: int | None = None,
    *,
    alias: str | None = None,
    action: str | None = None,
) -> list[Event]:
    """Events in the order they happened, optionally of one model, from ``since`` on, of one alias or action."""
    query = select(*EVENT_COLUMNS)
    if model is not None:
        query = query.where(EventRow.model == model)
    if since is not None:
        query = query.where(EventRow.at >= since)
    if alias is not None:
        query = query.where(EventRow.alias == alias)
    if action is not None:
        query = query.where(EventRow.action == action)
    if limit is not None:  # the most recent ``limit`` events, still returned oldest first
        query = query.order_by(EventRow.id.desc()).limit(limit)
        return [_event(row) for row in reversed(connection.execute(query).all())]
    return [_event(row) for row in connection.execute(query.order_by(EventRow.id))]


def alias_periods(connection: Connection, model: str, alias: str) -> list[AliasPeriod]:
    """The stretches of time ``alias`` pointed at each version, oldest first; the current one has no end."""
    periods: list[AliasPeriod] = []
    current: AliasPeriod | None = None
    for row in connection.execute(_ALIAS_EVENTS, {"model": model, "alias": alias}):
        if current is not None:
            periods.append(AliasPeriod(model, alias, current.version, current.since, row.at, current.set_by))
            current = None
        if row.action != "alias.delete":
            current = AliasPeriod(model, alias, row.new, row.at, None, row.user_name)
    if current is not None:
        periods.append(current)
    return periods
