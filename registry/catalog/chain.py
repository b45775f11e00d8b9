"""The audit trail as a hash chain: each event's ``link`` covers the model's previous link and the event itself.

Why a chain per model, not one for the whole catalog: writers of one model
already serialize on its row lock, so reading the model's last link and
appending after it costs one indexed query and adds no contention; a global
chain would make every writer of every model wait on one row.

Two kinds of link:

* ``k1:<hex>`` — ``HMAC-SHA256(key, previous link, event)``, written by a
  client holding the signing key. Only the key can make one.
* ``u1:<hex>`` — ``SHA-256(previous link, event)``, written without a key.
  Anyone can recompute it, so it only makes *accidental* damage visible (an
  event edited, deleted from the middle, or reordered by hand); a keyed
  reader treats it as unauthenticated.

What makes the trail tamper-evident against someone who can write SQL is
the model's sealed state (:mod:`registry.catalog.sealing`), which binds the
chain's head under the key: any change before the head changes the head.

The fields are encoded as canonical JSON (sorted keys, no spaces), and the
time in UTC with microseconds, which every supported engine keeps exactly.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import UTC, datetime
from typing import Any, Literal, Protocol

KEYED_PREFIX = "k1:"
UNKEYED_PREFIX = "u1:"
_DOMAIN = b"modelshelf-event-v1"

#: What checking one link found: a valid keyed link, a valid unkeyed one, a wrong one (under another key a
#: keyed link looks wrong too: the seals then fail as well), or a keyed link that a reader without a key
#: cannot check.
LinkState = Literal["authentic", "unauthenticated", "broken", "unverifiable"]


def canonical_json(value: Any) -> str:
    """One spelling of a JSON value, so that equal values always hash alike."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def _moment(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


class EventFields(Protocol):
    """What the chain reads of an event: its fields by name, from a dict or a SQLAlchemy ``RowMapping``."""

    def __getitem__(self, name: str, /) -> Any: ...


def event_message(previous: str | None, event: EventFields) -> bytes:
    """The bytes a link covers: the previous link and every field of the event but its id."""
    fields = [
        _moment(event["at"]),
        event["action"],
        event["model"],
        event["version"],
        event["alias"],
        event["old"],
        event["new"],
        event["user_name"],
        event["host"],
    ]
    return b"\n".join([_DOMAIN, (previous or "").encode(), canonical_json(fields).encode()])


def next_link(key: bytes | None, previous: str | None, event: EventFields) -> str:
    """The link of ``event`` appended after ``previous``: keyed when a key is given."""
    message = event_message(previous, event)
    if key is None:
        return UNKEYED_PREFIX + hashlib.sha256(message).hexdigest()
    return KEYED_PREFIX + hmac.new(key, message, hashlib.sha256).hexdigest()


def check_link(key: bytes | None, previous: str | None, event: EventFields, link: str | None) -> LinkState:
    """Whether ``link`` is the one ``event`` after ``previous`` should carry (constant-time comparison)."""
    if link is None:
        return "broken"
    if link.startswith(UNKEYED_PREFIX):
        return "unauthenticated" if hmac.compare_digest(link, next_link(None, previous, event)) else "broken"
    if link.startswith(KEYED_PREFIX):
        if key is None:
            return "unverifiable"
        return "authentic" if hmac.compare_digest(link, next_link(key, previous, event)) else "broken"
    return "broken"


#: The metrics digest is a sum of per-value hashes modulo 2**256: a multiset hash, which a write can move by
#: what it changes without reading the model's other metrics (see :mod:`registry.catalog.sealing`).
METRIC_MODULUS = 2**256


def metric_term(value: tuple[int, str, float]) -> int:
    """One latest-metric value ``(version, key, value)`` as a term of the model's metrics digest."""
    number, key, metric = value
    text = canonical_json([number, key, repr(float(metric))])
    return int.from_bytes(hashlib.sha256(text.encode()).digest(), "big")
