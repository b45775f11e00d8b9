"""The issue's table: each workload measured for joblib, modelshelf and MLflow in the same run, with both ratios.

    workload | joblib | modelshelf | MLflow | modelshelf/joblib | modelshelf/MLflow | goal

A cell is a median from this run or says why there is none: ``—`` where the
workload has no such baseline (joblib has no catalog to look up), ``not
installed`` when MLflow is absent (see :mod:`benchmarks.mlflow_env`), ``not
run`` when the run skipped it. The goal column repeats the issue's goal and
says whether this run met it. Times are ratios of modelshelf's time to the
other's (below 1 is faster); rates (versions a second) are modelshelf's rate
over the other's (above 1 is faster).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

#: What a reader of the table needs to know about how each side was measured.
NOTES = (
    "MLflow registers with `mlflow.sklearn.log_model(..., registered_model_name=...)` and no run, the pickle "
    "serialization and its flavor's default pip requirements given (without them it infers them in a subprocess, "
    "about 2 s a version); modelshelf's register also records a metric.",
    "MLflow's loads are `mlflow.sklearn.load_model('models:/NAME/latest' | '/1' | '@alias')`; they check no digest "
    "(unverified). modelshelf's verify the bytes.",
    "MLflow's latest is `search_model_versions(order_by=['version_number DESC'], max_results=1)`, its fastest way; "
    "`models:/NAME/latest` itself resolves through `get_latest_versions`, which reads every version (group 3).",
    "— : no such baseline (joblib has no catalog; MLflow's registry has no per-version metric history, its metrics "
    "belong to runs).",
    "Writers are separate processes released together once imported; a rate is all their versions over the time "
    "from the first start to the last end.",
)

#: A goal: what the issue asks, as (text, check); a check answers None when this run cannot judge it.
Check = Callable[["Row"], bool | None]
Cell = float | str | None


@dataclass
class Row:
    """One workload of the table. ``unit`` is ``ms`` (lower is better) or ``versions/s`` (higher is better)."""

    key: str
    workload: str
    unit: str = "ms"
    joblib: Cell = "—"
    modelshelf: Cell = None
    mlflow: Cell = None
    joblib_note: str = ""
    mlflow_note: str = ""
    goal: str = ""
    verdict: str = ""
    #: modelshelf's failed operations, where a workload counts them (the writers).
    errors: int | None = None

    def number(self, tool: str) -> float | None:
        value = getattr(self, tool)
        return float(value) if isinstance(value, (int, float)) else None

    def ratio(self, other: str) -> float | None:
        """modelshelf's figure over ``other``'s, or None when either is missing."""
        ours, theirs = self.number("modelshelf"), self.number(other)
        if ours is None or not theirs:
            return None
        return ours / theirs

    def speedup(self, other: str) -> float | None:
        """How many times faster modelshelf is than ``other`` (time or rate alike)."""
        ratio = self.ratio(other)
        if ratio is None or ratio == 0:
            return None
        return ratio if self.unit != "ms" else 1 / ratio


#: The issue's goals by workload key: (text, checks).
GOALS: dict[str, tuple[str, list[Check]]] = {
    "register": (
        "≤ 2.0 ms (≥ 25× faster than MLflow)",
        [lambda r: _at_most(r.number("modelshelf"), 2.0), lambda r: _at_least(r.speedup("mlflow"), 25)],
    ),
    "load latest": (
        "≤ 0.25 ms, ≤ 2× joblib",
        [lambda r: _at_most(r.number("modelshelf"), 0.25), lambda r: _at_most(r.ratio("joblib"), 2)],
    ),
    "load pinned": (
        "≤ 0.25 ms, ≤ 2× joblib",
        [lambda r: _at_most(r.number("modelshelf"), 0.25), lambda r: _at_most(r.ratio("joblib"), 2)],
    ),
    "load alias": (
        "≤ 0.25 ms, ≤ 2× joblib",
        [lambda r: _at_most(r.number("modelshelf"), 0.25), lambda r: _at_most(r.ratio("joblib"), 2)],
    ),
    "get pinned": (
        "≤ 0.10 ms, flat to 1,000,000 versions (growth table)",
        [lambda r: _at_most(r.number("modelshelf"), 0.10)],
    ),
    "get latest": (
        "≤ 0.10 ms, flat to 1,000,000 versions (growth table)",
        [lambda r: _at_most(r.number("modelshelf"), 0.10)],
    ),
    "get alias": (
        "≤ 0.10 ms, flat to 1,000,000 versions (growth table)",
        [lambda r: _at_most(r.number("modelshelf"), 0.10)],
    ),
    "metrics_history": ("≤ 10 ms", [lambda r: _at_most(r.number("modelshelf"), 10)]),
    "large first": ("≤ 1.30× joblib.load", [lambda r: _at_most(r.ratio("joblib"), 1.30)]),
    "large again": ("≤ 1.05× joblib.load", [lambda r: _at_most(r.ratio("joblib"), 1.05)]),
    "cold": ("≤ 1.15× joblib", [lambda r: _at_most(r.ratio("joblib"), 1.15)]),
    "writers 4": ("≥ 10× MLflow", [lambda r: _at_least(r.speedup("mlflow"), 10)]),
    "writers 8": ("scales past 4 writers, no errors", []),  # judged by the caller, which knows both rows
    "object store": ("≤ 1.30× s3fs put_file of the same bytes", [lambda r: _at_most(r.ratio("joblib"), 1.30)]),
}


def _at_most(value: float | None, bound: float) -> bool | None:
    return None if value is None else value <= bound


def _at_least(value: float | None, bound: float) -> bool | None:
    return None if value is None else value >= bound


def judge(row: Row, extra: list[bool | None] | None = None) -> None:
    """Fill in the row's goal and verdict from :data:`GOALS` (``extra`` adds checks only the caller can make)."""
    text, checks = GOALS.get(row.key, ("", []))
    answers = [check(row) for check in checks] + list(extra or [])
    row.goal = text
    if not answers:
        row.verdict = ""
    elif any(answer is False for answer in answers):
        row.verdict = "not met"
    elif all(answer is True for answer in answers):
        row.verdict = "met"
    else:
        row.verdict = "not judged" if all(answer is None for answer in answers) else "met where measured"


