"""Functions run in child processes by the concurrency and crash tests (importable, so any start method works)."""

from __future__ import annotations

import logging
import os
import sys
import time
from pathlib import Path
from typing import Any

from registry import Registry


def register_many(home: str, name: str, writer: int, count: int) -> list[tuple[int, int, int]]:
    """Register ``count`` versions of ``name``; return (version, writer, i) for each."""
    done = []
    with Registry(home) as reg:
        for i in range(count):
            mv = reg.register(
                name, {"writer": writer, "i": i}, format="pickle", tags={"writer": str(writer), "i": str(i)}
            )
            done.append((mv.version, writer, i))
    return done


def register_many_to(catalog: str, store: str, name: str, writer: int, count: int) -> list[tuple[int, int, int]]:
    """Like :func:`register_many`, against a catalog URL and a separate store."""
    done = []
    with Registry(catalog=catalog, store=store) as reg:
        for i in range(count):
            done.append((reg.register(name, {"writer": writer, "i": i}, format="pickle").version, writer, i))
    return done


def import_bundle_at(catalog: str, store: str, bundle: str, start_at: float) -> list[str]:
    """Import a bundle at a shared start time; return the references it created."""

    time.sleep(max(0.0, start_at - time.time()))
    with Registry(catalog=catalog, store=store) as reg:
        return [result.target for result in reg.import_bundle(bundle, allow_unsigned=True) if result.created]


def open_url_and_count_migrations(catalog: str, store: str, start_at: float) -> int:
    """Open a catalog URL at a shared start time; return how many migrations this process ran."""
    counter = _Counter()
    logger = logging.getLogger("registry.catalog.migrate")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    time.sleep(max(0.0, start_at - time.time()))
    with Registry(catalog=catalog, store=store) as reg:
        reg.models()
    return sum("migrated the catalog" in message for message in counter.messages)


def load_size(catalog: str, store: str, name: str) -> int:
    """Load the latest version of ``name`` from a fresh Registry; return the size of its ``blob`` entry."""
    with Registry(catalog=catalog, store=store) as reg:
        return len(reg.load(name)["blob"])


def read_latest_until(home: str, name: str, stop_file: str) -> int:
    """Load the latest version in a loop; check each object matches its metadata. Return loads done."""
    loads = 0
    with Registry(home) as reg:
        while not Path(stop_file).exists():
            try:
                mv = reg.get(name)
            except LookupError:
                continue  # nothing registered yet
            obj = reg.load(mv.ref)
            expected = {"writer": int(mv.tags["writer"]), "i": int(mv.tags["i"])}
            if obj != expected:
                raise AssertionError(f"{mv.ref} loaded {obj}, metadata says {expected}")
            loads += 1
    return loads


def move_alias(home: str, name: str, versions: list[int], rounds: int) -> int:
    with Registry(home) as reg:
        for _ in range(rounds):
            for version in versions:
                reg.set_alias(name, "production", version)
    return rounds * len(versions)


def move_alias_at(catalog: str, store: str, name: str, versions: list[int], rounds: int) -> int:
    with Registry(catalog=catalog, store=store) as reg:
        for _ in range(rounds):
            for version in versions:
                reg.set_alias(name, "production", version)
    return rounds * len(versions)


def check_alias_trail(reg: Registry, name: str, alias: str) -> int:
    """Assert the alias events form one unbroken chain ending at the alias's target; return how many there are.

    Concurrent movers must be serialized: each event's ``old`` is the
    previous event's ``new``, and the periods abut one another.
    """
    events = [e for e in reg.events(name) if e.alias == alias]
    for before, after in zip(events, events[1:], strict=False):
        assert after.old == before.new, (before, after)
        assert after.action == "alias.move" and before.at <= after.at
    periods = reg.alias_history(name, alias)
    assert all(a.until == b.since for a, b in zip(periods, periods[1:], strict=False))
    assert periods[-1].until is None and periods[-1].version == reg.get(f"{name}@{alias}").version
    return len(events)


class _Counter(logging.Handler):
    def __init__(self) -> None:
        super().__init__()
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


def open_and_count_migrations(home: str, start_at: float) -> int:
    """Open a registry at a shared start time; return how many migrations this process ran."""
    counter = _Counter()
    logger = logging.getLogger("registry.catalog.migrate")
    logger.addHandler(counter)
    logger.setLevel(logging.INFO)
    time.sleep(max(0.0, start_at - time.time()))
    with Registry(home) as reg:
        reg.models()
    return sum("migrated the catalog" in message for message in counter.messages)


def _say(line: object) -> None:
    """Write one whole line to stdout in one system call, so a SIGKILL cannot cut it.

    ``print`` writes the text and its newline separately, and when stdout is unbuffered (PYTHONUNBUFFERED, as
    CI sets it) those are two writes: a victim killed between them leaves "1491" joined to the zygote's "exit".
    """
    os.write(1, f"{line}\n".encode())


def register_forever(home: str) -> None:
    """The crash test's victim: register in a loop, announcing each committed version on stdout."""
    with Registry(home) as reg:
        i = reg.latest("victim").version if reg.models() else 0
        _say("ready")
        while True:
            payload: Any = {"i": i, "pad": bytes(i % 7 * 30_000)}
            mv = reg.register("victim", payload, format="pickle" if i % 2 else "joblib", tags={"i": str(i)})
            _say(mv.version)
            i += 1


def zygote(home: str) -> None:
    """Fork a fresh ``register_forever`` child for each line read on stdin; print the child's pid.

    Importing modelshelf, joblib and numpy costs about a second; forking an
    already-warm process lets the crash test afford many kills.
    """
    import joblib  # noqa: F401  (warm the imports the children use)

    for _ in sys.stdin:
        pid = os.fork()
        if pid == 0:
            try:
                register_forever(home)
            finally:
                os._exit(1)
        _say(pid)
        os.waitpid(pid, 0)
        _say("exit")


if __name__ == "__main__":
    zygote(sys.argv[1])


def promote_at(options: dict[str, Any], name: str, version: int, start_at: float, hold: float) -> str:
    """At a shared start time, promote ``version`` to production under no_regression; "promoted" or "refused".

    A second gate sleeps ``hold`` seconds while the gates are evaluated, so the two promoters' decisions
    overlap in time: only deciding and moving in one transaction keeps the outcome order-consistent.
    """
    from registry import PromotionRefused, Verdict, no_regression

    def hold_on(candidate: Any, current: Any) -> Verdict:
        time.sleep(hold)
        return Verdict(True, "held")

    time.sleep(max(0.0, start_at - time.time()))
    with Registry(**options) as reg:
        try:
            reg.promote(name, version, "production", require=[no_regression("accuracy", 0.005), hold_on])
        except PromotionRefused:
            return "refused"
    return "promoted"
