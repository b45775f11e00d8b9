"""DataFrames: ``as_frame=True`` on search, versions, metrics_history and events (registry/frames.py).

Real registries, real pandas: each test checks the columns a user would
select, their exact dtypes, and that the list-returning calls are
unchanged. Without pandas the call names the extra to install.
"""

from __future__ import annotations

import ast
import contextlib
import io
import re
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from registry import MissingDependency, ModelVersion, Registry, RegistryError

pd = pytest.importorskip("pandas")

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture
def mixed(reg: Registry) -> Registry:
    """Three versions whose params, metrics and tags differ in presence and type, as real ones do."""
    reg.register(
        "m",
        {"w": 1},
        format="pickle",
        metrics={"accuracy": 0.9, "loss": 0.3},
        params={"k": 1, "C": 1, "deep": True, "kernel": "rbf", "layers": [64, 32], "seed": 7, "gone": None},
        tags={"team": "cv"},
        description="first",
    )
    reg.register(
        "m",
        {"w": 2},
        format="pickle",
        metrics={"accuracy": 0.95},
        params={"k": 3, "C": 0.5, "deep": False, "kernel": "linear", "layers": [128], "mixed": 1},
    )
    reg.register(
        "m",
        {"w": 3},
        format="pickle",
        metrics={"accuracy": 0.97, "loss": 0.1},
        params={"k": 5, "C": 2, "deep": True, "kernel": "rbf", "layers": [], "seed": 9, "mixed": "one"},
        tags={"team": "nlp", "reviewed": "yes"},
    )
    reg.set_alias("m", "production", 2)
    return reg


def test_search_as_frame_flattens_params_metrics_and_tags_into_typed_columns(mixed: Registry) -> None:
    listed = mixed.search("m", order_by="metrics.accuracy desc")
    frame = mixed.search("m", order_by="metrics.accuracy desc", as_frame=True)
    assert isinstance(frame, pd.DataFrame) and frame["version"].tolist() == [mv.version for mv in listed] == [3, 2, 1]
    dtypes = {column: str(dtype) for column, dtype in frame.dtypes.items()}
    assert dtypes == {
        **dtypes,
        "name": "string",
        "version": "int64",
        "ref": "string",
        "created_at": "datetime64[ns, UTC]",
        "size": "int64",
        "signed": "bool",
        "aliases": "object",
        "metrics.accuracy": "float64",
        "metrics.loss": "float64",
        "params.k": "int64",  # every version has it, all integers
        "params.seed": "Int64",  # integers, missing in one version
        "params.C": "float64",  # integers and floats
        "params.deep": "bool",
        "params.kernel": "string",
        "params.layers": "object",  # lists stay lists
        "params.mixed": "object",  # 1 and "one": no one type
        "tags.team": "string",
        "tags.reviewed": "string",
        "lineage.dirty": "boolean",
    }
    assert "params.gone" not in frame.columns  # a param whose value is None counts as absent, as in search
    first = frame.set_index("version").loc[1]
    assert first["params.layers"] == [64, 32] and first["description"] == "first" and first["ref"] == "m:1"
    assert first["created_at"] == pd.Timestamp(listed[-1].created_at) and first["created_at"].tzinfo is not None
    assert first["size"] == listed[-1].size and first["checksum"] == listed[-1].checksum
    second = frame.set_index("version").loc[2]
    assert second["aliases"] == ("production",) and pd.isna(second["metrics.loss"])
    assert pd.isna(second["params.seed"]) and pd.isna(second["tags.team"]) and second["params.mixed"] == 1
    assert frame["lineage.user"].notna().all()  # lineage columns carry the search field names


