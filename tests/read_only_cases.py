"""What the read-only tests do to a registry: every write call, every read call, and a filled registry.

Shared by ``test_read_only.py`` (a writable directory opened read-only: the
refusal must come before anything is touched) and ``test_read_only_mount.py``
(a real read-only mount, as a serving container has).
"""

from __future__ import annotations

import pickle
import sys
from collections.abc import Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from registry import Registry

#: Each write of the public API, as a call on an open registry; ``files`` holds a model file and a bundle.
#: ``test_every_public_method_is_a_read_or_a_write`` makes a new method of Registry land here or in READS.
WRITES: dict[str, Callable[[Registry, Path], Any]] = {
    "register": lambda reg, files: reg.register("m", [9], format="pickle"),
    "register_file": lambda reg, files: reg.register_file("m", files / "model.pkl", format="pickle", check=False),
    "set_alias": lambda reg, files: reg.set_alias("m", "staging", 1),
    "delete_alias": lambda reg, files: reg.delete_alias("m", "production"),
    "log_metrics": lambda reg, files: reg.log_metrics("m", 1, {"accuracy": 0.5}),
    "set_tags": lambda reg, files: reg.set_tags("m", 1, {"k": "v"}),
    "delete_version": lambda reg, files: reg.delete_version("m", 1),
    "import_bundle": lambda reg, files: reg.import_bundle(files / "other.tar", allow_unsigned=True),
    "seal": lambda reg, files: reg.seal("m"),
    "gc": lambda reg, files: reg.gc(dry_run=False, min_age=0),
    "repair": lambda reg, files: reg.repair(),
    "promote": lambda reg, files: reg.promote("m", 1, "production", require=["no_regression:accuracy:0.1"]),
    "protect_alias": lambda reg, files: reg.protect_alias("m", "production", require=["signed"]),
    "unprotect_alias": lambda reg, files: reg.unprotect_alias("m", "production", reason="read-only test"),
    "migrate": lambda reg, files: reg.migrate("m:1"),
    "record_refused_swap": lambda reg, files: reg.record_refused_swap(
        "m", 2, alias="production", served=1, reason="read-only test", kind="canary"
    ),
}


#: Every other public method: each is called by :func:`read_everything` (``close`` by the ``with`` around it).
READS = frozenset(
    {
        "alias_at",
        "alias_history",
        "alias_protections",
        "alias_names",
        "ancestors",
        "best",
        "canary",
        "check",
        "close",
        "events",
        "export_bundle",
        "fetch",
        "get",
        "latest",
        "load",
        "metric_names",
        "metric_series",
        "metrics_history",
        "model_summaries",
        "models",
        "open_artifact",
        "preflight",
        "search",
        "verify",
        "version_history",
        "versions",
        "versions_importing",
        "versions_page",
        "watch_aliases",
    }
)


def fill(home: Path, files: Path) -> None:
    """A registry with two versions of ``m`` (metrics, tags, an alias, a logged metric) and ``other``.

    ``files`` gets a model file to register and a bundle of another
    registry's model to import; the registry is closed, so no ``-wal`` or
    ``-shm`` file is left beside the catalog.
    """
    files.mkdir(parents=True, exist_ok=True)
    (files / "model.pkl").write_bytes(pickle.dumps([7]))
    with Registry(home) as reg:
        reg.register("m", [1], format="pickle", metrics={"accuracy": 0.9}, tags={"team": "cv"})
        reg.register("m", [1, 2], format="pickle", metrics={"accuracy": 0.95}, parent="m:1")
        reg.set_alias("m", "production", 2)
        reg.log_metrics("m", 2, {"accuracy": 0.96}, step=1)
        reg.register("other", {"plain": True}, format="pickle")
    with Registry(files / "elsewhere") as elsewhere:
        elsewhere.register("imported", [3], format="pickle")
        elsewhere.export_bundle(["imported:1"], files / "other.tar")


def read_everything(reg: Registry, out: Path) -> None:
    """Every read of the public API, each checked against what :func:`fill` wrote."""
    assert reg.models() == ["m", "other"]
    assert [summary.name for summary in reg.model_summaries()] == ["m", "other"]
    assert reg.get("m@production").version == 2
    assert reg.alias_protections("m") == {}
    assert reg.latest("m").version == 2
    assert [mv.version for mv in reg.versions("m")] == [1, 2]
    assert reg.load("m:1") == [1]
    assert reg.load("m@production", safe=True) == [1, 2]
    assert [mv.ref for mv in reg.search(where="metrics.accuracy > 0.92")] == ["m:2"]
    assert reg.best("m", "accuracy").version == 2
    assert [point.value for point in reg.metrics_history("m", "accuracy")] == [0.9, 0.95, 0.96]
    assert reg.events("m")
    assert [period.version for period in reg.alias_history("m", "production")] == [2]
    assert reg.ancestors("m:2") == ["m:1"]
    assert reg.versions_importing(["os.system"]) == []
    assert [mv.version for mv in reg.versions_page("m", limit=1).versions] == [1]
    assert reg.metric_names("m") == ["accuracy"]
    assert reg.canary("m:1") is None  # a list has no predict: no canary was recorded
    assert reg.metric_series("m", ["accuracy"]) == {"accuracy": [(1, 0.9), (2, 0.96)]}
    assert [point.value for point in reg.version_history("m", 2)] == [0.95, 0.96]
    assert reg.alias_names("m") == ["production"]
    assert reg.check("m:1").status == "no canary"  # a read: it loads nothing here, and writes nothing anywhere
    (preflown,) = reg.preflight(sys.executable, ["m:1"]).results  # another interpreter loads it; nothing written
    assert (preflown.status, preflown.canary) == ("loads", "no canary")
    assert getattr(reg.alias_at("m", "production", datetime.now(UTC)), "version", None) == 2
    with reg.open_artifact("m:1") as artifact:
        assert pickle.loads(artifact.read()) == [1]
    report = reg.verify()
    assert report.ok, report.problems
    assert reg.gc().dry_run  # the default is a dry run: a read
    assert reg.repair(dry_run=True).ok
    out.mkdir(parents=True, exist_ok=True)
    reg.fetch("m:1", out / "m1.pkl")
    assert pickle.loads((out / "m1.pkl").read_bytes()) == [1]
    reg.export_bundle(["m@production"], out / "m.tar")
    assert (out / "m.tar").stat().st_size > 0
    assert reg.watch_aliases(lambda notice: None) is None  # a SQLite catalog tells of no move (it is polled)


def snapshot(root: Path) -> dict[str, bytes | None]:
    """Every path under ``root`` with the bytes of each file (``None`` for a directory)."""
    return {
        str(path.relative_to(root)): (None if path.is_dir() else path.read_bytes()) for path in sorted(root.rglob("*"))
    }
