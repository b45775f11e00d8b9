"""One measured operation in a fresh process, so peak memory (ru_maxrss) belongs to it alone.

Usage: python -m benchmarks.child OPERATION WORKDIR MEGABYTES; prints one JSON line.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time


def peak_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


def big_model(megabytes: int):  # type: ignore[no-untyped-def]
    import numpy as np
    from sklearn.neighbors import KNeighborsClassifier

    rows = megabytes * 1024 * 1024 // (50 * 8)
    rng = np.random.default_rng(0)
    X = rng.standard_normal((rows, 50))
    y = rng.integers(0, 2, rows)
    return KNeighborsClassifier(algorithm="brute").fit(X, y)


def main() -> None:
    operation, workdir, megabytes = sys.argv[1], sys.argv[2], int(sys.argv[3])
    path = os.path.join(workdir, f"forest-{megabytes}.joblib")
    import joblib

    from registry import Registry

    if operation.startswith("load"):
        import sklearn.neighbors  # noqa: F401  (imports are not what we measure)
    else:
        model = big_model(megabytes)
    reg = Registry(os.path.join(workdir, "registry"))
    baseline = peak_mb()
    started = time.perf_counter()
    if operation == "dump":
        joblib.dump(model, path)
    elif operation == "dump+fsync":
        with open(path, "wb") as file:
            joblib.dump(model, file)
            file.flush()
            os.fsync(file.fileno())
    elif operation == "register":
        reg.register(f"big-{megabytes}", model)
    elif operation == "load-joblib":
        joblib.load(path)
    elif operation == "load-registry":
        reg.load(f"big-{megabytes}")
    elif operation == "load-registry-again":
        reg.load(f"big-{megabytes}")
        baseline, started = peak_mb(), time.perf_counter()
        reg.load(f"big-{megabytes}")
    else:
        raise SystemExit(f"unknown operation {operation}")
    seconds = time.perf_counter() - started
    print(json.dumps({"seconds": seconds, "peak_extra_mb": peak_mb() - baseline}))


if __name__ == "__main__":
    main()
