"""Alias moves told as they commit: PostgreSQL's ``NOTIFY`` from the writer, ``LISTEN`` in a server that follows.

A write transaction that points an alias elsewhere or removes it sends
``pg_notify('modelshelf_alias', '{"alias": …, "model": …}')`` before it
commits (:func:`announce`, called where the transaction's events are
written). PostgreSQL delivers a notification only when its transaction
commits, and drops it when the transaction rolls back, so a listener is
never told of a move that did not happen; it may be told of one twice (a
transaction that is run again) or by anyone who can connect, since any
client may send ``NOTIFY`` on any channel. A notice is therefore a hint
to read now, never a statement of where the alias points: whoever
receives one reads the alias from the catalog, as a poll would.

:class:`AliasWatch` keeps one connection in ``LISTEN`` in a daemon thread
and calls ``wake`` on every notice, and once after every (re)connection,
since moves committed while it was away were told to nobody. A lost
connection is reopened with exponential backoff; meanwhile the follower's
polling is all there is, as on SQLite and MariaDB, which have no such
mechanism (:func:`can_watch`).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Connection, Engine, func, select

log = logging.getLogger("modelshelf.catalog")

#: The channel of alias moves: one for every model, the payload says which (see :func:`announce`).
CHANNEL = "modelshelf_alias"
#: Seconds between two checks that an idle ``LISTEN`` connection still works (a ``SELECT 1``).
CHECK_EVERY = 15.0
#: The first and the longest wait before reconnecting after the connection was lost.
BACKOFF = (0.5, 30.0)
#: Seconds a waiting watch sleeps between two looks at whether it was stopped.
_TICK = 0.5


def can_watch(engine: Engine) -> bool:
    """Whether ``engine``'s catalog can tell of alias moves: PostgreSQL through psycopg (3)."""
    return engine.dialect.name == "postgresql" and engine.dialect.driver == "psycopg"


def announce(connection: Connection, moved: list[tuple[str, str]]) -> None:
    """Notify the listeners of ``moved`` (model, alias) pairs, delivered when ``connection``'s transaction commits."""
    if not moved or connection.dialect.name != "postgresql":
        return
    for model, alias in moved:
        payload = json.dumps({"model": model, "alias": alias}, sort_keys=True)
        connection.execute(select(func.pg_notify(CHANNEL, payload)))


@dataclass(frozen=True)
class AliasNotice:
    """What a notice's payload names, ``None`` for what it does not; ``reconnected``: no notice, a new connection."""

    model: str | None
    alias: str | None
    reconnected: bool = False

    def concerns(self, model: str, alias: str) -> bool:
        """Whether this notice may be about ``model@alias`` (a notice that names nothing may be about anything)."""
        return self.model in (None, model) and self.alias in (None, alias)


#: The notice given after each (re)connection: anything may have moved while nobody listened.
RECONNECTED = AliasNotice(None, None, reconnected=True)
_UNNAMED = AliasNotice(None, None)


def parse_notice(payload: str) -> AliasNotice:
    """The model and alias a payload names; whatever it holds besides (a version…) is not read."""
    try:
        document = json.loads(payload)
    except ValueError:
        return _UNNAMED
    if not isinstance(document, dict):
        return _UNNAMED
    model, alias = document.get("model"), document.get("alias")
    return AliasNotice(model if isinstance(model, str) else None, alias if isinstance(alias, str) else None)


class AliasWatch:
    """One ``LISTEN`` connection in a daemon thread, calling ``wake(notice)`` for each notice; reopened when lost.

    ``wake`` runs in the watch's thread and must be quick (hand the notice
    to whoever reads the alias). ``on_state`` is told each change of
    :attr:`state`, with the error that caused a loss: ``"listening"``,
    ``"reconnecting"`` (waiting to reconnect), ``"stopped"``.
    """

    def __init__(
        self,
        engine: Engine,
        wake: Callable[[AliasNotice], None],
        *,
        on_state: Callable[[str, str | None], None] = lambda state, error: None,
        check_every: float = CHECK_EVERY,
        backoff: tuple[float, float] = BACKOFF,
    ) -> None:
        if not can_watch(engine):
            raise ValueError(f"{engine.dialect.name}+{engine.dialect.driver} catalogs cannot tell of alias moves")
        self._engine = engine
        self._wake = wake
        self._on_state = on_state
        self._check_every = check_every
        self._backoff = backoff
        self._stopping = threading.Event()
        self._thread = threading.Thread(target=self._run, name="modelshelf-alias-watch", daemon=True)
        self._connection: Any = None
        self.state = "connecting"
        self.last_error: str | None = None
        #: Notices received on the channel, and connections opened (the first one included).
        self.received = 0
        self.connects = 0

    def start(self) -> AliasWatch:
        self._thread.start()
        return self

    def stop(self, timeout: float = 5.0) -> None:
        """Stop listening and close the connection (within about half a second of waiting for notices)."""
        self._stopping.set()
        if self._thread.is_alive():
            self._thread.join(timeout)

    def status(self) -> dict[str, Any]:
        """The watch's state for a health page: state, notices received, connections opened, last error."""
        return {
            "channel": CHANNEL,
            "state": self.state,
            "received": self.received,
            "connects": self.connects,
            "last_error": self.last_error,
        }

    def _set_state(self, state: str, error: str | None = None) -> None:
        self.state = state
        if error is not None:
            self.last_error = error
        try:
            self._on_state(state, error)
        except Exception:  # a broken callback must not end the watch
            log.exception("the alias watch's state callback failed")

    def _run(self) -> None:
        delay = self._backoff[0]
        while not self._stopping.is_set():
            opened = time.monotonic()
            try:
                self._listen()
            except Exception as exc:  # the server restarted, the network dropped, the backend was terminated…
                if self._stopping.is_set():
                    break
                self._set_state("reconnecting", f"{type(exc).__name__}: {str(exc).strip() or 'connection lost'}")
            finally:
                self._close()
            if time.monotonic() - opened > self._check_every:  # it worked for a while: start the backoff over
                delay = self._backoff[0]
            self._stopping.wait(delay)
            delay = min(delay * 2, self._backoff[1])
        self._set_state("stopped")

    def _listen(self) -> None:
        raw = self._engine.raw_connection()
        connection = self._connection = raw.driver_connection
        raw.detach()  # this connection leaves the pool: it stays in LISTEN until this watch closes it
        if connection is None:
            raise ConnectionError("the pool gave no driver connection")
        connection.rollback()  # the pool's check may have begun a transaction; LISTEN needs none open
        connection.autocommit = True
        connection.execute(f"LISTEN {CHANNEL}")
        self.connects += 1
        self._set_state("listening")
        self._wake(RECONNECTED)  # moves committed while nobody listened were told to nobody
        checked = time.monotonic()
        while not self._stopping.is_set():
            for notify in connection.notifies(timeout=_TICK):
                if notify.channel == CHANNEL:
                    self.received += 1
                    self._wake(parse_notice(notify.payload))
                if self._stopping.is_set():
                    return
            if time.monotonic() - checked >= self._check_every:  # an idle connection learns of a loss only by use
                connection.execute("SELECT 1")
                checked = time.monotonic()

    def _close(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            try:
                connection.close()
            except Exception:  # already broken: nothing to release
                log.debug("closing the alias watch's connection failed", exc_info=True)


__all__ = ["CHANNEL", "RECONNECTED", "AliasNotice", "AliasWatch", "announce", "can_watch", "parse_notice"]