@dataclass
class Summary:
    """The table's rows by key, in the order they were first added."""

    rows: dict[str, Row] = field(default_factory=dict)

    def set(self, key: str, workload: str, **values: Any) -> Row:
        row = self.rows.get(key) or Row(key=key, workload=workload)
        row.workload = workload
        for name, value in values.items():
            setattr(row, name, value)
        self.rows[key] = row
        return row

    def finish(self) -> None:
        """Judge every row against the issue's goals."""
        for row in self.rows.values():
            extra: list[bool | None] = []
            if row.key == "writers 8":
                four = self.rows.get("writers 4")
                ours, theirs = row.number("modelshelf"), None if four is None else four.number("modelshelf")
                scales = None if ours is None or theirs is None else ours >= theirs
                extra = [scales, None if row.errors is None else row.errors == 0]
            judge(row, extra)

    def to_json(self) -> list[dict[str, Any]]:
        return [asdict(row) for row in self.rows.values()]

    @classmethod
    def from_json(cls, rows: list[dict[str, Any]]) -> Summary:
        return cls({row["key"]: Row(**row) for row in rows})

    def table(self) -> list[list[str]]:
        """Header and rows as text cells."""
        lines = [["workload", "joblib", "modelshelf", "MLflow", "modelshelf/joblib", "modelshelf/MLflow", "goal"]]
        for row in self.rows.values():
            lines.append(
                [
                    row.workload,
                    _cell(row.joblib, row.unit, row.joblib_note),
                    _cell(row.modelshelf, row.unit, ""),
                    _cell(row.mlflow, row.unit, row.mlflow_note),
                    _ratio(row, "joblib"),
                    _ratio(row, "mlflow"),
                    f"{row.goal}: {row.verdict}" if row.verdict else row.goal,
                ]
            )
        return lines

    def markdown(self) -> str:
        table = self.table()
        out = ["| " + " | ".join(table[0]) + " |", "| " + " | ".join("---" for _ in table[0]) + " |"]
        out += ["| " + " | ".join(cell.replace("|", "\\|") for cell in line) + " |" for line in table[1:]]
        return "\n".join(out)

    def text(self) -> str:
        table = self.table()
        widths = [max(len(line[i]) for line in table) for i in range(len(table[0]))]
        return "\n".join(
            "  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)).rstrip() for line in table
        )


def format_value(value: float, unit: str) -> str:
    """A figure with as many digits as it needs: 0.413 ms, 38.2 ms, 1,287 ms, 167 versions/s."""
    if unit == "ms":
        if value < 1:
            return f"{value:.3f} ms"
        if value < 100:
            return f"{value:.1f} ms"
        return f"{value:,.0f} ms"
    return f"{value:,.1f} {unit}" if value < 100 else f"{value:,.0f} {unit}"


def _cell(value: Cell, unit: str, note: str) -> str:
    if value is None:
        return "not run"
    if isinstance(value, str):
        return value
    shown = format_value(value, unit)
    return f"{shown} ({note})" if note else shown


def _ratio(row: Row, other: str) -> str:
    ratio = row.ratio(other)
    if ratio is None:
        return "—"
    if row.unit == "ms":
        return f"{ratio:.3f}× ({1 / ratio:.1f}× faster)" if ratio < 1 / 1.1 else f"{ratio:.2f}×"
    return f"{ratio:.2f}× the rate"
