"""Many writers and readers at once on one SQLite catalog: nothing lost, nothing duplicated."""

from __future__ import annotations

import multiprocessing
import os
import threading
import time
from concurrent.futures import ProcessPoolExecutor, ThreadPoolExecutor
from pathlib import Path

import pytest

from registry import Registry
from tests import workers

WRITERS = 8
PER_WRITER = 25


@pytest.fixture(scope="module")
def pool():
    with ProcessPoolExecutor(max_workers=WRITERS, mp_context=multiprocessing.get_context("fork")) as executor:
        yield executor


def check_all_versions_load_their_own_object(home: Path, name: str, done: list[tuple[int, int, int]]) -> None:
    with Registry(home) as reg:
        for version, writer, i in done:
            assert reg.load(f"{name}:{version}") == {"writer": writer, "i": i}


def test_writers_of_one_name_get_every_version_exactly_once(home: Path, pool) -> None:
    futures = [pool.submit(workers.register_many, str(home), "shared", w, PER_WRITER) for w in range(WRITERS)]
    done = [row for future in futures for row in future.result()]
    assert sorted(version for version, _, _ in done) == list(range(1, WRITERS * PER_WRITER + 1))
    with Registry(home) as reg:
        assert [mv.version for mv in reg.versions("shared")] == list(range(1, WRITERS * PER_WRITER + 1))
    check_all_versions_load_their_own_object(home, "shared", done)


def test_writers_of_different_names_each_count_from_one(home: Path, pool) -> None:
    futures = {w: pool.submit(workers.register_many, str(home), f"model-{w}", w, PER_WRITER) for w in range(WRITERS)}
    for w, future in futures.items():
        done = future.result()
        assert [version for version, _, _ in done] == list(range(1, PER_WRITER + 1))
        check_all_versions_load_their_own_object(home, f"model-{w}", done)


def test_readers_never_see_an_incomplete_version(home: Path, tmp_path: Path, pool) -> None:
    stop = tmp_path / "stop"
    readers = [pool.submit(workers.read_latest_until, str(home), "busy", str(stop)) for _ in range(2)]
    writers = [pool.submit(workers.register_many, str(home), "busy", w, PER_WRITER) for w in range(WRITERS - 2)]
    done = [row for future in writers for row in future.result()]
    stop.touch()
    loads = [future.result() for future in readers]  # re-raises a reader's AssertionError
    assert sorted(v for v, _, _ in done) == list(range(1, (WRITERS - 2) * PER_WRITER + 1))
    assert all(count > 0 for count in loads)


def test_concurrent_alias_moves_leave_one_consistent_alias(home: Path, pool) -> None:
    with Registry(home) as reg:
        for i in range(5):
            reg.register("m", {"i": i}, format="pickle")
    futures = [
        pool.submit(workers.move_alias, str(home), "m", [1 + (w + j) % 5 for j in range(5)], 6) for w in range(4)
    ]
    assert sum(future.result() for future in futures) == 4 * 30
    with Registry(home) as reg:
        target = reg.get("m@production")
        assert 1 <= target.version <= 5
        assert [mv.version for mv in reg.versions("m") if "production" in mv.aliases] == [target.version]
        assert reg.load("m@production") == {"i": target.version - 1}
        assert 1 <= workers.check_alias_trail(reg, "m", "production") <= 4 * 30


def test_processes_opening_one_empty_directory_migrate_it_once(tmp_path: Path, pool) -> None:
    home = tmp_path / "empty"
    start_at = time.time() + 1.0
    futures = [pool.submit(workers.open_and_count_migrations, str(home), start_at) for _ in range(WRITERS)]
    assert sum(future.result() for future in futures) == 1  # and no process failed


def test_a_registry_opened_before_fork_works_in_the_children(home: Path) -> None:
    reg = Registry(home)
    reg.register("forked", {"parent": True}, format="pickle")
    pids = []
    for child in range(3):
        pid = os.fork()
        if pid == 0:  # the child: use the inherited Registry, report through the exit status
            code = 1
            try:
                reg.register("forked", {"child": child}, format="pickle")
                code = 0 if reg.load("forked:1") == {"parent": True} else 2
            finally:
                os._exit(code)
        pids.append(pid)
    statuses = [os.waitpid(pid, 0)[1] for pid in pids]
    assert all(os.waitstatus_to_exitcode(status) == 0 for status in statuses)
    assert [mv.version for mv in reg.versions("forked")] == [1, 2, 3, 4]
    assert reg.register("forked", {"parent": "again"}, format="pickle").version == 5  # the parent still works
    reg.close()


def test_threads_sharing_one_registry(reg: Registry) -> None:
    barrier = threading.Barrier(16)

    def work(thread: int) -> list[int]:
        barrier.wait()
        versions = []
        for i in range(5):
            mv = reg.register("threads", {"t": thread, "i": i}, format="pickle")
            assert reg.load(mv.ref) == {"t": thread, "i": i}
            versions.append(mv.version)
        return versions

    with ThreadPoolExecutor(16) as executor:
        versions = [v for result in executor.map(work, range(16)) for v in result]
    assert sorted(versions) == list(range(1, 81))


def test_a_writer_held_up_too_long_gets_a_clear_error(home: Path, monkeypatch) -> None:
    """Another process holds the write lock and never lets go: the wait is bounded and explained."""
    import sqlite3

    from registry import CatalogError
    from registry.catalog import engine

    monkeypatch.setattr(engine, "LOCK_TIMEOUT", 0.5)
    holder = sqlite3.connect(home / "catalog.db", isolation_level=None)
    holder.execute("BEGIN IMMEDIATE")
    try:
        with Registry(home) as reg:
            started = time.monotonic()
            with pytest.raises(CatalogError, match="locked by another writer"):
                reg.register("m", {"v": 1}, format="pickle")
            assert time.monotonic() - started < 10
            assert reg.models() == []  # readers are not blocked meanwhile (WAL)
    finally:
        holder.execute("ROLLBACK")
        holder.close()
    with Registry(home) as reg:
        assert reg.register("m", {"v": 1}, format="pickle").version == 1
