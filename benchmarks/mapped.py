"""Memory of worker processes serving one large model: ``load(ref, mmap=True)`` against plain loads.

    python -m benchmarks --only mapped

A brute-force k-nearest-neighbours model holding about the asked size of
training data (one large array, as a model that keeps its data does) is
registered once. Then 4 worker processes (fresh interpreters) each load it,
all plain or all with ``mmap=True``; once every worker holds its model they
each read their memory from ``/proc/self/smaps_rollup`` and predict once,
so the pages are in use, not only reserved.

The figure compared is the proportional set size (PSS): each page a
process maps counted divided by how many processes map it, so the sum over
the workers is what the 4 of them really take from the machine. The
resident set (RSS) counts a shared page once in every process and would
hide the sharing; it is reported too. Memory the interpreter and the
imports take before the load is subtracted.

Usage of the child: python -m benchmarks.mapped WORKDIR MODE BARRIER_DIR WORKERS; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
WORKERS = 4


def _memory() -> dict[str, float]:
    """This process's RSS, PSS and private memory in MB, from the kernel's rollup of its mappings."""
    fields: dict[str, float] = {}
    with open("/proc/self/smaps_rollup") as rollup:
        for line in rollup:
            name, _, rest = line.partition(":")
            if name in ("Rss", "Pss", "Private_Clean", "Private_Dirty"):
                fields[name] = int(rest.split()[0]) / 1024
    return {
        "rss": fields["Rss"],
        "pss": fields["Pss"],
        "private": fields["Private_Clean"] + fields["Private_Dirty"],
    }


def _wait_for(barrier: Path, name: str, workers: int) -> None:
    """Mark this worker as at ``name`` and wait until all ``workers`` are (files: nothing shared but the disk)."""
    (barrier / f"{name}-{os.getpid()}").touch()
    while len(list(barrier.glob(f"{name}-*"))) < workers:
        time.sleep(0.01)


def worker(workdir: str, mode: str, barrier: str, workers: int) -> dict[str, float]:
    """Load the model (``mode`` "mmap" or "plain"), wait for the others, report this process's memory."""
    import numpy as np
    import sklearn.neighbors  # noqa: F401  (imports are not what we measure)

    from registry import Registry

    reg = Registry(os.path.join(workdir, "registry"))
    reg.get("big")
    before = _memory()
    model = reg.load("big", mmap=mode == "mmap")
    model.predict(np.zeros((1, model.n_features_in_)))  # the model is in use
    _wait_for(Path(barrier), "loaded", workers)
    after = _memory()  # every worker holds its model now: shared pages are split between them
    _wait_for(Path(barrier), "measured", workers)
    return {key: after[key] - before[key] for key in after}


def build(workdir: str, megabytes: int) -> float:
    """Register the large model once; return its stored size in MB."""
    from benchmarks.child import big_model
    from registry import Registry

    with Registry(os.path.join(workdir, "registry")) as reg:
        return reg.register("big", big_model(megabytes)).size / 1e6


def run_workers(work: Path, mode: str, workers: int = WORKERS) -> list[dict[str, float]]:
    """Start ``workers`` fresh processes loading the model in ``mode`` at once; their memory reports."""
    barrier = work / f"barrier-{mode}-{time.monotonic_ns()}"
    barrier.mkdir()
    processes = [
        subprocess.Popen(
            [sys.executable, "-m", "benchmarks.mapped", str(work), mode, str(barrier), str(workers)],
            cwd=ROOT,
            stdout=subprocess.PIPE,
            text=True,
        )
        for _ in range(workers)
    ]
    reports = []
    for process in processes:
        out, _ = process.communicate(timeout=600)
        if process.returncode != 0:
            raise RuntimeError(f"a {mode} worker failed (exit code {process.returncode})")
        reports.append(json.loads(out.strip().splitlines()[-1]))
    return reports


def bench_mapped(work: Path, results: Any, megabytes: int) -> dict[str, float]:
    """Add group 11: the memory of 4 workers loading one model, mapped and plain, as ratios."""
    work = work / "mapped"
    work.mkdir(parents=True, exist_ok=True)
    subprocess.run(
        [sys.executable, "-c", f"from benchmarks.mapped import build; build({str(work)!r}, {megabytes})"],
        cwd=ROOT,
        check=True,
    )
    plain, mapped = run_workers(work, "plain"), run_workers(work, "mmap")
    totals = {
        f"{mode} {key}": sum(report[key] for report in reports)
        for mode, reports in (("plain", plain), ("mmap", mapped))
        for key in ("rss", "pss", "private")
    }
    group = f"12 mapped loads ({megabytes} MB model, {WORKERS} workers)"
    results.add(group, f"{WORKERS} plain loads, PSS", totals["plain pss"], unit="MB")
    results.add(
        group,
        f"{WORKERS} mmap=True loads, PSS",
        totals["mmap pss"],
        unit="MB",
        baseline=totals["plain pss"],
        baseline_name="plain loads",
    )
    results.add(
        group,
        f"{WORKERS} mmap=True loads, private memory",
        totals["mmap private"],
        unit="MB",
        baseline=totals["plain private"],
        baseline_name="plain loads",
    )
    results.add(
        group,
        f"{WORKERS} mmap=True loads, RSS (shared pages counted in each)",
        totals["mmap rss"],
        unit="MB",
        baseline=totals["plain rss"],
        baseline_name="plain loads",
    )
    return totals


def main() -> None:
    workdir, mode, barrier, workers = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
    print(json.dumps(worker(workdir, mode, barrier, workers)))


if __name__ == "__main__":
    main()
