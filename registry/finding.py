"""Finding versions and telling their story: search, best, ancestors, the audit trail and alias history.

These are the read-only questions users ask once a model has many
versions; :class:`~registry.facade.Registry` inherits them. Each validates
its arguments and hands the catalog one query: filters run in the database,
never over versions loaded into Python.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from registry.domain import AliasPeriod, Event, ModelVersion
from registry.errors import InvalidArgument, VersionNotFound
from registry.limits import MAX_LIMIT
from registry.names import resolve_ref, validate_alias, validate_model_name
from registry.query import And, Field, Node, NullCheck, OrderKey, parse_filter, parse_order_by
from registry.validation import validate_metrics


def _validate_limit(limit: object) -> int | None:
    if limit is None:
        return None
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise InvalidArgument(f"limit must be None or an integer from 1 to {MAX_LIMIT}, not {limit!r}")
    return limit


def _validate_moment(value: object, what: str) -> datetime:
    """A timezone-aware moment from a datetime or an ISO 8601 string (UTC when the string has no offset)."""
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise InvalidArgument(
                f"{what} must be an ISO 8601 date or time such as '2026-03-03', not {value!r}"
            ) from None
        if value.tzinfo is None:  # text without an offset means UTC, as everywhere in modelshelf
            value = value.replace(tzinfo=UTC)
    if not isinstance(value, datetime):
        raise InvalidArgument(f"{what} must be a timezone-aware datetime or an ISO 8601 string, not {value!r}")
    if value.tzinfo is None:
        raise InvalidArgument(
            f"{what}={value!r} is a naive datetime; modelshelf times are UTC: pass datetime(..., tzinfo=UTC)"
        )
    try:
        value.astimezone(UTC)
    except OverflowError:
        raise InvalidArgument(f"{what}={value.isoformat()} falls outside the years 1 to 9999 in UTC") from None
    return value


class FindingMixin:
    """The search and history methods of :class:`~registry.facade.Registry` (``self._catalog`` is its catalog)."""

    _catalog: Any

    def _authenticated(self, found: list[ModelVersion]) -> list[ModelVersion]:
        """``found``, once each version's signature is checked (the registry does that with a key)."""
        return found

    def search(
        self,
        name: str | None = None,
        where: str | None = None,
        order_by: str | None = None,
        limit: int | None = None,
    ) -> list[ModelVersion]:
        """Live versions matching a filter, found and sorted by the database.

        >>> reg.search("iris-knn", where="metrics.accuracy > 0.9 and params.n_neighbors <= 8",
        ...            order_by="metrics.accuracy desc", limit=3)               # doctest: +SKIP

        Fields: ``metrics.KEY`` (latest value), ``params.KEY`` (compared by
        the stored JSON type), ``tags.KEY``, ``lineage.KEY`` (``data``,
        ``commit``, ``dirty``, ``script``, ``user``, ``host``,
        ``modelshelf_version``, ``parent``), ``version``, ``created_at``,
        ``format``, ``name``; operators ``= != < <= > >=``, ``in (…)``,
        ``like``, ``is null``, ``and``, ``or``, ``not``, parentheses. Without
        ``name`` every model is searched; without ``order_by`` results come
        by name, then version. A malformed filter raises
        :class:`~registry.errors.InvalidQuery` naming the position.
        """
        if name is not None:
            name = validate_model_name(name)
        tree = None if where is None else parse_filter(where)
        order = () if order_by is None else parse_order_by(order_by)
        return self._authenticated(self._catalog.search(name, tree, order, _validate_limit(limit)))

    def best(self, name: str, metric: str, mode: str = "max", where: str | None = None) -> ModelVersion:
        """The live version of ``name`` with the highest (``mode="max"``) or lowest (``"min"``) ``metric``.

        Versions without the metric are not candidates; on a tie the newest
        version wins. ``VersionNotFound`` when no version qualifies.
        """
        name = validate_model_name(name)
        if mode not in ("max", "min"):
            raise InvalidArgument(f"mode must be 'max' or 'min', not {mode!r}")
        validate_metrics({metric: 0.0})  # the key rules, stated as for any metric
        field = Field("metrics", metric)
        candidates: Node = NullCheck(field, negated=True)  # is not null: versions without it are no candidates
        if where is not None:
            candidates = And((parse_filter(where), candidates))
        order = (OrderKey(field, descending=mode == "max"), OrderKey(Field("version", None), descending=True))
        found = self._authenticated(self._catalog.search(name, candidates, order, 1))
        if not found:
            condition = f" matching {where!r}" if where is not None else ""
            raise VersionNotFound(name, None, f"no live version{condition} has the metric {metric!r}")
        return found[0]

    def ancestors(self, ref_or_name: str, version: int | None = None, alias: str | None = None) -> list[str]:
        """The references a version was derived from (``register(..., parent=…)``), nearest first."""
        return self._catalog.ancestors(resolve_ref(ref_or_name, version, alias))

    def events(
        self, name: str | None = None, since: datetime | str | None = None, *, limit: int | None = None
    ) -> list[Event]:
        """The audit trail, oldest first: every register, alias change, tag change, metric log and deletion.

        ``name`` keeps one model's events, ``since`` (a timezone-aware datetime
        or an ISO 8601 string, UTC when it has no offset) those from that
        moment on, ``limit`` only the most recent ones.
        """
        if name is not None:
            name = validate_model_name(name)
        moment = None if since is None else _validate_moment(since, "since")
        return self._catalog.events(name, moment, _validate_limit(limit))

    def alias_history(self, name: str, alias: str) -> list[AliasPeriod]:
        """Which version ``alias`` pointed at, and from when until when, oldest first.

        >>> [(p.version, p.since, p.until) for p in reg.alias_history("iris-knn", "production")]  # doctest: +SKIP
        """
        return self._catalog.alias_history(validate_model_name(name), validate_alias(alias))

    def alias_at(self, name: str, alias: str, moment: datetime | str) -> AliasPeriod | None:
        """The period covering ``moment``: which version ``alias`` pointed at then, and since when."""
        when = _validate_moment(moment, "moment")
        return next((period for period in self.alias_history(name, alias) if period.covers(when)), None)
