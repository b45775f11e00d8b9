"""The modelshelf benchmark suite: modelshelf, raw joblib and MLflow side by side, on the same disk, in one run.

    python -m benchmarks            # everything but the 1 GB model, the growth table to 1,000,000 versions
    python -m benchmarks --large    # adds the 1 GB model
    python -m benchmarks --quick    # smaller counts, for a smoke run (growth to 10,000 versions)
    python -m benchmarks --max-versions 100000   # the growth table's largest catalog
    python -m benchmarks --no-mlflow             # leave MLflow out even when it is installed
    python -m benchmarks --only search small     # some groups only (RESULTS.md keeps the others' rows)
    python -m benchmarks --only load-budgets     # issue 11's one-read budgets for a ~100 MB forest
    python -m benchmarks --only objectstore      # ~100 MB on PostgreSQL + S3 (moto) against s3fs's own put_file
    python -m benchmarks --only mapped           # memory of 4 workers: load(mmap=True) against plain loads
    python -m benchmarks --only compression      # register(compress=...) against joblib.dump(compress=...)

MLflow runs for real, in child processes on its fastest local path (see
:mod:`benchmarks.mlflow_child`), when the ``bench`` extra is installed
(``pip install -e '.[bench]'``); without it its cells say ``not installed``.

Prints, then writes into ``benchmarks/RESULTS.md`` (date, machine and load
included) and ``benchmarks/results.json``: the issue's table (workload,
joblib, modelshelf, MLflow and both ratios, :mod:`benchmarks.summary`), the
growth table (:mod:`benchmarks.growth`), and every measurement behind them.
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
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from benchmarks import mlflow_env
from benchmarks.budgets import bench_load_budgets
from benchmarks.compression import bench_compression
from benchmarks.growth import SIZES, Growth, bench_growth
from benchmarks.mapped import bench_mapped
from benchmarks.models import small_model
from benchmarks.objectstore import bench_object_store
from benchmarks.search import bench_search
from benchmarks.summary import NOTES, Summary
from benchmarks.writers import race

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent


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


class Side:
    """Where MLflow runs in this run (one SQLite database and artifact directory), or why it does not."""

    def __init__(self, work: Path, wanted: bool) -> None:
        self.version = mlflow_env.installed()
        self.home = work / "mlflow"
        self.absent = "not run (--no-mlflow)" if not wanted else None if self.version else mlflow_env.NOT_INSTALLED
        self.ready = False

    def run(self, operation: str, *args: object) -> dict[str, Any]:
        if not self.ready:
            mlflow_env.run("setup", self.home)  # MLflow's migrations, once a run
            self.ready = True
        return mlflow_env.run(operation, self.home, *args)

    def cell(self, value: float | None) -> float | str:
        return self.absent if self.absent is not None else "—" if value is None else value


def bench_small(work: Path, results: Results, summary: Summary, side: Side, repeat: int) -> None:
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
    theirs = side.run("small", repeat) if side.absent is None else {}
    group = "1 register small"
    results.add(
        group,
        "modelshelf register (durable)",
        register,
        baseline=durable,
        baseline_name="joblib.dump+fsync",
        target="target <= 2 ms",
    )
    results.add(group, "modelshelf register vs plain dump", register, baseline=dump, baseline_name="joblib.dump")
    if theirs:
        results.add(group, "MLflow log_model to a registered version", theirs["register"])
        results.add(
            group,
            "modelshelf register vs MLflow (measured)",
            register,
            baseline=theirs["register"],
            baseline_name="MLflow",
            target="<= 1/25",
        )
    summary.set(
        "register",
        "register a small model, per version",
        joblib=durable,
        joblib_note="dump+fsync",
        modelshelf=register,
        mlflow=side.cell(theirs.get("register")),
    )

    from sklearn.datasets import load_iris

    data = load_iris(return_X_y=True)
    plain = median_ms(lambda: reg.register("iris-data", model, data=data, canary=False), repeat)
    canary = median_ms(lambda: reg.register("iris-data", model, data=data), repeat)
    results.add(
        group,
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
            target="target <= 0.25 ms",
        )
        if theirs:
            results.add(
                "2 load warm",
                f"modelshelf load {label} vs MLflow load_model (measured)",
                ms,
                baseline=theirs[f"load {label}"],
                baseline_name="MLflow",
            )
        summary.set(
            f"load {label}",
            f"warm load {label}",
            joblib=load,
            joblib_note="joblib.load",
            modelshelf=ms,
            mlflow=side.cell(theirs.get(f"load {label}")),
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


def bench_metadata(work: Path, results: Results, summary: Summary, side: Side, repeat: int, versions: int) -> None:
    from registry import Registry

    deep = Registry(work / "deep")
    populate(deep, ["deep"], versions, 5)
    deep.set_alias("deep", "production", versions // 2)
    wide = Registry(work / "wide")
    populate(wide, [f"model-{i:04d}" for i in range(versions // 10)], 10, 5)
    middle = f"model-{versions // 20:04d}"
    wide.set_alias(middle, "production", 3)
    theirs = side.run("metadata", versions, repeat) if side.absent is None else {}
    ours: dict[str, float] = {}
    for label, reg, name in ((f"1 model x {versions}", deep, "deep"), (f"{versions // 10} models x 10", wide, middle)):
        for lookup, ref in (("get pinned", f"{name}:7"), ("latest", name), ("alias", f"{name}@production")):
            call = (
                (lambda reg=reg, name=name: reg.latest(name))
                if lookup == "latest"
                else (lambda reg=reg, ref=ref: reg.get(ref))
            )
            ms = median_ms(call, repeat * 4)
            ours.setdefault(lookup, ms)  # the deep model's figure: the one MLflow is measured on too
            results.add("3 metadata", f"{lookup} ({label})", ms, target="target <= 0.10 ms")
    for lookup, key, workload in (
        ("get pinned", "get pinned", "get a pinned version"),
        ("latest", "get latest", "get the latest version"),
        ("alias", "get alias", "resolve an alias"),
    ):
        if theirs:
            results.add(
                "3 metadata",
                f"{lookup} vs MLflow (1 model x {versions}, measured)",
                ours[lookup],
                baseline=theirs[lookup],
                baseline_name="MLflow",
            )
        summary.set(
            key, f"{workload} at {versions:,} versions", modelshelf=ours[lookup], mlflow=side.cell(theirs.get(lookup))
        )
    if theirs:
        results.add(
            "3 metadata",
            f"MLflow get_latest_versions, as models:/NAME/latest resolves (1 model x {versions})",
            theirs["latest via get_latest_versions"],
        )
    history = median_ms(lambda: deep.metrics_history("deep", "m1"), max(3, repeat // 4))
    results.add("4 metrics_history", f"one metric over {versions} versions", history, target="target <= 10 ms")
    summary.set(
        "metrics_history",
        f"one metric over {versions:,} versions",
        modelshelf=history,
        mlflow="—",
        mlflow_note="",
    )
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
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


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


def bench_budgets(work: Path, results: Results, summary: Summary, side: Side, megabytes: int, rounds: int) -> None:
    """Group 9, and the table's two rows of the forest: modelshelf and MLflow loads in fresh processes."""
    loader = None
    if side.absent is None:

        def loader(operation: str, workdir: Path) -> dict[str, float]:
            if operation == "log":
                return side.run("log", "forest", workdir / "forest.joblib")
            return side.run("load", "models:/forest/1", "again" if operation.endswith("again") else "first")

    medians = bench_load_budgets(work, results, megabytes, rounds, mlflow=loader)
    size = f"{medians['megabytes']:.0f} MB forest"
    for key, label, ours, theirs in (
        ("large first", f"{size}, first verified load", "load-registry", "load-mlflow"),
        ("large again", f"{size}, repeated load", "load-registry-again", "load-mlflow-again"),
    ):
        summary.set(
            key,
            label,
            joblib=medians["load-joblib"],
            joblib_note="joblib.load",
            modelshelf=medians[ours],
            mlflow=side.cell(medians.get(theirs)),
            mlflow_note="unverified" if theirs in medians else "",
        )


