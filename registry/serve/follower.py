"""Following an alias: read where it points, and swap in the version it moved to only once that version is fit.

:meth:`Follower.poll` is called from a worker thread (never on the event
loop: it may load a model). It reads the alias with one lookup; when the
alias points at a version (or bytes) other than the served one, that
version is loaded through the verified path, its canary re-run, its
signature and methods compared with the served one's, and only then is
:attr:`Follower.current` replaced: one assignment, which requests read
once each. A version that fails stays unserved: the log says why,
``/metrics`` counts it, and the audit trail gets a ``serve.swap_refused``
event (once per version; not on a read-only registry, which the log says).

A poll is triggered by the timer (every ``--poll`` seconds) or, on a
PostgreSQL catalog, by a notice that the alias moved
(:mod:`registry.catalog.notices`). Either way it is the same read of the
catalog: a notice only says *when* to read, never *what* to serve.
"""

from __future__ import annotations

import logging
from dataclasses import replace

from registry.domain import ModelVersion
from registry.errors import RegistryError, TrustError
from registry.facade import Registry
from registry.serve.metrics import Metrics
from registry.serve.served import TRANSIENT, Served, SwapRefused, compatibility, load_served

log = logging.getLogger("modelshelf.serve")


def _identity(mv: ModelVersion) -> tuple[int, str]:
    """What must stay equal for the served model to still be the version the alias names: number and bytes."""
    return mv.version, mv.checksum


class Follower:
    """The served version of one model, and the alias it follows (``alias=None``: pinned, never moves)."""

    def __init__(
        self,
        registry: Registry,
        served: Served,
        alias: str | None,
        *,
        safe: bool,
        metrics: Metrics,
        mmap: bool = False,
    ) -> None:
        self.registry = registry
        self.current = served
        self.alias = alias
        self.safe = safe
        self.mmap = mmap
        self.metrics = metrics
        self._refused: set[tuple[int, str]] = set()
        self._recorded: set[tuple[int, str]] = set()
        self._failing: str | None = None
        self.last_error: str | None = None
        #: How many reads of the alias this follower made, and at which of them the served version came in.
        self.polls = 0
        self.served_since_poll = 0
        #: What triggered the read that brought the served version in (``None``: served since startup).
        self.served_on: str | None = None
        #: Reads by what triggered them: the timer, or a notice that the alias moved.
        self.reads = {"timer": 0, "notice": 0}
        metrics.served(served.mv.name, served.mv.version, served.mv.checksum, served.loaded_at)

    @property
    def name(self) -> str:
        return self.current.mv.name

    def poll(self, trigger: str = "timer") -> str:
        """Read the alias once and act on it: ``"same"``, ``"swapped"``, ``"refused"`` or ``"error"``.

        ``trigger`` says why it reads now, ``"timer"`` or ``"notice"``: it is
        counted, and changes nothing else.
        """
        if self.alias is None:
            return "same"
        self.reads[trigger] += 1
        try:
            mv = self.registry.get(self.name, alias=self.alias)
        except TrustError as exc:  # with a key: the alias or its version's row was changed outside modelshelf
            self.metrics.polled(ok=True)
            message = f"{type(exc).__name__}: {exc}"
            if self._failing != message:
                self.metrics.refused("trust")
                log.error(
                    "refused what %s@%s points at (still serving %s): %s",
                    self.name,
                    self.alias,
                    self.current.ref,
                    message,
                )
            self._failing = self.last_error = message
            return "refused"
        except Exception as exc:  # the catalog is unreachable, the alias was removed...
            self.metrics.polled(ok=False)
            self._poll_failed(f"{type(exc).__name__}: {exc}")
            return "error"
        self.metrics.polled(ok=True)
        self.polls += 1
        if self._failing is not None:
            log.info("reading %s@%s works again; serving %s", self.name, self.alias, self.current.ref)
            self._failing = self.last_error = None
        served = self.current
        if _identity(mv) == _identity(served.mv):
            if mv.aliases != served.mv.aliases:  # /metadata shows the aliases as they are now
                self.current = replace(served, mv=replace(served.mv, aliases=mv.aliases))
            return "same"
        if _identity(mv) in self._refused:
            return "refused"
        return self._try(mv, served, trigger)

    def _try(self, mv: ModelVersion, served: Served, trigger: str) -> str:
        if _identity(mv) not in self._recorded:  # a store that keeps failing is retried quietly
            log.info("%s@%s moved to %s (serving %s): loading it", self.name, self.alias, mv.ref, served.ref)
        try:
            candidate = load_served(self.registry, mv, safe=self.safe, mmap=self.mmap)
        except SwapRefused as refusal:
            self._refuse(mv, served, refusal)
            return "refused"
        unfit = compatibility(served, candidate)
        if unfit is not None:
            self._refuse(mv, served, unfit)
            return "refused"
        for note in candidate.notes:
            log.warning("%s: %s", candidate.ref, note)
        self.current = candidate
        self.served_since_poll = self.polls
        self.served_on = trigger
        self.metrics.swapped()
        self.metrics.served(candidate.mv.name, candidate.mv.version, candidate.mv.checksum, candidate.loaded_at)
        log.info("now serving %s (was %s; canary: %s)", candidate.ref, served.ref, candidate.canary)
        return "swapped"

    def _poll_failed(self, message: str) -> None:
        self.last_error = message
        if self._failing != message:  # once per kind of failure, not once per poll
            log.warning("cannot read %s@%s (still serving %s): %s", self.name, self.alias, self.current.ref, message)
        self._failing = message

    def _refuse(self, mv: ModelVersion, served: Served, refusal: SwapRefused) -> None:
        identity = _identity(mv)
        if refusal.kind not in TRANSIENT:
            self._refused.add(identity)
        first = identity not in self._recorded
        if first:
            self.metrics.refused(refusal.kind)
            log.error(
                "refused to serve %s (%s@%s points at it; still serving %s): %s: %s",
                mv.ref,
                self.name,
                self.alias,
                served.ref,
                refusal.kind,
                refusal.message,
            )
            self._recorded.add(identity)
            self._record(mv, served, refusal)

    def _record(self, mv: ModelVersion, served: Served, refusal: SwapRefused) -> None:
        """The ``serve.swap_refused`` event, or a log line saying why the trail cannot have it."""
        if self.registry.read_only:
            log.warning(
                "the refusal of %s is not in the audit trail: the registry is open read-only (--read-only)", mv.ref
            )
            return
        try:
            recorded = self.registry.record_refused_swap(
                mv.name,
                mv.version,
                alias=self.alias,
                served=served.mv.version,
                reason=refusal.message[:4000],  # the trail keeps a reason, not a dump
                kind=refusal.kind,
            )
        except RegistryError as exc:
            log.warning("the refusal of %s could not be recorded in the audit trail: %s", mv.ref, exc)
            return
        if not recorded:
            log.warning(
                "the refusal of %s is not in the audit trail: %s is sealed and this server has no signing key "
                "(recording would unseal it)",
                mv.ref,
                mv.name,
            )
