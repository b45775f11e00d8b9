"""The sealed state of a model: what decides which bytes a reference serves, bound by the signing key.

A version's signature binds its bytes to its identity, but not *which*
version ``name``, ``name@production`` or a pinned ``name:3`` resolves to: an
alias row, a ``deleted_at`` value or a ``latest_metrics`` value can be edited
by SQL alone. So every change made with the key also writes, on the model's
row and in the same transaction, a *seal*::

    HMAC(key, catalog id, name, state)
    state = {seq, chain head, last version number, latest live version,
             live count, deleted version numbers, alias -> version,
             digest of every latest metric, alias -> digest of its gates}

``seq`` grows with every change (keyed or not), which lets a client notice
a catalog rolled back to an older copy (:mod:`registry.trust.freshness`); the
chain head (:mod:`registry.catalog.chain`) binds the whole audit trail. The
state itself is kept in plain JSON beside the MAC, so a reader can say *what*
changed (an alias moved, a version un-deleted) rather than only that
something did.

A change by a client without the key bumps ``seq`` and clears the seal: a
keyed reader then refuses the model, saying so, until someone holding the
key checks it and adopts it (:meth:`registry.catalog.Catalog.seal_state`,
recorded in the trail). A keyed writer checks the seal before it changes
anything, so it never launders someone else's edit into a fresh seal.

The gates of protected aliases (``alias_protection``) are part of the
state, so a protection deleted or weakened by SQL is a mismatch that every
keyed reader and writer refuses, never a rule silently lifted. They appear
in the state's JSON only when the model has one, so seals written before
protections existed still verify. So is *which* versions have a prediction
canary: each canary's own MAC refuses one that was edited or copied, and
the seal refuses one that was deleted (which would otherwise turn a changed
canary into "no canary", a pass); absent when no version has one.

Checking costs a handful of indexed queries on one model and is only done
when a key is set; without a key nothing here runs on reads.
"""

from __future__ import annotations

import hashlib
import hmac
import uuid
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import CompoundSelect, Connection, bindparam, func, literal, null, select, union_all, update

from registry.catalog.chain import METRIC_MODULUS, canonical_json, metric_term
from registry.catalog.dialects import insert_ignore
from registry.catalog.schema import (
    AliasProtectionRow,
    AliasRow,
    AnyRow,
    CanaryRow,
    CatalogIdentityRow,
    EventRow,
    LatestMetricRow,
    ModelRow,
    VersionRow,
    table_of,
)
from registry.errors import UntrustedArtifact

SEAL_PREFIX = "s1:"
_DOMAIN = b"modelshelf-state-v1"
#: The command that adopts a model's current state under the key, named in every refusal.
SEAL_COMMAND = "modelshelf seal"

_IDENTITY = table_of(CatalogIdentityRow)
_CATALOG_ID = select(_IDENTITY.c.id).where(_IDENTITY.c.slot == 1)
_LIVE = (VersionRow.model_id == ModelRow.id) & VersionRow.deleted_at.is_(None)
# One round trip for the model's row and every scalar of its state (each subquery on an index), and one
# for its deleted versions and aliases: a keyed lookup pays two queries more than an unkeyed one.
_MODEL_STATE = select(
    ModelRow.id,
    ModelRow.last_version,
    ModelRow.state_seq,
    ModelRow.state,
    ModelRow.state_seal,
    _CATALOG_ID.scalar_subquery().label("catalog"),
    select(func.max(VersionRow.version)).where(_LIVE).scalar_subquery().label("latest"),
    select(func.count()).select_from(VersionRow).where(_LIVE).scalar_subquery().label("live"),
    select(EventRow.link)
    .where(EventRow.model == ModelRow.name)
    .order_by(EventRow.id.desc())
    .limit(1)
    .scalar_subquery()
    .label("head"),
).where(ModelRow.name == bindparam("name"))
_DELETED_AND_ALIASES: CompoundSelect[str, int, str | None] = union_all(
    select(literal("d"), VersionRow.version, null()).where(
        VersionRow.model_id == bindparam("model_id"), VersionRow.deleted_at.is_not(None)
    ),
    select(literal("a"), VersionRow.version, AliasRow.alias)
    .join(VersionRow, VersionRow.id == AliasRow.version_id)
    .where(AliasRow.model_id == bindparam("model_id")),
)
# Only rows whose copies of the version's model and number agree with it count: the metric indexes read the copies
# (ties come out in their order), so a copy rewritten by SQL drops its row from the digest and the model is refused.
_LATEST_METRICS = (
    select(VersionRow.version, LatestMetricRow.key, LatestMetricRow.value)
    .join(VersionRow, VersionRow.id == LatestMetricRow.version_id)
    .where(
        VersionRow.model_id == bindparam("model_id"),
        LatestMetricRow.model_id == VersionRow.model_id,
        LatestMetricRow.version == VersionRow.version,
    )
    .order_by(VersionRow.version, LatestMetricRow.key)
)
_PROTECTIONS = select(AliasProtectionRow.alias, AliasProtectionRow.gates).where(
    AliasProtectionRow.model_id == bindparam("model_id")
)
_CANARIES = (
    select(VersionRow.version)
    .join(CanaryRow, CanaryRow.version_id == VersionRow.id)
    .where(VersionRow.model_id == bindparam("model_id"))
    .order_by(VersionRow.version)
)
_MODELS = table_of(ModelRow)
_UNSEAL = (
    update(_MODELS)
    .where(_MODELS.c.id == bindparam("model_id"))
    .values(state_seq=_MODELS.c.state_seq + 1, state_seal=None)
)


