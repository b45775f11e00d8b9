"""Running MLflow beside modelshelf: whether it is installed, and the environment of its child processes.

MLflow is only ever imported in child processes (:mod:`benchmarks.mlflow_child`),
so it can change neither what modelshelf's measurements import nor their
memory. Its setup is its fastest local one: a SQLite tracking and registry
database and a local artifact directory, both under the run's work
directory, and nothing that reaches the network (telemetry is off by both of
the switches MLflow 3 reads; no tracking server).

Without MLflow the benchmarks still run, and every MLflow cell says
``not installed`` with the line that installs it: figures measured
elsewhere are never shown in its place.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
INSTALL = "pip install -e '.[bench]'"
NOT_INSTALLED = "not installed"


def installed() -> str | None:
    """MLflow's version when it is installed (read from its metadata: nothing is imported), else ``None``."""
    try:
        return version("mlflow")
    except PackageNotFoundError:
        return None


def environment(home: Path) -> dict[str, str]:
    """The environment of an MLflow child process working in ``home``."""
    database = f"sqlite:///{home / 'mlflow.db'}"
    env = dict(os.environ)
    env.update(
        MLFLOW_TRACKING_URI=database,
        MLFLOW_REGISTRY_URI=database,
        MLFLOW_DISABLE_TELEMETRY="true",  # MLflow 3's usage telemetry, read by mlflow.telemetry
        DO_NOT_TRACK="true",  # the other switch that telemetry honours
        MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR="false",
        GIT_PYTHON_REFRESH="quiet",
        PYTHONWARNINGS="ignore",  # deprecation warnings (get_latest_versions) are not what is measured
    )
    return env


def run(operation: str, home: Path, *args: object, timeout: float = 1800) -> dict[str, Any]:
    """Run one operation of :mod:`benchmarks.mlflow_child` in a fresh process; its JSON report."""
    home.mkdir(parents=True, exist_ok=True)
    out = subprocess.run(
        [sys.executable, "-m", "benchmarks.mlflow_child", operation, str(home), *map(str, args)],
        cwd=ROOT,
        env=environment(home),
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if out.returncode != 0:
        raise RuntimeError(f"MLflow child {operation!r} failed:\n{out.stderr[-4000:]}")
    return dict(json.loads(out.stdout.strip().splitlines()[-1]))
