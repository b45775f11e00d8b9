"""MLflow's side of the benchmarks, each operation in a process of its own (started by :mod:`benchmarks.mlflow_env`).

    python -m benchmarks.mlflow_child OPERATION HOME [ARGS...]    # prints one JSON line

MLflow on its fastest local path: the SQLite database and artifact
directory of ``HOME``, ``mlflow.sklearn.log_model`` straight into a
registered model version (no run: MLflow 3 logs a model without one), the
``pickle`` serialization (its default, skops, is slower to load), and loads
through ``mlflow.sklearn.load_model("models:/NAME/...")`` by latest, pinned
version and ``@alias``, as a user of its registry loads.

Operations:

* ``setup HOME``: create the database (MLflow's migrations) and the experiment.
* ``small HOME REPEAT``: register the small model REPEAT times, then warm
  loads by latest, pinned version and alias (REPEAT x 4 each); medians.
* ``metadata HOME VERSIONS REPEAT``: a model with VERSIONS versions (one
  logged, the others its ``model_versions`` row copied by bulk insert, which
  is all MLflow reads to resolve a version); median lookups of a pinned
  version, the latest (by ``search_model_versions``, sorted and limited in
  the database, and by ``get_latest_versions``, which ``models:/NAME/latest``
  uses and which reads every version) and an alias.
* ``log HOME NAME FILE``: register the model pickled by joblib in FILE.
* ``load HOME URI first|again``: one load in this fresh process (the second
  one with ``again``), its time and peak extra memory, as the modelshelf
  loads of :mod:`benchmarks.budgets` are measured.
"""

from __future__ import annotations

import json
import os
import resource
import sqlite3
import statistics
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

EXPERIMENT = "modelshelf-benchmarks"


def _median_ms(action: Callable[[], Any], repeat: int) -> float:
    times = []
    for _ in range(repeat):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


def _peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def open_mlflow(home: Path) -> Any:
    """Import MLflow and point it at ``home``'s experiment (created on first use); the client."""
    import mlflow

    client = mlflow.MlflowClient()
    if client.get_experiment_by_name(EXPERIMENT) is None:
        client.create_experiment(EXPERIMENT, artifact_location=(home / "artifacts").as_uri())
    mlflow.set_experiment(EXPERIMENT)
    return client


def log(model: Any, name: str) -> None:
    """Register ``model`` as the next version of ``name``: MLflow's fastest way to a registered version."""
    import mlflow.sklearn

    mlflow.sklearn.log_model(
        model,
        name="model",
        registered_model_name=name,
        serialization_format=mlflow.sklearn.SERIALIZATION_FORMAT_PICKLE,
        # The flavor's own requirements, given: without them MLflow infers them by loading the model in a
        # subprocess, about 2 s a version here.
        pip_requirements=mlflow.sklearn.get_default_pip_requirements(),
        await_registration_for=0,
    )


def load(uri: str) -> Any:
    import mlflow.sklearn

    return mlflow.sklearn.load_model(uri)


def small(home: Path, repeat: int) -> dict[str, Any]:
    import mlflow

    from benchmarks.models import small_model

    client = open_mlflow(home)
    model = small_model()
    log(model, "iris")  # the first call imports what the others reuse
    report: dict[str, Any] = {"mlflow": mlflow.__version__}
    report["register"] = _median_ms(lambda: log(model, "iris"), repeat)
    client.set_registered_model_alias("iris", "production", "1")
    for label, uri in (
        ("latest", "models:/iris/latest"),
        ("pinned", "models:/iris/1"),
        ("alias", "models:/iris@production"),
    ):
        load(uri)
        report[f"load {label}"] = _median_ms(lambda uri=uri: load(uri), repeat * 4)
    return report


def clone_versions(home: Path, name: str, versions: int) -> None:
    """Make ``name`` have ``versions`` versions by copying version 1's ``model_versions`` row, numbers changed."""
    with sqlite3.connect(home / "mlflow.db") as connection:
        cursor = connection.execute("SELECT * FROM model_versions WHERE name = ? AND version = 1", (name,))
        columns = [d[0] for d in cursor.description]
        first = cursor.fetchone()
        at = columns.index("version")
        rows = [(*first[:at], number, *first[at + 1 :]) for number in range(2, versions + 1)]
        marks = ", ".join("?" * len(columns))
        connection.executemany(f"INSERT INTO model_versions ({', '.join(columns)}) VALUES ({marks})", rows)


def metadata(home: Path, versions: int, repeat: int) -> dict[str, Any]:
    from benchmarks.models import small_model

    client = open_mlflow(home)
    log(small_model(), "deep")
    clone_versions(home, "deep", versions)
    client.set_registered_model_alias("deep", "production", str(versions // 2))
    lookups = {
        "get pinned": lambda: client.get_model_version("deep", "7"),
        # MLflow's fastest way to the newest version: one query, sorted and limited in the database
        "latest": lambda: client.search_model_versions(
            "name = 'deep'", order_by=["version_number DESC"], max_results=1
        )[0],
        "alias": lambda: client.get_model_version_by_alias("deep", "production"),
        # what "models:/deep/latest" resolves through (mlflow.store.artifact.utils.models): every version read
        "latest via get_latest_versions": lambda: max(int(v.version) for v in client.get_latest_versions("deep")),
    }
    assert int(lookups["latest"]().version) == versions
    assert lookups["latest via get_latest_versions"]() == versions
    report: dict[str, Any] = {}
    for label, lookup in lookups.items():
        lookup()
        report[label] = _median_ms(lookup, repeat * 4 if label != "latest via get_latest_versions" else 3)
    return report


def log_file(home: Path, name: str, path: str) -> dict[str, Any]:
    import joblib

    open_mlflow(home)
    model = joblib.load(path)
    started = time.perf_counter()
    log(model, name)
    return {"seconds": time.perf_counter() - started}


def load_once(home: Path, uri: str, mode: str) -> dict[str, Any]:
    import sklearn.ensemble  # noqa: F401  (imports are not what we measure)

    client = open_mlflow(home)
    client.get_registered_model(uri.removeprefix("models:/").split("/")[0].split("@")[0])  # the database is warm
    if mode == "again":
        load(uri)
    baseline = _peak_mb()
    started = time.perf_counter()
    load(uri)
    return {"seconds": time.perf_counter() - started, "peak_extra_mb": _peak_mb() - baseline}


def main() -> None:
    operation, home, args = sys.argv[1], Path(sys.argv[2]), sys.argv[3:]
    if not os.environ.get("MLFLOW_TRACKING_URI", "").startswith("sqlite:///"):
        raise SystemExit("run through benchmarks.mlflow_env.run: MLFLOW_TRACKING_URI must be a local SQLite database")
    if operation == "setup":
        open_mlflow(home)
        report: dict[str, Any] = {}
    elif operation == "small":
        report = small(home, int(args[0]))
    elif operation == "metadata":
        report = metadata(home, int(args[0]), int(args[1]))
    elif operation == "log":
        report = log_file(home, args[0], args[1])
    elif operation == "load":
        report = load_once(home, args[0], args[1])
    else:
        raise SystemExit(f"unknown operation {operation!r}")
    print(json.dumps(report))


if __name__ == "__main__":
    main()