@dataclass(frozen=True)
class ModelState:
    """The parts of one model's catalog rows that decide what its references serve."""

    seq: int
    head: str | None
    last_version: int
    latest: int | None
    live: int
    deleted: tuple[int, ...]
    aliases: dict[str, int]
    #: SHA-256 of every (version, key, value) of ``latest_metrics``; ``None`` when not read.
    metrics: str | None
    #: Protected alias -> SHA-256 of its stored gates (canonical JSON); empty when none is protected.
    protections: dict[str, str] = field(default_factory=dict)
    #: The versions that have a prediction canary; empty when none has.
    canaries: tuple[int, ...] = ()

    def to_json(self) -> dict[str, Any]:
        state: dict[str, Any] = {
            "seq": self.seq,
            "head": self.head,
            "last_version": self.last_version,
            "latest": self.latest,
            "live": self.live,
            "deleted": list(self.deleted),
            "aliases": dict(sorted(self.aliases.items())),
            "metrics": self.metrics,
        }
        if self.protections:  # absent when empty: seals made before protections existed keep verifying
            state["protections"] = dict(sorted(self.protections.items()))
        if self.canaries:  # absent when empty, for the same reason
            state["canaries"] = list(self.canaries)
        return state

    @classmethod
    def from_json(cls, value: dict[str, Any]) -> ModelState:
        return cls(
            seq=int(value["seq"]),
            head=value["head"],
            last_version=int(value["last_version"]),
            latest=value["latest"],
            live=int(value["live"]),
            deleted=tuple(value["deleted"]),
            aliases=dict(value["aliases"]),
            metrics=value["metrics"],
            protections=dict(value.get("protections") or {}),
            canaries=tuple(int(number) for number in value.get("canaries") or ()),
        )


@dataclass(frozen=True)
class Verdict:
    """What checking one model's seal found: ``problem`` is ``None`` when the state is the sealed one."""

    model: str
    catalog_id: str | None
    seq: int
    #: ``state_unsealed``, ``state_mismatch`` or ``None``.
    problem: str | None = None
    detail: str = ""

    def raise_if_untrusted(self) -> None:
        if self.problem is not None:
            raise UntrustedArtifact(self.detail)


def catalog_id(connection: Connection, create: bool = False) -> str | None:
    """The catalog's random identity, made on first need by a keyed writer (so copies of an empty template differ)."""
    found = connection.execute(_CATALOG_ID).scalar()
    if found is None and create:
        now = datetime.now(UTC)
        insert_ignore(connection, _IDENTITY, [{"slot": 1, "id": uuid.uuid4().hex, "created_at": now}], ["slot"])
        # A locking read: under MariaDB's repeatable read a plain one could miss the row another writer just
        # committed (its snapshot is older); a shared lock reads the latest and blocks no other reader.
        found = connection.execute(_CATALOG_ID.with_for_update(read=True)).scalar_one()
    return found