def test_a_pipelines_deep_params_become_one_column_each(reg: Registry, iris: Any) -> None:
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    for C in (0.1, 1.0):
        pipe = Pipeline([("scale", StandardScaler()), ("clf", LogisticRegression(C=C, max_iter=300))]).fit(X, y)
        reg.register("pipe", pipe, metrics={"accuracy": pipe.score(X, y)})
    frame = reg.versions("pipe", as_frame=True)
    assert frame["params.clf__C"].tolist() == [0.1, 1.0] and str(frame["params.clf__C"].dtype) == "float64"
    assert str(frame["params.clf__max_iter"].dtype) == "int64" and str(frame["params.scale__copy"].dtype) == "bool"
    assert frame["params.clf__solver"].tolist() == ["lbfgs", "lbfgs"]
    assert frame["params.steps"].iloc[0][1][0] == "clf"  # nested estimators keep their JSON-safe form
    assert "params.memory" not in frame.columns  # None everywhere: absent
    best = frame.loc[frame["metrics.accuracy"].idxmax()]
    assert best["ref"] in ("pipe:1", "pipe:2")


def test_the_list_forms_are_unchanged(mixed: Registry) -> None:
    for found in (mixed.versions("m"), mixed.search("m"), mixed.search("m", as_frame=False)):
        assert isinstance(found, list) and all(isinstance(mv, ModelVersion) for mv in found)
    assert isinstance(mixed.metrics_history("m"), list) and isinstance(mixed.events("m"), list)


def test_metric_history_as_frame_keeps_every_step(mixed: Registry) -> None:
    mixed.log_metrics("m", 2, {"accuracy": 0.96}, step=1)
    mixed.log_metrics("m", 2, {"accuracy": 0.97}, step=2)
    listed = mixed.metrics_history("m", "accuracy")
    frame = mixed.metrics_history("m", "accuracy", as_frame=True)
    assert {column: str(dtype) for column, dtype in frame.dtypes.items()} == {
        "name": "string",
        "version": "int64",
        "key": "string",
        "value": "float64",
        "step": "Int64",
        "timestamp": "datetime64[ns, UTC]",
    }
    assert frame["value"].tolist() == [p.value for p in listed] == [0.9, 0.95, 0.96, 0.97, 0.97]
    assert frame["step"].tolist() == [pd.NA, pd.NA, 1, 2, pd.NA] and set(frame["name"]) == {"m"}
    assert frame.loc[frame["step"] == 2, "value"].tolist() == [0.97]  # <NA> steps are simply not selected
    assert frame["timestamp"].tolist() == [pd.Timestamp(p.timestamp) for p in listed]


def test_events_as_frame(mixed: Registry) -> None:
    listed = mixed.events("m")
    frame = mixed.events("m", as_frame=True)
    assert frame["id"].tolist() == [event.id for event in listed] and str(frame["id"].dtype) == "int64"
    assert str(frame["at"].dtype) == "datetime64[ns, UTC]" and str(frame["version"].dtype) == "Int64"
    assert frame["action"].tolist() == ["register", "register", "register", "alias.set"]
    alias_set = frame.iloc[-1]
    assert alias_set["alias"] == "production" and alias_set["version"] == 2 and alias_set["new"] == listed[-1].new


def test_empty_results_are_empty_frames_with_the_fixed_columns(mixed: Registry) -> None:
    none = mixed.search("m", where="metrics.accuracy > 5", as_frame=True)
    assert len(none) == 0 and none.columns[:4].tolist() == ["name", "version", "ref", "created_at"]
    assert str(none["created_at"].dtype) == "datetime64[ns, UTC]" and str(none["version"].dtype) == "int64"
    assert not [column for column in none.columns if column.startswith(("metrics.", "params.", "tags."))]
    mixed.register("bare", [1], format="pickle")
    history = mixed.metrics_history("bare", as_frame=True)
    assert len(history) == 0 and history.columns.tolist() == ["name", "version", "key", "value", "step", "timestamp"]
    later = mixed.events("m", since=datetime(2999, 1, 1, tzinfo=UTC), as_frame=True)
    assert len(later) == 0 and "action" in later.columns and str(later["at"].dtype) == "datetime64[ns, UTC]"


