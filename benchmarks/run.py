"""The modelshelf benchmark suite: modelshelf side by side with raw joblib, on the same disk, in one run.

    python -m benchmarks            # everything but the 1 GB model (a few minutes)
    python -m benchmarks --large    # adds the 1 GB model
    python -m benchmarks --quick    # smaller counts, for a smoke run
    python -m benchmarks --only search small     # some groups only (RESULTS.md keeps the others' rows)
    python -m benchmarks --only load-budgets     # issue 11's one-read budgets for a ~100 MB forest

Prints a table of medians and ratios, writes ``benchmarks/results.json`` and
regenerates ``benchmarks/RESULTS.md`` (date and machine included). MLflow is
not run here: its rows compare against the MLflow 3.17 figures quoted in the
performance issue (measured on a similar 2-core machine), marked as such.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from concurrent.futures import ProcessPoolExecutor
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks.budgets import bench_load_budgets
from benchmarks.search import bench_search

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent

#: Figures the performance issue reports for MLflow 3.17 on a similar machine (not measured here).
MLFLOW_REFERENCE_MS = {
    "register small model": 175.0,
    "load latest (warm)": 24.0,
    "metadata lookup": 10.0,
    "metrics_history over 100 versions": 46.0,
    "cold process load": 5200.0,
}


def median_ms(action: Callable[[], Any], repeat: int, setup: Callable[[], Any] | None = None) -> float:
    times = []
    for _ in range(repeat):
        if setup:
            setup()
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


class Results:
    def __init__(self) -> None:
        self.rows: list[dict[str, Any]] = []

    def add(
        self,
        group: str,
        name: str,
        value: float,
        unit: str = "ms",
        baseline: float | None = None,
        baseline_name: str = "",
        target: str = "",
    ) -> None:
        ratio = None if baseline in (None, 0) else value / baseline  # type: ignore[operator]
        self.rows.append(
            {
                "group": group,
                "name": name,
                "value": round(value, 4),
                "unit": unit,
                "baseline": None if baseline is None else round(baseline, 4),
                "baseline_name": baseline_name,
                "ratio": None if ratio is None else round(ratio, 3),
                "target": target,
            }
        )
        shown = f"{value:10.3f} {unit:<6}"
        if ratio is not None:
            shown += f"  {ratio:6.2f}x {baseline_name} ({baseline:.3f} {unit})"
        print(f"{group:<22} {name:<44} {shown}  {target}", flush=True)


def small_model() -> Any:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression

    X, y = load_iris(return_X_y=True)
    return LogisticRegression(max_iter=300).fit(X, y)


def bench_small(work: Path, results: Results, repeat: int) -> None:
    import joblib

    from registry import Registry

    model = small_model()
    reg = Registry(work / "small")
    register = median_ms(lambda: reg.register("iris", model, metrics={"accuracy": 0.97}), repeat)
    path = work / "iris.joblib"
    dump = median_ms(lambda: joblib.dump(model, path), repeat)

    def dump_fsync() -> None:
        with open(path, "wb") as file:
            joblib.dump(model, file)
            file.flush()
            os.fsync(file.fileno())

    durable = median_ms(dump_fsync, repeat)
    results.add(
        "1 register small",
        "modelshelf register (durable)",
        register,
        baseline=durable,
        baseline_name="joblib.dump+fsync",
        target="target <= 5 ms",
    )
    results.add(
        "1 register small", "modelshelf register vs plain dump", register, baseline=dump, baseline_name="joblib.dump"
    )
    results.add(
        "1 register small",
        "vs MLflow (issue's figure)",
        register,
        baseline=MLFLOW_REFERENCE_MS["register small model"],
        baseline_name="MLflow",
        target="<= 1/30",
    )

    from sklearn.datasets import load_iris

    data = load_iris(return_X_y=True)
    plain = median_ms(lambda: reg.register("iris-data", model, data=data, canary=False), repeat)
    canary = median_ms(lambda: reg.register("iris-data", model, data=data), repeat)
    results.add(
        "1 register small",
        "register with data=: a 64-row prediction canary",
        canary,
        baseline=plain,
        baseline_name="canary=False",
    )

    reg.set_alias("iris", "production", 1)
    load = median_ms(lambda: joblib.load(path), repeat * 4)
    for label, ref in (("latest", "iris"), ("pinned", "iris:1"), ("alias", "iris@production")):
        ms = median_ms(lambda ref=ref: reg.load(ref), repeat * 4)
        results.add(
            "2 load warm",
            f"modelshelf load {label} (verified)",
            ms,
            baseline=load,
            baseline_name="joblib.load",
            target="target <= 1 ms",
        )
    ms = median_ms(lambda: reg.load("iris"), repeat * 4)
    results.add(
        "2 load warm",
        "vs MLflow (issue's figure)",
        ms,
        baseline=MLFLOW_REFERENCE_MS["load latest (warm)"],
        baseline_name="MLflow",
        target="<= 1/20",
    )
    reg.close()


def populate(reg: Any, names: list[str], per_name: int, metrics: int) -> None:
    """Fill a catalog fast through the real write path, many versions per transaction."""
    from registry.domain import Draft
    from registry.provenance.environment import current_environment

    with reg._store.stage(lambda file: file.write(b"tiny artifact")) as staged:
        batch = []
        for name in names:
            for i in range(per_name):
                batch.append(
                    (
                        Draft(
                            name=name,
                            format="pickle",
                            params={"i": i},
                            metrics={f"m{k}": (i * 7 + k) % 100 / 100 for k in range(metrics)},
                            tags={"batch": str(i % 10)},
                            environment=current_environment(),
                        ),
                        staged,
                    )
                )
                if len(batch) == 500:
                    reg._commit_all(batch)
                    batch = []
        if batch:
            reg._commit_all(batch)


def bench_metadata(work: Path, results: Results, repeat: int, versions: int) -> None:
    from registry import Registry

    deep = Registry(work / "deep")
    populate(deep, ["deep"], versions, 5)
    deep.set_alias("deep", "production", versions // 2)
    wide = Registry(work / "wide")
    populate(wide, [f"model-{i:04d}" for i in range(versions // 10)], 10, 5)
    middle = f"model-{versions // 20:04d}"
    wide.set_alias(middle, "production", 3)
    for label, reg, name in ((f"1 model x {versions}", deep, "deep"), (f"{versions // 10} models x 10", wide, middle)):
        results.add(
            "3 metadata",
            f"get pinned ({label})",
            median_ms(lambda reg=reg, name=name: reg.get(f"{name}:7"), repeat * 4),
            target="target <= 0.5 ms",
        )
        results.add(
            "3 metadata",
            f"latest ({label})",
            median_ms(lambda reg=reg, name=name: reg.latest(name), repeat * 4),
            target="target <= 0.5 ms",
        )
        results.add(
            "3 metadata",
            f"alias ({label})",
            median_ms(lambda reg=reg, name=name: reg.get(f"{name}@production"), repeat * 4),
            target="target <= 0.5 ms",
        )
    history = median_ms(lambda: deep.metrics_history("deep", "m1"), max(3, repeat // 4))
    results.add("4 metrics_history", f"one metric over {versions} versions", history, target="target <= 20 ms")
    deep.close()
    wide.close()


def child(operation: str, work: Path, megabytes: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.child", operation, str(work), str(megabytes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def bench_large(work: Path, results: Results, megabytes: int, repeat: int) -> None:
    group = f"5 large ({megabytes} MB)"

    def best(operation: str) -> dict[str, float]:
        runs = [child(operation, work, megabytes) for _ in range(repeat)]
        return {
            "seconds": statistics.median(r["seconds"] for r in runs),
            "peak_extra_mb": statistics.median(r["peak_extra_mb"] for r in runs),
        }

    dump, durable, register = best("dump"), best("dump+fsync"), best("register")
    results.add(
        group,
        "register",
        register["seconds"] * 1000,
        baseline=durable["seconds"] * 1000,
        baseline_name="joblib.dump+fsync",
        target="target <= 1.10x",
    )
    results.add(
        group,
        "register vs plain dump",
        register["seconds"] * 1000,
        baseline=dump["seconds"] * 1000,
        baseline_name="joblib.dump",
    )
    results.add(
        group,
        "peak extra memory, register",
        register["peak_extra_mb"],
        unit="MB",
        baseline=max(durable["peak_extra_mb"], 1.0),
        baseline_name="joblib.dump",
        target="target <= 1.2x",
    )
    load, first, again = best("load-joblib"), best("load-registry"), best("load-registry-again")
    results.add(
        group,
        "load, first (verified)",
        first["seconds"] * 1000,
        baseline=load["seconds"] * 1000,
        baseline_name="joblib.load",
        target="target <= 1.30x",
    )
    results.add(
        group,
        "load, repeated",
        again["seconds"] * 1000,
        baseline=load["seconds"] * 1000,
        baseline_name="joblib.load",
        target="target <= 1.05x",
    )
    results.add(
        group,
        "peak extra memory, load",
        first["peak_extra_mb"],
        unit="MB",
        baseline=max(load["peak_extra_mb"], 1.0),
        baseline_name="joblib.load",
        target="target <= 1.2x",
    )


def bench_cold(work: Path, results: Results, repeat: int) -> None:
    import joblib

    from registry import Registry

    with Registry(work / "cold") as reg:
        reg.register("iris", small_model())
        reg.fetch("iris", work / "cold.joblib")
    ours = f"from registry import Registry; Registry({str(work / 'cold')!r}).load('iris')"
    theirs = f"import joblib; joblib.load({str(work / 'cold.joblib')!r})"

    def run(code: str) -> float:
        return median_ms(lambda: subprocess.run([sys.executable, "-c", code], check=True), repeat)

    joblib_ms = run(theirs)
    ours_ms = run(ours)
    results.add(
        "6 cold process",
        "python -c: open registry, load latest",
        ours_ms,
        baseline=joblib_ms,
        baseline_name="python -c joblib.load",
        target="target <= 1.15x",
    )
    assert joblib  # imported to warm the disk cache of the same modules for both


def register_many(home: str, count: int) -> int:
    from registry import Registry

    with Registry(home) as reg:
        for i in range(count):
            reg.register("shared", {"i": i, "pad": bytes(2000)}, format="pickle")
    return count


def bench_concurrency(work: Path, results: Results, per_writer: int) -> None:
    for writers in (4, 8):
        home = str(work / f"concurrent-{writers}")
        from registry import Registry

        Registry(home).close()
        started = time.perf_counter()
        with ProcessPoolExecutor(writers) as pool:
            done = sum(pool.map(register_many, [home] * writers, [per_writer] * writers))
        seconds = time.perf_counter() - started
        results.add(
            "7 concurrency",
            f"{writers} processes x {per_writer} registrations",
            done / seconds,
            unit="ver/s",
            baseline=100 / 13.5 if writers == 8 else None,
            baseline_name="MLflow 4 writers (issue)",
            target="8 writers: >= 4x MLflow",
        )


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
    }


def write_reports(results: Results, info: dict[str, Any]) -> None:
    (HERE / "results.json").write_text(json.dumps({"machine": info, "results": results.rows}, indent=1) + "\n")
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks` (do not edit by hand).",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['platform']}, {info['machine']}, {info['cpus']} CPUs, Python {info['python']}",
        "- MLflow baselines are the figures quoted in the performance issue unless marked as measured.",
        "",
        "| group | measurement | value | baseline | ratio | target |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for row in results.rows:
        baseline = "" if row["baseline"] is None else f"{row['baseline_name']}: {row['baseline']} {row['unit']}"
        ratio = "" if row["ratio"] is None else f"{row['ratio']}x"
        lines.append(
            f"| {row['group']} | {row['name']} | {row['value']} {row['unit']} | {baseline} | {ratio} | "
            f"{row['target']} |"
        )
    (HERE / "RESULTS.md").write_text("\n".join(lines) + "\n")


#: The benchmark groups ``--only`` can name, and the result groups each one writes.
GROUPS = {
    "small": ("1 ", "2 "),
    "metadata": ("3 ", "4 "),
    "large": ("5 ",),
    "cold": ("6 ",),
    "concurrency": ("7 ",),
    "search": ("8 ",),
    "load-budgets": ("9 ",),
}


def keep_other_groups(results: Results, ran: list[str]) -> None:
    """With ``--only``, keep the rows of the groups not run from the previous ``results.json``."""
    previous = HERE / "results.json"
    if not previous.exists():
        return
    prefixes = tuple(prefix for name in ran for prefix in GROUPS[name])
    kept = [row for row in json.loads(previous.read_text())["results"] if not row["group"].startswith(prefixes)]
    results.rows = sorted(kept + results.rows, key=lambda row: int(row["group"].split()[0]))


def main() -> None:
    parser = argparse.ArgumentParser(description="modelshelf benchmarks")
    parser.add_argument("--large", action="store_true", help="also measure a 1 GB model")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(GROUPS), help="run only these groups")
    args = parser.parse_args()
    repeat = 7 if args.quick else 25
    versions = 1000 if args.quick else 10_000
    run = args.only or list(GROUPS)
    results = Results()
    work = Path(tempfile.mkdtemp(prefix="modelshelf-bench-", dir=os.environ.get("MODELSHELF_BENCH_DIR")))
    try:
        if "small" in run:
            bench_small(work, results, repeat)
        if "metadata" in run:
            bench_metadata(work, results, repeat, versions)
        if "large" in run:
            for megabytes in [100, 1024] if args.large else [20 if args.quick else 100]:
                bench_large(work, results, megabytes, 1 if args.quick or megabytes > 500 else 3)
        if "cold" in run:
            bench_cold(work, results, 3 if args.quick else 7)
        if "concurrency" in run:
            bench_concurrency(work, results, 10 if args.quick else 25)
        if "search" in run:
            bench_search(work, results, repeat, versions, median_ms)
        if "load-budgets" in run:
            bench_load_budgets(work, results, 20 if args.quick else 100, 3 if args.quick else 7)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.only:
        keep_other_groups(results, run)
    write_reports(results, machine())


if __name__ == "__main__":
    main()