def read_state(connection: Connection, row: AnyRow, name: str, *, with_metrics: bool) -> ModelState:
    """The model's state as its rows say now, from its ``_MODEL_STATE`` row (metrics only ``with_metrics``)."""
    deleted: list[int] = []
    aliases: dict[str, int] = {}
    for kind, number, alias in connection.execute(_DELETED_AND_ALIASES, {"model_id": row.id}):
        if kind == "d":
            deleted.append(number)
        elif alias is not None:  # an alias row ("a") always names its alias
            aliases[alias] = number
    digest = None
    if with_metrics:
        rows = connection.execute(_LATEST_METRICS, {"model_id": row.id}).all()
        digest = _hex(sum(metric_term((v, k, x)) for v, k, x in rows))
    rules = connection.execute(_PROTECTIONS, {"model_id": row.id})
    protections = {alias: gates_digest(gates) for alias, gates in rules}
    canaries = tuple(connection.execute(_CANARIES, {"model_id": row.id}).scalars())
    return ModelState(
        seq=row.state_seq,
        head=row.head,
        last_version=row.last_version,
        latest=row.latest,
        live=row.live,
        deleted=tuple(sorted(deleted)),
        aliases=aliases,
        metrics=digest,
        protections=protections,
        canaries=canaries,
    )


def gates_digest(gates: Any) -> str:
    """The SHA-256 of a protected alias's stored gates, as the seal binds them."""
    return hashlib.sha256(canonical_json(gates).encode()).hexdigest()


def _hex(total: int) -> str:
    return f"{total % METRIC_MODULUS:064x}"


def seal_of(key: bytes, catalog: str, name: str, state: ModelState) -> str:
    """The MAC that binds ``state`` to this model of this catalog."""
    message = b"\n".join([_DOMAIN, catalog.encode(), name.encode(), canonical_json(state.to_json()).encode()])
    return SEAL_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()


def check_state(connection: Connection, key: bytes, name: str, *, with_metrics: bool) -> Verdict | None:
    """Compare one model's rows with its seal; ``None`` if the model does not exist."""
    row = connection.execute(_MODEL_STATE, {"name": name}).first()
    if row is None:
        return None
    catalog = row.catalog
    actual = read_state(connection, row, name, with_metrics=with_metrics)
    if row.state_seal is None:
        if row.state is None and _holds_nothing(actual):
            return Verdict(name, catalog, row.state_seq)  # created, nothing registered yet: nothing to protect
        return Verdict(name, catalog, row.state_seq, "state_unsealed", _unsealed_message(name, row.state is None))
    if row.state is None or catalog is None:
        return Verdict(name, catalog, row.state_seq, "state_mismatch", _forged_message(name))
    try:
        sealed = ModelState.from_json(row.state)
    except (KeyError, TypeError, ValueError):
        return Verdict(name, catalog, row.state_seq, "state_mismatch", _forged_message(name))
    if not hmac.compare_digest(row.state_seal, seal_of(key, catalog, name, sealed)):
        return Verdict(name, catalog, row.state_seq, "state_mismatch", _forged_message(name))
    changes = differences(sealed, actual)
    if changes:
        return Verdict(name, catalog, sealed.seq, "state_mismatch", _mismatch_message(name, changes))
    return Verdict(name, catalog, sealed.seq)


def _holds_nothing(actual: ModelState) -> bool:
    """Whether a model's rows hold nothing a seal would protect: no version row, alias or event at all.

    Decided from the rows themselves, never from the model's counter: an
    attacker who resets ``last_version`` and clears the seal must not make a
    model with versions look newly created (its state would then be served
    unsealed, and the next keyed write would seal it).
    """
    held = actual.live or actual.deleted or actual.aliases or actual.protections
    return not held and actual.head is None


def reseal(connection: Connection, key: bytes | None, model_id: int, name: str, metric_delta: int | None) -> None:
    """After a change: seal the model's new state (with a key), or mark it unsealed (without one).

    ``metric_delta`` is what the transaction's metric writes moved the digest by: added to the sealed
    digest (which the writer's guard verified under the lock) it gives the new one without reading every
    metric of the model; and a metric edited by SQL beforehand stays a mismatch rather than being sealed.
    ``None`` (adopting a state, or a model never sealed) recomputes it from the rows.
    """
    if key is None:
        connection.execute(_UNSEAL, {"model_id": model_id})
        return
    catalog = catalog_id(connection, create=True)
    assert catalog is not None
    row = connection.execute(_MODEL_STATE, {"name": name}).one()
    sealed_digest = (row.state or {}).get("metrics") if row.state_seal is not None else None
    incremental = metric_delta is not None and isinstance(sealed_digest, str)
    state = read_state(connection, row, name, with_metrics=not incremental)
    if incremental:
        assert metric_delta is not None and isinstance(sealed_digest, str)
        state = replace(state, metrics=_hex(int(sealed_digest, 16) + metric_delta))
    state = replace(state, seq=state.seq + 1)
    connection.execute(
        update(_MODELS)
        .where(_MODELS.c.id == model_id)
        .values(state_seq=state.seq, state=state.to_json(), state_seal=seal_of(key, catalog, name, state))
    )


