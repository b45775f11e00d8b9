"""Search benchmarks: filters over 10,000 versions with 5 metrics and 10 params each.

The baseline is what search replaces: loading every version's metadata
into Python (``reg.versions``) and filtering there.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

SOLVERS = ("lbfgs", "saga", "liblinear", "newton-cg")


def populate_for_search(reg: Any, name: str, versions: int) -> None:
    """``versions`` versions of ``name`` through the real write path, 500 per transaction."""
    from registry.domain import Draft
    from registry.provenance.environment import current_environment

    environment = current_environment()
    with reg._store.stage(lambda file: file.write(b"tiny artifact")) as staged:
        batch = []
        for i in range(versions):
            params = {f"p{k}": (i * (k + 3)) % (10 + k) for k in range(8)}
            params.update(solver=SOLVERS[i % 4], fit_intercept=i % 3 == 0)
            new = Draft(
                name=name,
                format="pickle",
                params=params,
                metrics={f"m{k}": (i * 7 + k * 13) % 1000 / 1000 for k in range(5)},
                tags={"team": ("cv", "nlp", "ops")[i % 3], "batch": str(i % 10)},
                environment=environment,
            )
            batch.append((new, staged))
            if len(batch) == 500:
                reg._commit_all(batch)
                batch = []
        if batch:
            reg._commit_all(batch)


QUERIES = {
    "metrics + params + tags (selective)": ("metrics.m1 > 0.9 and params.p3 = 3 and tags.team = 'cv'", None, None),
    "top 10 by a metric, filtered": ("params.solver = 'lbfgs' and metrics.m4 >= 0.5", "metrics.m0 desc", 10),
    "or, in, like, not": (
        "(params.p0 in (1, 2) or tags.batch like '9%') and not params.fit_intercept = true",
        None,
        20,
    ),
}


def _python_filter(reg: Any, name: str) -> list[Any]:
    """The first query, done the way search avoids: every version into Python, then filtered."""
    return [
        mv
        for mv in reg.versions(name)
        if mv.metrics.get("m1", 0) > 0.9 and mv.params.get("p3") == 3 and mv.tags.get("team") == "cv"
    ]


def bench_search(work: Path, results: Any, repeat: int, versions: int, median_ms: Any) -> None:
    from registry import Registry

    reg = Registry(work / "search")
    populate_for_search(reg, "tuned", versions)
    group = "8 search"
    label = f"{versions} versions x 5 metrics x 10 params"
    in_python = median_ms(lambda: _python_filter(reg, "tuned"), max(3, repeat // 5))
    expected = sorted(mv.ref for mv in _python_filter(reg, "tuned"))
    where, _, _ = QUERIES["metrics + params + tags (selective)"]
    assert sorted(mv.ref for mv in reg.search("tuned", where=where)) == expected  # the same answer, only faster
    for title, (where, order_by, limit) in QUERIES.items():
        ms = median_ms(
            lambda where=where, order_by=order_by, limit=limit: reg.search(
                "tuned", where=where, order_by=order_by, limit=limit
            ),
            repeat,
        )
        results.add(
            group,
            f"search: {title} ({label})",
            ms,
            baseline=in_python,
            baseline_name="versions() + filter in Python",
            target="well under 100 ms",
        )
    ms = median_ms(lambda: reg.best("tuned", "m2", where="tags.team = 'nlp'"), repeat)
    results.add(
        group,
        f"best by a metric among a third ({label})",
        ms,
        baseline=in_python,
        baseline_name="versions() + filter in Python",
        target="well under 100 ms",
    )
    ms = median_ms(lambda: reg.search(where="metrics.m0 > 0.5"), max(3, repeat // 5))
    results.add(group, f"broad filter returning ~half of {versions} versions", ms)
    reg.close()