def test_without_pandas_the_error_names_the_extra(mixed: Registry, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "pandas", None)  # how Python itself marks a module as not importable
    with pytest.raises(MissingDependency, match=re.escape("pip install 'modelshelf[pandas]'")) as caught:
        mixed.search("m", as_frame=True)
    assert isinstance(caught.value, ImportError) and isinstance(caught.value, RegistryError)
    assert caught.value.package == caught.value.extra == "pandas"
    for call in (lambda: mixed.versions("m", as_frame=True), lambda: mixed.events(as_frame=True)):
        with pytest.raises(ImportError, match="as_frame=True needs pandas"):
            call()
    assert len(mixed.search("m")) == 3  # the lists need no pandas


def test_the_extra_is_declared() -> None:
    import tomllib

    project = tomllib.loads((ROOT / "pyproject.toml").read_text())["project"]
    assert any(spec.startswith("pandas") for spec in project["optional-dependencies"]["pandas"])


def test_type_checkers_see_a_list_without_as_frame_and_a_frame_with_it(tmp_path: Path) -> None:
    """The overloads: ``reg.search(...)[0].ref`` type-checks for callers, as it did before ``as_frame`` existed."""
    snippet = tmp_path / "caller.py"
    snippet.write_text(
        "from registry import Registry\n"
        "reg = Registry('x')\n"
        "print(reg.search('m')[0].ref, reg.versions('m')[0].version, reg.metrics_history('m')[0].step)\n"
        "print(reg.events('m', limit=3)[0].action)\n"
        "reveal_type(reg.search('m'))\n"
        "reveal_type(reg.versions('m', as_frame=True))\n"
        "flag: bool = bool(len(__name__))\n"
        "reveal_type(reg.events(as_frame=flag))\n"
    )
    result = subprocess.run(
        [sys.executable, "-m", "mypy", "--strict", "--no-incremental", str(snippet)],
        cwd=ROOT,
        capture_output=True,
        text=True,
    )
    notes = [line for line in result.stdout.splitlines() if "Revealed type" in line]
    assert "error" not in result.stdout.replace("Revealed type", ""), result.stdout
    assert 'list[registry.domain.ModelVersion]"' in notes[0], notes
    assert "DataFrame" in notes[1] or "Any" in notes[1], notes  # Any where pandas-stubs are not installed
    assert "list[registry.domain.Event] | Any" in notes[2] or "DataFrame" in notes[2], notes


def _readme_blocks_through(marker: str) -> list[str]:
    readme = (ROOT / "README.md").read_text()
    blocks = re.findall(r"^```python\n(.*?)^```$", readme, re.MULTILINE | re.DOTALL)
    last = next(index for index, block in enumerate(blocks) if marker in block)
    return blocks[: last + 1]


def test_the_readme_dataframe_snippet_runs_and_prints_typed_columns(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The README's DataFrame block, run after the blocks before it (it uses the registry they fill)."""
    monkeypatch.chdir(tmp_path)
    namespace: dict[str, object] = {"__name__": "__readme__"}
    output = io.StringIO()
    *before, ours = _readme_blocks_through("as_frame=True")
    with contextlib.redirect_stdout(io.StringIO()):
        for number, code in enumerate(before, 1):
            exec(compile(code, f"README.md python block {number}", "exec"), namespace)
    with contextlib.redirect_stdout(output):
        exec(compile(ours, "README.md DataFrame block", "exec"), namespace)
    printed = output.getvalue()
    assert "metrics.accuracy" in printed and "params.n_neighbors" in printed and "tags.team" in printed
    assert "created_at: datetime64[ns, UTC]" in printed and "params.n_neighbors: int64" in printed
    assert "metrics.accuracy: float64" in printed and "tags.team: string" in printed
    rows = [line.split() for line in printed.splitlines() if line.startswith("iris-knn:")]
    assert len(rows) >= 3 and [float(row[1]) for row in rows] == sorted((float(row[1]) for row in rows), reverse=True)
    assert all(row[2].isdigit() for row in rows), "n_neighbors prints as integers (5), not floats (5.0)"
    steps = re.search(r"^steps per version: (\{.*\})$", printed, re.MULTILINE)
    assert (
        steps and 1 in ast.literal_eval(steps.group(1)).values()
    )  # the Quickstart logged one re-evaluation with a step
