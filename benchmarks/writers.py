"""Concurrent writers, for modelshelf and MLflow alike: W processes registering versions of one model at once.

    python -m benchmarks.writers TOOL HOME NAME COUNT    # one writer; TOOL is modelshelf or mlflow

Each writer imports its library, opens the registry (or MLflow's SQLite
database), fits the small model and says ``ready``; once every writer is
ready they are all told to go at the same moment, so the imports and the
start of the processes are not in the measurement. Each then registers
COUNT versions of the same model, counting the failures (a
``database is locked`` is one) without stopping, and reports the wall-clock
times of its first start and last end. The rate is the versions written by
all of them over the time from the first start to the last end.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent


@dataclass(frozen=True)
class Outcome:
    """What W writers did together: the versions written, the failures, and the rate in versions a second."""

    writers: int
    written: int
    errors: int
    seconds: float
    first_error: str = ""

    @property
    def rate(self) -> float:
        return self.written / self.seconds if self.seconds > 0 else 0.0


def race(tool: str, home: Path, name: str, writers: int, count: int) -> Outcome:
    """Start ``writers`` writer processes, release them together, and gather what they did."""
    env = None
    if tool == "mlflow":
        from benchmarks.mlflow_env import environment, run

        env = environment(home)
        run("setup", home)  # the database and the experiment, before the writers race to make them
    command = [sys.executable, "-m", "benchmarks.writers", tool, str(home), name, str(count)]
    logs = [(home / f"writer-{i}.log").open("w") for i in range(writers)]
    processes = [
        subprocess.Popen(
            command, cwd=ROOT, env=env, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=log, text=True
        )
        for log in logs
    ]
    try:
        for process in processes:
            assert process.stdout is not None
            line = "-"
            while line and line.strip() != "ready":  # a library may print a line of its own first
                line = process.stdout.readline()
            if not line:
                raise RuntimeError(f"a {tool} writer did not start (exit {process.wait()}): see {home}/writer-*.log")
        for process in processes:
            assert process.stdin is not None
            process.stdin.write("go\n")
            process.stdin.flush()
        reports = []
        for process in processes:
            out, _ = process.communicate(timeout=1800)
            if process.returncode != 0:
                raise RuntimeError(f"a {tool} writer failed (exit {process.returncode}): see {home}/writer-*.log")
            reports.append(json.loads(out.strip().splitlines()[-1]))
    finally:
        for process in processes:
            if process.poll() is None:
                process.kill()
        for log in logs:
            log.close()
    errors = [r["first_error"] for r in reports if r["first_error"]]
    return Outcome(
        writers=writers,
        written=sum(r["written"] for r in reports),
        errors=sum(r["errors"] for r in reports),
        seconds=max(r["end"] for r in reports) - min(r["start"] for r in reports),
        first_error=errors[0] if errors else "",
    )


def _register_function(tool: str, home: Path, name: str) -> Any:
    if tool == "modelshelf":
        from registry import Registry

        reg = Registry(home)
        return lambda model: reg.register(name, model)
    if tool == "mlflow":
        from benchmarks.mlflow_child import log, open_mlflow

        client = open_mlflow(home)
        try:  # made before the race, as modelshelf's model row is made idempotently by the first write
            client.create_registered_model(name)
        except Exception:  # another writer made it first
            pass
        return lambda model: log(model, name)
    raise SystemExit(f"unknown tool {tool!r}: modelshelf or mlflow")


def main() -> None:
    tool, home, name, count = sys.argv[1], Path(sys.argv[2]), sys.argv[3], int(sys.argv[4])
    from benchmarks.models import small_model

    register = _register_function(tool, home, name)
    model = small_model()
    print("ready", flush=True)
    sys.stdin.readline()
    written, errors, first_error = 0, 0, ""
    start = time.time()
    for _ in range(count):
        try:
            register(model)
            written += 1
        except Exception as exc:  # counted, not fatal: how often a tool fails under contention is a result
            errors += 1
            first_error = first_error or f"{type(exc).__name__}: {str(exc).splitlines()[0][:200]}"
    print(
        json.dumps(
            {"start": start, "end": time.time(), "written": written, "errors": errors, "first_error": first_error}
        )
    )


if __name__ == "__main__":
    main()
