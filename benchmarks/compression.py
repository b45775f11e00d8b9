"""``register(..., compress=…)`` against ``joblib.dump(compress=…)`` of the same model: stored size and time.

    python -m benchmarks --only compression

The large model of group 5 (a brute-force kNN holding about the asked size
of training data) is dumped by joblib to a file (then fsynced, as a
registration is durable) and registered, for each compressor, median of a
few rounds interleaved; then the compressed version is loaded and compared
with ``joblib.load`` of joblib's file (in alternating order from round to
round: the second load of a round reuses the memory the first one freed). The stored size is the blob's, so
the ratio says whether modelshelf stores what joblib writes (it should be
1.00x: the same bytes).
"""

from __future__ import annotations

import importlib.util
import os
import shutil
import statistics
import time
from pathlib import Path
from typing import Any

#: The compressors measured: joblib's default, lzma, and lz4 when its package is installed.
SETTINGS: list[Any] = [3, ("lzma", 3)] + ([("lz4", 3)] if importlib.util.find_spec("lz4") else [])


def _label(compress: Any) -> str:
    return f"zlib {compress}" if isinstance(compress, int) else f"{compress[0]} {compress[1]}"


def bench_compression(work: Path, results: Any, megabytes: int, rounds: int) -> None:
    """Add group 12: for each compressor, stored size and register / load time as ratios to joblib's."""
    import joblib

    from benchmarks.child import big_model
    from registry import Registry

    work = work / "compression"
    work.mkdir(parents=True, exist_ok=True)
    model = big_model(megabytes)
    group = f"13 compression ({megabytes} MB model)"
    for compress in SETTINGS:
        label = _label(compress)
        path = work / "model.joblib"
        dumps, registers, loads, plain_loads = [], [], [], []
        size = stored = 0
        for round_ in range(rounds):
            started = time.perf_counter()
            with open(path, "wb") as file:
                joblib.dump(model, file, compress=compress)
                file.flush()
                os.fsync(file.fileno())
            dumps.append(time.perf_counter() - started)
            size = path.stat().st_size
            home = work / f"registry-{round_}"
            with Registry(home) as reg:
                started = time.perf_counter()
                mv = reg.register("big", model, compress=compress, canary=False)
                registers.append(time.perf_counter() - started)
                stored = mv.size
                # Alternating which goes first: the second load of a round reuses the pages the first one freed.
                for ours in (True, False) if round_ % 2 else (False, True):
                    started = time.perf_counter()
                    if ours:
                        reg.load("big")
                    else:
                        joblib.load(path)
                    (loads if ours else plain_loads).append(time.perf_counter() - started)
            shutil.rmtree(home)
        dump_ms, register_ms = statistics.median(dumps) * 1000, statistics.median(registers) * 1000
        results.add(
            group, f"{label}: stored size", stored / 1e6, unit="MB", baseline=size / 1e6, baseline_name="joblib"
        )
        results.add(group, f"{label}: register", register_ms, baseline=dump_ms, baseline_name="joblib.dump+fsync")
        results.add(
            group,
            f"{label}: load",
            statistics.median(loads) * 1000,
            baseline=statistics.median(plain_loads) * 1000,
            baseline_name="joblib.load",
        )
