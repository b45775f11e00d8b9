"""The growth table: metadata reads at 1,000 / 10,000 / 100,000 / 1,000,000 versions of one model.

    python -m benchmarks --only growth                       # up to 1,000,000 versions
    python -m benchmarks --only growth --max-versions 100000

Each size is a fresh catalog seeded by :mod:`benchmarks.seeding` (one real
registration, the rest bulk-inserted copies; about 90 s for a million here),
its pages warm in the OS cache, as on a server that serves it. Every cell is
the median of as many calls as fit in about half a second (at least 3), and
its ratio to the 1,000-version figure. Lookups should stay flat; a search or
a history grows with what it returns, which the table says per row.
"""

from __future__ import annotations

import shutil
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from benchmarks.seeding import COHORT, Seeded, seed

SIZES = (1_000, 10_000, 100_000, 1_000_000)
#: Sizes at which seeding is followed by a full ``verify`` of the result (it reads every event).
CHECKED_UP_TO = 10_000
#: A lookup is called flat when its figure at the largest size is within this factor of the 1,000 one.
FLAT = 1.5


def _operations(s: Seeded) -> dict[str, tuple[Callable[[Any], Any], str]]:
    """Each measured read: (call on a registry, what it returns), for the seeded model."""
    name = s.name
    return {
        "get pinned (the middle version)": (lambda reg: reg.get(f"{name}:{s.middle}"), "1 version: flat"),
        "latest": (lambda reg: reg.latest(name), "1 version: flat"),
        "alias": (lambda reg: reg.get(f"{name}@{s.alias}"), "1 version: flat"),
        "versions page: newest 50, with the total": (
            lambda reg: reg.versions_page(name, order_by="version desc", limit=50),
            "50 versions: flat",
        ),
        "versions page: top 50 by a metric": (
            lambda reg: reg.versions_page(name, order_by="metrics.m0 desc", limit=50),
            "50 versions: flat",
        ),
        "search: a tag and a metric, top 10 by another": (
            lambda reg: reg.search(
                name, where="tags.team = 'cv' and metrics.m1 > 0.5", order_by="metrics.m0 desc", limit=10
            ),
            "10 versions: flat",
        ),
        "search: one params value": (
            lambda reg: reg.search(name, where="params.cohort = 0"),
            f"{COHORT:,} versions at every size: flat",
        ),
        "metrics_history: one metric": (
            lambda reg: reg.metrics_history(name, "m1"),
            "every version: linear",
        ),
    }


def timed_median(action: Callable[[], Any], budget: float, at_least: int = 3, at_most: int = 500) -> float:
    """The median of ``action`` in ms over as many calls as fit in ``budget`` seconds (the first one is a warm-up)."""
    started = time.perf_counter()
    action()
    first = time.perf_counter() - started
    times = []
    for _ in range(max(at_least, min(at_most, int(budget / max(first, 1e-6))))):
        started = time.perf_counter()
        action()
        times.append(time.perf_counter() - started)
    return statistics.median(times) * 1000


@dataclass
class Growth:
    """The figures by operation and size, what each returns, and how long each size took to seed."""

    sizes: list[int] = field(default_factory=list)
    ms: dict[str, dict[int, float]] = field(default_factory=dict)
    returns: dict[str, str] = field(default_factory=dict)
    seeding: dict[int, float] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        return {
            "sizes": self.sizes,
            "ms": {op: {str(k): v for k, v in by.items()} for op, by in self.ms.items()},
            "returns": self.returns,
            "seeding": {str(k): v for k, v in self.seeding.items()},
        }

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> Growth:
        return cls(
            sizes=list(data["sizes"]),
            ms={op: {int(k): v for k, v in by.items()} for op, by in data["ms"].items()},
            returns=dict(data["returns"]),
            seeding={int(k): v for k, v in data["seeding"].items()},
        )

    def verdict(self, operation: str) -> str:
        """Whether a read expected flat stayed within :data:`FLAT` of its 1,000 figure (linear ones are shown)."""
        by = self.ms[operation]
        base, largest = by.get(self.sizes[0]), by.get(self.sizes[-1])
        if base is None or largest is None or len(self.sizes) < 2:
            return ""
        ratio = largest / base
        if self.returns[operation].endswith("flat"):
            return f"flat ({ratio:.1f}×)" if ratio <= FLAT else f"grows ({ratio:.1f}×)"
        growth = self.sizes[-1] / self.sizes[0]
        return f"{ratio / growth:.2f}× linear"

    def table(self) -> list[list[str]]:
        head = ["operation (returns)", *[f"{size:,} versions" for size in self.sizes], "at the largest"]
        lines = [head]
        for operation, by in self.ms.items():
            base = by.get(self.sizes[0])
            cells = [f"{operation} ({self.returns[operation]})"]
            for size in self.sizes:
                value = by.get(size)
                if value is None:
                    cells.append("—")
                    continue
                shown = f"{value:.3f} ms" if value < 1 else f"{value:,.1f} ms"
                cells.append(shown if base is None or size == self.sizes[0] else f"{shown} ({value / base:.1f}×)")
            lines.append([*cells, self.verdict(operation)])
        lines.append(["seeding the catalog (s)", *[f"{self.seeding.get(size, 0):.1f} s" for size in self.sizes], ""])
        return lines

    def markdown(self) -> str:
        table = self.table()
        out = ["| " + " | ".join(table[0]) + " |", "| " + " | ".join("---" for _ in table[0]) + " |"]
        out += ["| " + " | ".join(line) + " |" for line in table[1:]]
        return "\n".join(out)

    def text(self) -> str:
        table = self.table()
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        return "\n".join("  ".join(c.ljust(w) for c, w in zip(line, widths, strict=True)).rstrip() for line in table)


def bench_growth(work: Path, max_versions: int, budget: float = 0.5) -> Growth:
    """Seed a catalog of each size up to ``max_versions`` in turn, measure the reads, then remove it."""
    from registry import Registry

    growth = Growth(sizes=[size for size in SIZES if size <= max_versions] or [max_versions])
    for size in growth.sizes:
        home = work / f"growth-{size}"
        seeded = seed(home, size, check=size <= CHECKED_UP_TO)
        growth.seeding[size] = seeded.seconds
        print(f"10 growth              seeded {size:,} versions in {seeded.seconds:.1f} s", flush=True)
        with Registry(home) as reg:
            for operation, (call, returns) in _operations(seeded).items():
                ms = timed_median(lambda call=call: call(reg), budget)
                growth.ms.setdefault(operation, {})[size] = ms
                growth.returns[operation] = returns
                print(f"10 growth              {operation:<48} {size:>9,} versions {ms:10.3f} ms", flush=True)
        shutil.rmtree(home, ignore_errors=True)
    return growth