def differences(sealed: ModelState, actual: ModelState) -> list[str]:
    """What differs between the sealed state and the rows, in words a person can act on."""
    found = []
    for alias in sorted(set(sealed.aliases) | set(actual.aliases)):
        before, now = sealed.aliases.get(alias), actual.aliases.get(alias)
        if before == now:
            continue
        if before is None:
            found.append(
                f"alias {alias!r} points at version {now} but was not set when sealed (set outside modelshelf)"
            )
        elif now is None:
            found.append(f"alias {alias!r} was removed outside modelshelf (sealed pointing at version {before})")
        else:
            found.append(f"alias {alias!r} points at version {now} but was sealed pointing at version {before}")
    for number in sorted(set(actual.deleted) - set(sealed.deleted)):
        found.append(f"version {number} is deleted but was live when sealed (deleted outside modelshelf)")
    for number in sorted(set(sealed.deleted) - set(actual.deleted)):
        found.append(f"version {number} was deleted when sealed but is live again (un-deleted outside modelshelf)")
    for alias in sorted(set(sealed.protections) | set(actual.protections)):
        before_gates, now_gates = sealed.protections.get(alias), actual.protections.get(alias)
        if before_gates == now_gates:
            continue
        if before_gates is None:
            found.append(f"alias {alias!r} is protected but was not when sealed (protected outside modelshelf)")
        elif now_gates is None:
            found.append(f"the protection of alias {alias!r} was removed outside modelshelf")
        else:
            found.append(f"the gates protecting alias {alias!r} were changed outside modelshelf")
    for number in sorted(set(sealed.canaries) - set(actual.canaries)):
        found.append(f"the prediction canary of version {number} was removed outside modelshelf")
    for number in sorted(set(actual.canaries) - set(sealed.canaries)):
        found.append(f"version {number} has a prediction canary it did not have when sealed (added outside modelshelf)")
    if not found and actual.latest != sealed.latest:
        found.append(f"latest is version {actual.latest}, sealed as version {sealed.latest}")
    if (actual.last_version, actual.live) != (sealed.last_version, sealed.live):
        found.append(
            f"it has {actual.live} live versions numbered up to {actual.last_version}, sealed with "
            f"{sealed.live} up to {sealed.last_version} (versions added or removed outside modelshelf)"
        )
    if actual.head != sealed.head:
        found.append("its audit trail does not end with the sealed event (events added, removed or edited)")
    if actual.metrics is not None and actual.metrics != sealed.metrics:
        found.append("its latest metrics differ from the sealed ones (changed outside modelshelf)")
    if actual.seq != sealed.seq:
        found.append(f"its change counter is {actual.seq}, sealed as {sealed.seq}")
    return found


def _unsealed_message(name: str, never: bool) -> str:
    if never:
        why = "has never been sealed with a signing key (it was written before sealing existed, or only without a key)"
    else:
        why = "was changed by a client without the signing key since it was last sealed"
    return (
        f"model {name!r} {why}: which versions its references serve cannot be trusted, so it was refused "
        f"(nothing served or changed). Check its trail (`modelshelf log {name}`), then adopt its current state "
        f"with `{SEAL_COMMAND} {name}` (Registry.seal) holding the key"
    )


def _forged_message(name: str) -> str:
    return (
        f"the sealed state of model {name!r} does not verify under this signing key: it was edited outside "
        "modelshelf, or another key sealed it; nothing was served or changed. Restore the catalog from a backup, "
        f"or if you trust its current state, adopt it with `{SEAL_COMMAND} {name}` holding the key"
    )


def _mismatch_message(name: str, changes: list[str]) -> str:
    return (
        f"the catalog state of model {name!r} does not match its seal: {'; '.join(changes)}. It was changed "
        "outside modelshelf (by SQL); nothing was served or changed. Undo the change or restore the catalog from "
        f"a backup (`modelshelf verify` lists every such problem), or adopt it with `{SEAL_COMMAND} {name}`"
    )