def bench_cold(work: Path, results: Results, summary: Summary, side: Side, repeat: int) -> None:
    """A fresh ``python -c`` that imports, opens the registry and loads the latest version; rounds interleaved."""
    from registry import Registry

    with Registry(work / "cold") as reg:
        reg.register("iris", small_model())
        reg.fetch("iris", work / "cold.joblib")
    codes = {
        "joblib": (f"import joblib; joblib.load({str(work / 'cold.joblib')!r})", None),
        "modelshelf": (f"from registry import Registry; Registry({str(work / 'cold')!r}).load('iris')", None),
    }
    if side.absent is None:
        side.run("log", "cold", work / "cold.joblib")
        codes["mlflow"] = (
            "import mlflow.sklearn; mlflow.sklearn.load_model('models:/cold/latest')",
            mlflow_env.environment(side.home),
        )
    times: dict[str, list[float]] = {tool: [] for tool in codes}
    empty = work / "cold-cwd"  # a directory with nothing importable in it, the same for every tool
    empty.mkdir()
    for _ in range(repeat):  # round by round, so drift on a shared machine hits every tool alike
        for tool, (code, env) in codes.items():
            started = time.perf_counter()
            subprocess.run([sys.executable, "-c", code], check=True, env=env, cwd=empty)
            times[tool].append((time.perf_counter() - started) * 1000)
    ms = {tool: statistics.median(values) for tool, values in times.items()}
    results.add(
        "6 cold process",
        "python -c: open registry, load latest",
        ms["modelshelf"],
        baseline=ms["joblib"],
        baseline_name="python -c joblib.load",
        target="target <= 1.15x",
    )
    if "mlflow" in ms:
        results.add(
            "6 cold process",
            "python -c: open registry, load latest, vs MLflow (measured)",
            ms["modelshelf"],
            baseline=ms["mlflow"],
            baseline_name="MLflow load_model",
        )
    summary.set(
        "cold",
        "cold process: start, import, open, load latest",
        joblib=ms["joblib"],
        joblib_note="python + joblib.load",
        modelshelf=ms["modelshelf"],
        mlflow=side.cell(ms.get("mlflow")),
    )


