"""The load budgets of issue 11, measured side by side: one-read verified loads of a ~100 MB forest.

    python -m benchmarks --only load-budgets

A RandomForest of about the asked size is registered (joblib format) and
the very same bytes are written to a plain file. Then, each in a fresh
process and interleaved round by round (so drift on a shared machine hits
every operation alike), with the file in the page cache for all of them:

* ``sha256``: ``hashlib.file_digest`` of the plain file;
* ``joblib.load`` of the plain file;
* the first ``Registry.load`` of the process (one read into private memory,
  hashed there, zero-copy arrays) and a repeated one (no hash: the file's
  identity was unchanged before and after the read);
* the first ``Registry.load(..., safe=True)``: the same read, then the
  restricted interpreter instead of joblib (no budget of the issue's, shown
  for what safety costs);
* with MLflow installed, the same forest registered in MLflow and its first
  and repeated ``mlflow.sklearn.load_model`` (:mod:`benchmarks.mlflow_child`),
  in the same rounds.

Peak memory is ``ru_maxrss`` after the load minus ``ru_maxrss`` just before
it, in that fresh process, after the imports and opening the registry (the
high-water mark of the resident set, so a copy freed before the end still
counts). The budgets: first load <= 1.15 x (sha256 + joblib.load), repeated
load <= 1.25 x joblib.load, peak <= 1.25 x joblib.load's.

Usage of the child: python -m benchmarks.budgets OPERATION WORKDIR MEGABYTES; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import statistics
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
OPERATIONS = ("sha256", "load-joblib", "load-registry", "load-registry-again", "load-registry-safe")
MLFLOW_OPERATIONS = ("load-mlflow", "load-mlflow-again")
#: Runs MLflow's side in its own processes: ``("log", workdir)`` registers the forest, a load operation loads it.
Loader = Callable[[str, Path], dict[str, float]]


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def build(workdir: str, megabytes: int) -> dict[str, float]:
    """Fit a forest of about ``megabytes``, register it, and fetch its bytes to a plain file."""
    import numpy as np
    from sklearn.ensemble import RandomForestClassifier

    from registry import Registry

    rng = np.random.default_rng(0)
    rows = 40_000  # random labels: fully grown trees of ~1.2 MB each at this size
    X, y = rng.standard_normal((rows, 10)), rng.integers(0, 2, rows)
    forest = RandomForestClassifier(n_estimators=max(1, round(megabytes * 0.82)), random_state=0).fit(X, y)
    with Registry(os.path.join(workdir, "registry")) as reg:
        mv = reg.register("forest", forest)
        reg.fetch("forest", os.path.join(workdir, "forest.joblib"))
    return {"bytes": float(mv.size)}


def measure(operation: str, workdir: str) -> dict[str, float]:
    """Run one operation in this (fresh) process; its seconds and peak extra memory."""
    import hashlib

    import joblib
    import sklearn.ensemble  # noqa: F401  (imports are not what we measure)

    from registry import Registry

    path = os.path.join(workdir, "forest.joblib")
    reg = Registry(os.path.join(workdir, "registry"))
    reg.get("forest")  # the catalog is open and warm for every operation
    if operation == "load-registry-again":
        reg.load("forest")
    baseline = _peak_mb()
    started = time.perf_counter()
    if operation == "sha256":
        with open(path, "rb") as file:
            hashlib.file_digest(file, "sha256")
    elif operation == "load-joblib":
        joblib.load(path)
    elif operation in ("load-registry", "load-registry-again"):
        reg.load("forest")
    elif operation == "load-registry-safe":
        reg.load("forest", safe=True)
    else:
        raise SystemExit(f"unknown operation {operation}")
    seconds = time.perf_counter() - started
    return {"seconds": seconds, "peak_extra_mb": _peak_mb() - baseline}


def _child(operation: str, work: Path, megabytes: int) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.budgets", operation, str(work), str(megabytes)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=True,
    )
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))


def bench_load_budgets(
    work: Path, results: Any, megabytes: int, rounds: int, mlflow: Loader | None = None
) -> dict[str, float]:
    """Add group 9: the three budget ratios, and the measurements behind them; return the medians in ms.

    With ``mlflow``, the same forest is registered in MLflow too and its first
    and repeated ``load_model`` join the rounds, each in a fresh process.
    """
    work = work / "budgets"
    work.mkdir(parents=True, exist_ok=True)
    size_mb = _child("build", work, megabytes)["bytes"] / 1e6
    operations = OPERATIONS
    if mlflow is not None:
        mlflow("log", work)
        operations += MLFLOW_OPERATIONS
    runs: dict[str, list[dict[str, float]]] = {operation: [] for operation in operations}
    for _ in range(rounds):
        for operation in operations:
            measure = mlflow if operation in MLFLOW_OPERATIONS else lambda o, w: _child(o, w, megabytes)
            assert measure is not None
            runs[operation].append(measure(operation, work))

    def median(operation: str, key: str) -> float:
        return statistics.median(run[key] for run in runs[operation])

    sha = median("sha256", "seconds") * 1000
    plain = median("load-joblib", "seconds") * 1000
    first = median("load-registry", "seconds") * 1000
    again = median("load-registry-again", "seconds") * 1000
    safe = median("load-registry-safe", "seconds") * 1000
    group = f"9 load budgets ({size_mb:.0f} MB forest)"
    results.add(group, "sha256 of the same bytes", sha)
    results.add(group, "joblib.load of the same bytes", plain)
    results.add(
        group,
        "first verified load",
        first,
        baseline=sha + plain,
        baseline_name="sha256+joblib.load",
        target="target <= 1.15x",
    )
    results.add(group, "repeated load", again, baseline=plain, baseline_name="joblib.load", target="target <= 1.25x")
    results.add(group, "first verified safe load", safe, baseline=sha + plain, baseline_name="sha256+joblib.load")
    results.add(
        group,
        "peak extra memory, first load (ru_maxrss)",
        median("load-registry", "peak_extra_mb"),
        unit="MB",
        baseline=max(median("load-joblib", "peak_extra_mb"), 1.0),
        baseline_name="joblib.load",
        target="target <= 1.25x",
    )
    results.add(
        group,
        "peak extra memory, first safe load (ru_maxrss)",
        median("load-registry-safe", "peak_extra_mb"),
        unit="MB",
        baseline=max(median("load-joblib", "peak_extra_mb"), 1.0),
        baseline_name="joblib.load",
    )
    medians = {operation: median(operation, "seconds") * 1000 for operation in operations}
    if mlflow is not None:
        for operation, title in (("load-mlflow", "first"), ("load-mlflow-again", "repeated")):
            results.add(
                group,
                f"MLflow load_model, {title} (unverified)",
                medians[operation],
                baseline=plain,
                baseline_name="joblib.load",
            )
        results.add(
            group,
            "MLflow peak extra memory, first load (ru_maxrss)",
            median("load-mlflow", "peak_extra_mb"),
            unit="MB",
            baseline=max(median("load-joblib", "peak_extra_mb"), 1.0),
            baseline_name="joblib.load",
        )
    return {"megabytes": size_mb, **medians}


def main() -> None:
    operation, workdir, megabytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    report = build(workdir, megabytes) if operation == "build" else measure(operation, workdir)
    print(json.dumps(report))


if __name__ == "__main__":
    main()