def bench_concurrency(work: Path, results: Results, summary: Summary, side: Side, per_writer: int) -> None:
    from registry import Registry

    for writers in (4, 8):
        home = work / f"concurrent-{writers}"
        Registry(home).close()
        ours = race("modelshelf", home, "shared", writers, per_writer)
        theirs = race("mlflow", side.home, f"shared-{writers}", writers, per_writer) if side.absent is None else None
        label = f"{writers} writers x {per_writer} versions"
        results.add(
            "7 concurrency",
            f"{label}, modelshelf ({ours.errors} errors)",
            ours.rate,
            unit="ver/s",
            baseline=None if theirs is None else theirs.rate,
            baseline_name="MLflow (measured)",
            target=">= 10x MLflow",
        )
        if theirs is not None:
            results.add("7 concurrency", f"{label}, MLflow ({theirs.errors} errors)", theirs.rate, unit="ver/s")
            if theirs.first_error:
                print(f"7 concurrency          MLflow's first error: {theirs.first_error}", flush=True)
        if ours.first_error:
            print(f"7 concurrency          modelshelf's first error: {ours.first_error}", flush=True)
        summary.set(
            f"writers {writers}",
            f"{writers} writers × {per_writer} versions",
            unit="versions/s",
            modelshelf=ours.rate,
            mlflow=side.cell(None if theirs is None else theirs.rate),
            mlflow_note="" if theirs is None or not theirs.errors else f"{theirs.errors} errors",
            errors=ours.errors,
        )


def machine() -> dict[str, Any]:
    return {
        "date": datetime.now(UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "python": platform.python_version(),
        "platform": platform.platform(terse=True),
        "machine": platform.machine(),
        "cpus": os.cpu_count(),
        "load": [round(x, 2) for x in os.getloadavg()],
    }


def write_reports(results: Results, summary: Summary, growth: Growth | None, info: dict[str, Any]) -> None:
    document = {
        "machine": info,
        "summary": summary.to_json(),
        "growth": None if growth is None else growth.to_json(),
        "results": results.rows,
    }
    (HERE / "results.json").write_text(json.dumps(document, indent=1, ensure_ascii=False) + "\n")
    load = info.get("load") or []
    lines = [
        "# Benchmark results",
        "",
        "Generated by `python -m benchmarks` (do not edit by hand).",
        "",
        f"- date: {info['date']}",
        f"- machine: {info['platform']}, {info['machine']}, {info['cpus']} CPUs, Python {info['python']}",
        f"- load average (1, 5, 15 min) when the run ended: {', '.join(map(str, load))}",
        f"- MLflow: {info.get('mlflow')}",
        "- every figure is a median of this run; ratios are modelshelf over the other (times: below 1 is faster;"
        " rates: above 1 is faster)",
        "",
        "## Side by side",
        "",
        summary.markdown(),
        "",
        *[f"- {note}" for note in NOTES],
        "",
    ]
    if growth is not None:
        lines += [
            "## Growth: one model with 1,000 to 1,000,000 versions",
            "",
            "Each catalog seeded by bulk insert (benchmarks/seeding.py); the ratios are to the 1,000-version figure.",
            "",
            growth.markdown(),
            "",
        ]
    lines += [
        "## Every measurement",
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
    "growth": ("10 ",),
    "objectstore": ("11 ",),
    "mapped": ("12 ",),
    "compression": ("13 ",),
}


def previous_report() -> dict[str, Any]:
    path = HERE / "results.json"
    return json.loads(path.read_text()) if path.exists() else {}


def keep_other_groups(results: Results, summary: Summary, ran: list[str], previous: dict[str, Any]) -> None:
    """With ``--only``, keep the rows of the groups not run (and the table's rows not measured) from the last run."""
    prefixes = tuple(prefix for name in ran for prefix in GROUPS[name])
    kept = [row for row in previous.get("results", []) if not row["group"].startswith(prefixes)]
    results.rows = sorted(kept + results.rows, key=lambda row: int(row["group"].split()[0]))
    before = Summary.from_json(previous.get("summary") or [])
    for key, row in summary.rows.items():
        before.rows[key] = row
    summary.rows = before.rows


def main() -> None:
    parser = argparse.ArgumentParser(description="modelshelf benchmarks")
    parser.add_argument("--large", action="store_true", help="also measure a 1 GB model")
    parser.add_argument("--quick", action="store_true", help="small counts, for a smoke run")
    parser.add_argument("--only", nargs="+", choices=sorted(GROUPS), help="run only these groups")
    parser.add_argument(
        "--max-versions",
        type=int,
        default=None,
        help=f"the growth table's largest catalog (default {SIZES[-1]:,}; 10,000 with --quick)",
    )
    parser.add_argument("--no-mlflow", action="store_true", help="do not run MLflow even when it is installed")
    args = parser.parse_args()
    if args.max_versions is not None and args.max_versions < 1:
        parser.error("--max-versions must be at least 1")
    repeat = 7 if args.quick else 25
    versions = 1000 if args.quick else 10_000
    max_versions = args.max_versions or (10_000 if args.quick else SIZES[-1])
    run = args.only or list(GROUPS)
    results, summary, growth = Results(), Summary(), None
    previous = previous_report()
    work = Path(tempfile.mkdtemp(prefix="modelshelf-bench-", dir=os.environ.get("MODELSHELF_BENCH_DIR")))
    side = Side(work, wanted=not args.no_mlflow)
    print(f"MLflow: {side.version or 'not installed'}" + (f" ({side.absent})" if side.absent else ""), flush=True)
    steps: list[tuple[str, Callable[[], Any]]] = [
        ("small", lambda: bench_small(work, results, summary, side, repeat)),
        ("metadata", lambda: bench_metadata(work, results, summary, side, repeat, versions)),
        (
            "large",
            lambda: [
                bench_large(work, results, megabytes, 1 if args.quick or megabytes > 500 else 3)
                for megabytes in ([100, 1024] if args.large else [20 if args.quick else 100])
            ],
        ),
        ("cold", lambda: bench_cold(work, results, summary, side, 3 if args.quick else 7)),
        ("concurrency", lambda: bench_concurrency(work, results, summary, side, 5 if args.quick else 25)),
        ("search", lambda: bench_search(work, results, repeat, versions, median_ms)),
        (
            "load-budgets",
            lambda: bench_budgets(work, results, summary, side, 20 if args.quick else 100, 2 if args.quick else 7),
        ),
        ("growth", lambda: bench_growth(work, max_versions, budget=0.2 if args.quick else 0.5)),
        (
            "objectstore",
            lambda: bench_object_store(work, results, summary, 20 if args.quick else 100, 3 if args.quick else 5),
        ),
        ("mapped", lambda: bench_mapped(work, results, 20 if args.quick else 100)),
        ("compression", lambda: bench_compression(work, results, 10 if args.quick else 50, 1 if args.quick else 3)),
    ]
    took: dict[str, float] = {}
    try:
        for name, step in steps:
            if name in run:
                started = time.perf_counter()
                done = step()
                took[name] = time.perf_counter() - started
                if name == "growth":
                    growth = done
    finally:
        shutil.rmtree(work, ignore_errors=True)
    if args.only:
        keep_other_groups(results, summary, run, previous)
        if growth is None and previous.get("growth"):
            growth = Growth.from_json(previous["growth"])
    summary.finish()
    info = machine()
    info["mlflow"] = (
        f"{side.version}, measured in this run (SQLite tracking and registry, local artifacts)"
        if side.absent is None
        else f"{side.absent}: {mlflow_env.INSTALL} to measure it"
    )
    print()
    print(summary.text())
    print("\n".join(f"  - {note}" for note in NOTES))
    if side.absent == mlflow_env.NOT_INSTALLED:
        print(f"\nMLflow is not installed: {mlflow_env.INSTALL} to measure it side by side.")
    if growth is not None:
        print()
        print(growth.text())
    print("\ntime per group: " + ", ".join(f"{name} {seconds:.0f} s" for name, seconds in took.items()))
    write_reports(results, summary, growth, info)


if __name__ == "__main__":
    main()
