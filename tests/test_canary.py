"""Prediction canaries: kept at register, re-run by check, load(check=...) and ``modelshelf check``.

The models are real scikit-learn estimators, or estimators of
:mod:`tests.canary_models` whose outputs depend on a value of that module:
changing the value is a real change of what the registered (and verified)
bytes predict, the way an upgraded library changes it. No mock anywhere.
"""

from __future__ import annotations

import json
import sqlite3
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry import (
    CanaryMismatch,
    CanaryNotFound,
    CanaryWarning,
    CatalogError,
    CheckReport,
    EnvironmentMismatch,
    EnvironmentMismatchWarning,
    InvalidArgument,
    InvalidData,
    Registry,
    TrustError,
    UntrustedArtifact,
)
from registry.inputs import canary as canaries
from tests import canary_models
from tests.cli_helpers import run_cli
from tests.markers import Marker
from tests.sql_trace import traced_statements
from tests.test_provenance_environment import rewrite_environment

KEY = "canary-test-signing-key-32-bytes!"


def stored(home: Path) -> list[tuple[int, int, dict[str, Any], dict[str, Any], str | None]]:
    """The raw ``canaries`` rows, read with sqlite3: plain JSON text, nothing a loader could execute."""
    with sqlite3.connect(home / "catalog.db") as db:
        rows = db.execute("SELECT version_id, rows, inputs, outputs, hmac FROM canaries ORDER BY version_id").fetchall()
    return [(vid, n, json.loads(inputs), json.loads(outputs), mac) for vid, n, inputs, outputs, mac in rows]


def shifted(iris: tuple[Any, Any]) -> Any:
    X, y = iris
    return canary_models.ShiftedRegressor().fit(X, y)


# -- what register keeps ---------------------------------------------------


def test_a_real_model_gets_a_canary_of_64_evenly_spaced_rows_and_checks_equal(reg: Registry, home: Path, iris) -> None:
    from sklearn.linear_model import LogisticRegression

    X, y = iris
    model = LogisticRegression(max_iter=500).fit(X, y)
    reg.register("lr", model, data=(X, y))
    [(_, rows, inputs, outputs, mac)] = stored(home)
    assert rows == 64 and mac is None  # no key, no MAC
    assert sorted(outputs) == ["decision_function", "predict", "predict_proba"]
    kept = canaries.decode_input(inputs)
    expected_rows = np.linspace(0, len(X) - 1, 64).round().astype(int)
    assert np.array_equal(kept, X[expected_rows])  # evenly spaced, first and last row included
    assert np.array_equal(canaries.decode_array(outputs["predict_proba"]), model.predict_proba(X[expected_rows]))

    report = reg.check("lr")
    assert isinstance(report, CheckReport)
    assert report.status == "equal" and report.passed and not report.changed and report.rows == 64
    assert [m.method for m in report.methods] == ["predict", "predict_proba", "decision_function"]
    assert report.changed_rows == () and report.environment == ()
    assert report.summary == "still passes: 64 rows predicted as recorded"


def test_check_loads_through_the_safe_unpickler_when_asked(reg: Registry, iris) -> None:
    from sklearn.linear_model import LogisticRegression

    from registry import UnsafeArtifact

    X, y = iris
    reg.register("lr", LogisticRegression(max_iter=500).fit(X, y), data=(X, y))
    reg.register("custom", shifted(iris), data=(X, y))
    assert reg.check("lr", safe=True).status == "equal"  # scikit-learn's own types: inside the policy
    with pytest.raises(UnsafeArtifact, match="tests.canary_models.ShiftedRegressor"):
        reg.check("custom", safe=True)  # refused before any of its code runs, as load(safe=True) refuses it
    assert reg.check("custom", safe=True, trusted=["tests.canary_models.ShiftedRegressor"]).status == "equal"


def test_sampling_is_deterministic_and_an_example_keeps_its_own_rows(reg: Registry, home: Path, iris) -> None:
    X, y = iris
    model = shifted(iris)
    reg.register("m", model, data=(X, y))
    reg.register("m", model, data=(X, y))
    reg.register("m", model, input_example=X[:5])
    first, second, example = stored(home)
    assert first[2] == second[2] and first[3] == second[3]  # the same data, the same rows: no random state
    assert example[1] == 5 and np.array_equal(canaries.decode_input(example[2]), X[:5])


def test_canary_false_keeps_none_and_check_says_so(reg: Registry, home: Path, iris, tmp_path: Path) -> None:
    X, y = iris
    reg.register("m", shifted(iris), data=(X, y), canary=False)
    reg.register("plain", shifted(iris))  # no input at hand: no canary either
    assert stored(home) == []
    for ref in ("m:1", "plain:1"):
        report = reg.check(ref)
        assert report.status == "no canary" and not report.passed and not report.changed
        assert "canary=False" in (report.note or "") and report.summary.startswith("is missing (registered before")
    mark = tmp_path / "mark"
    reg.register("marked", Marker(mark), format="pickle")
    with pytest.raises(CanaryNotFound, match="has no prediction canary"):
        reg.load("marked", check=True)
    assert not mark.exists()  # refused before anything was unpickled
    assert reg.check("marked").status == "no canary" and not mark.exists()  # nothing to compare: nothing loaded


def test_a_model_that_cannot_predict_its_own_example_is_refused_and_nothing_is_written(
    reg: Registry, home: Path, knn
) -> None:
    words = np.array([["a", "b", "c", "d"]])
    with pytest.raises(InvalidData, match=r"predict fails on its own input_example \(1 rows\).*canary=False"):
        reg.register("knn", knn, input_example=words)
    assert reg.models() == [] and stored(home) == []
    assert not [p for p in (home / "blobs").rglob("*") if p.is_file()]  # not even a blob for gc
    assert reg.register("knn", knn, input_example=words, canary=False).version == 1  # the way out it names


def test_an_oversized_canary_keeps_fewer_rows_under_the_cap(reg: Registry, home: Path) -> None:
    from sklearn.linear_model import LinearRegression

    rng = np.random.default_rng(0)
    X = rng.normal(size=(100, 1500))
    reg.register("wide", LinearRegression().fit(X, X[:, 0]), input_example=X)
    [(_, rows, inputs, outputs, _)] = stored(home)
    assert 1 <= rows < 64
    size = len(json.dumps({"rows": rows, "inputs": inputs, "outputs": outputs}, separators=(",", ":")).encode())
    assert size <= canaries.MAX_CANARY_BYTES
    assert reg.check("wide").status == "equal"


# -- DataFrames and dtypes -------------------------------------------------


def test_a_dataframe_canary_round_trips_every_dtype() -> None:
    pd = pytest.importorskip("pandas")
    frame = pd.DataFrame(
        {
            "f": [0.1, float("nan"), float("inf"), -0.0],
            "f32": np.array([1.5, 2.25, -3.0, 1e-30], dtype=np.float32),
            "i": np.array([1, -2, 3, 2**62], dtype=np.int64),
            "i32": np.array([1, 2, 3, 4], dtype=np.int32),
            "b": [True, False, True, False],
            "s": ["x", None, "z", float("nan")],
            "cat": pd.Categorical(["lo", "hi", "lo", None], categories=["lo", "hi"], ordered=True),
            "nullable": pd.array([1, None, 3, 4], dtype="Int64"),
            "text": pd.array(["a", None, "c", "d"], dtype="string"),
            "when": pd.to_datetime(
                ["2026-01-01", None, "2026-12-03 08:00:00.123456789", "1970-01-01"], format="ISO8601"
            ),
        }
    )
    back = canaries.decode_input(json.loads(json.dumps(canaries.encode_input(frame))))
    pd.testing.assert_frame_equal(back, frame, check_dtype=True, check_categorical=True, check_exact=True)
    assert back["cat"].cat.ordered and list(back.columns) == list(frame.columns)


def test_a_pipeline_on_a_dataframe_registers_and_checks_equal(reg: Registry) -> None:
    pd = pytest.importorskip("pandas")
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    rng = np.random.default_rng(1)
    frame = pd.DataFrame(
        {
            "size": rng.normal(size=200),
            "colour": pd.Categorical(rng.choice(["red", "green", "blue"], size=200)),
            "count": rng.integers(0, 9, size=200).astype(np.int32),
        }
    )
    target = (frame["size"] > 0).astype(int)
    encode = ColumnTransformer([("colour", OneHotEncoder(), ["colour"])], remainder="passthrough")
    model = make_pipeline(encode, LogisticRegression()).fit(frame, target)
    reg.register("pipe", model, data=(frame, target))
    report = reg.check("pipe")
    assert report.status == "equal", report
    assert {m.method for m in report.methods} == {"predict", "predict_proba", "decision_function"}


def test_input_a_canary_cannot_keep_exactly_gives_a_warning_and_no_canary(reg: Registry, home: Path) -> None:
    pd = pytest.importorskip("pandas")
    from scipy import sparse
    from sklearn.linear_model import LinearRegression

    X = sparse.random(20, 3, density=0.5, format="csr", random_state=0)
    with pytest.warns(CanaryWarning, match="sparse matrix"):
        reg.register("sparse", LinearRegression().fit(X, np.arange(20)), input_example=X)
    zoned = pd.DataFrame({"when": pd.date_range("2026-01-01", periods=3, tz="UTC")})
    from sklearn.dummy import DummyRegressor

    with pytest.warns(CanaryWarning, match=r"column 'when' has dtype datetime64\[\w+, UTC\]"):
        reg.register("zoned", DummyRegressor().fit(zoned, [1, 2, 3]), input_example=zoned)
    with pytest.warns(CanaryWarning, match="not valid Unicode"):
        reg.register("surrogate", DummyRegressor().fit(np.zeros((2, 1)), [1, 2]), input_example=np.array([["\ud800"]]))
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no methods to ask: no canary, and nothing to warn about
        reg.register("dict", {"not": "a model"}, format="pickle", input_example=np.zeros((2, 2)))
    assert stored(home) == []
    assert reg.check("sparse").status == "no canary"


# -- predictions that changed ----------------------------------------------


def test_check_reports_the_rows_and_cells_that_changed(reg: Registry, iris, monkeypatch: pytest.MonkeyPatch) -> None:
    """The registered bytes, verified, predict 0.5 more once the module they call says so."""
    X, y = iris
    reg.register("m", shifted(iris), data=(X, y))
    monkeypatch.setattr(canary_models, "SHIFT", 0.5)
    report = reg.check("m")
    assert report.status == "changed" and report.changed and not report.passed
    [method] = report.methods
    assert method.method == "predict" and method.changed_cells == 64
    assert len(method.changes) == canaries.MAX_SHOWN and report.changed_rows == tuple(range(canaries.MAX_SHOWN))
    first = method.changes[0]
    assert first.row == 0 and first.column is None
    assert first.actual == pytest.approx(first.expected + 0.5) and first.abs_diff == pytest.approx(0.5)
    assert method.max_abs_diff == pytest.approx(0.5)
    # the sentence a promotion gate quotes after "the canary of m:1"
    assert report.summary.startswith("CHANGED (64 rows): predict: 64 cells changed in rows 0, 1, 2")
    assert report.summary.endswith("…, max abs diff 0.5")


def test_floats_within_tolerance_pass_and_tolerances_are_the_callers(
    reg: Registry, iris, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = iris
    reg.register("m", shifted(iris), data=(X, y))
    monkeypatch.setattr(canary_models, "SHIFT", 1e-12)
    report = reg.check("m")
    assert report.status == "within tolerance" and report.passed
    assert report.methods[0].max_abs_diff == pytest.approx(1e-12, rel=1e-3)
    assert reg.check("m", rtol=0, atol=0).status == "changed"
    assert reg.check("m", rtol=0, atol=1e-11).status == "within tolerance"
    for bad in ({"rtol": -1}, {"atol": float("nan")}, {"rtol": "0.1"}):
        with pytest.raises(InvalidArgument, match="must be a finite number >= 0"):
            reg.check("m", **bad)


def test_labels_are_compared_exactly(reg: Registry, iris, monkeypatch: pytest.MonkeyPatch) -> None:
    X, y = iris
    reg.register("labels", canary_models.MappedClassifier().fit(X, y), data=(X, y))
    assert reg.check("labels").status == "equal"
    monkeypatch.setattr(canary_models, "LABELS", ("setosa", "versicolor", "Virginica"))
    report = reg.check("labels", rtol=1.0, atol=1.0)  # no tolerance makes a label equal
    assert report.status == "changed"
    change = report.methods[0].changes[0]
    assert (change.expected, change.actual, change.abs_diff) == ("virginica", "Virginica", None)
    predicted = reg.load("labels", check=False).predict(canaries.sample_rows(X))
    monkeypatch.setattr(canary_models, "LABELS", ("setosa", "versicolor", "virginica"))
    assert report.methods[0].changed_cells == int(np.sum(predicted == "Virginica"))


def test_load_check_true_raises_canary_mismatch_with_the_report(
    reg: Registry, iris, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = iris
    reg.register("m", shifted(iris), data=(X, y))
    assert isinstance(reg.load("m", check=True), canary_models.ShiftedRegressor)  # unchanged: returned
    monkeypatch.setattr(canary_models, "SHIFT", 2.0)
    with pytest.raises(CanaryMismatch, match=r"m:1 does not predict here .* predict: 64 cells changed") as caught:
        reg.load("m", check=True)
    assert isinstance(caught.value, TrustError)
    assert caught.value.report.status == "changed" and caught.value.report.ref == "m:1"
    assert reg.load("m", check=False).predict(X[:1])[0] == pytest.approx(shifted(iris).predict(X[:1])[0])
    with pytest.raises(InvalidArgument, match="check must be True, False or 'auto'"):
        reg.load("m", check="yes")  # type: ignore[arg-type]


def test_another_environment_warns_whether_the_canary_still_passes(
    reg: Registry, home: Path, iris, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = iris
    reg.register("m", shifted(iris), data=(X, y))
    rewrite_environment(home, numpy="1.0.0")
    with pytest.warns(EnvironmentMismatchWarning) as caught:
        reg.load("m")
    assert len(caught) == 1 and "numpy 1.0.0" in str(caught[0].message)
    assert "its canary still passes: 64 rows predicted as recorded" in str(caught[0].message)
    assert caught[0].filename == __file__  # pointing at the caller of load
    monkeypatch.setattr(canary_models, "SHIFT", 3.0)
    with pytest.warns(EnvironmentMismatchWarning, match=r"its canary CHANGED \(64 rows\): predict: 64 cells"):
        model = reg.load("m")  # "auto" warns: it does not refuse what loaded before
    assert isinstance(model, canary_models.ShiftedRegressor)
    assert reg.check("m").environment == ("numpy 1.0.0 (registered) vs " + np.__version__ + " (here)",)
    monkeypatch.setenv("MODELSHELF_CHECK", "never")
    with pytest.warns(EnvironmentMismatchWarning, match="predictions may differ") as plain:
        reg.load("m")
    assert "canary" not in str(plain[0].message)
    monkeypatch.setenv("MODELSHELF_CHECK", "always")
    with pytest.raises(CanaryMismatch, match=r"m:1 does not predict here .*\(registered in another environment: numpy"):
        reg.load("m")  # the error says it all: no warning besides
    monkeypatch.setenv("MODELSHELF_CHECK", "sometimes")
    with pytest.raises(InvalidArgument, match=r"\$MODELSHELF_CHECK is 'sometimes'"):
        reg.load("m")


def test_a_version_without_a_canary_in_another_environment_says_it_has_none(reg: Registry, home: Path, knn) -> None:
    reg.register("m", knn)
    rewrite_environment(home, **{"scikit-learn": "0.24.2"})
    with pytest.warns(EnvironmentMismatchWarning, match="it has no prediction canary to check"):
        reg.load("m")


def test_a_load_in_the_same_environment_reads_no_canary(reg: Registry, home: Path, iris) -> None:
    """Warm loads pay nothing: a canary row made unreadable does not disturb a load where nothing differs."""
    X, y = iris
    reg.register("m", shifted(iris), data=(X, y))
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("UPDATE canaries SET outputs = ?", (json.dumps({"predict": {"shape": "junk"}}),))
    with traced_statements(reg) as statements:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            assert isinstance(reg.load("m"), canary_models.ShiftedRegressor)
        assert statements and not [s for s in statements if "canaries" in s]  # not one query more
        with pytest.raises(CatalogError, match="holds JSON modelshelf never writes"):
            reg.check("m")
        assert [s for s in statements if "canaries" in s]  # the listener sees the query check makes


# -- tamper evidence -------------------------------------------------------


def test_a_canary_rewritten_by_sql_to_match_a_changed_model_is_refused(
    home: Path, iris, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: the model now predicts otherwise, and someone with SQL access makes the canary agree.

    Without the canary's MAC, ``check`` would report "equal" for the
    rewritten rows; with the signing key it refuses to compare at all.
    """
    X, y = iris
    with Registry(home, signing_key=KEY) as reg:
        reg.register("m", shifted(iris), data=(X, y))
        assert reg.check("m").status == "equal"
        monkeypatch.setattr(canary_models, "SHIFT", 5.0)
        [(_, _, inputs, outputs, mac)] = stored(home)
        assert mac is not None and mac.startswith("c1:")
        now = reg.load("m", check=False).predict(canaries.decode_input(inputs))
        outputs["predict"] = canaries.encode_array(now)
        with sqlite3.connect(home / "catalog.db") as db:
            db.execute("UPDATE canaries SET outputs = ?", (json.dumps(outputs),))
        for attempt in (lambda: reg.check("m"), lambda: reg.load("m", check=True)):
            with pytest.raises(UntrustedArtifact, match="canary of m:1 has a MAC that does not match"):
                attempt()
        report = reg.verify(deep=False)
        assert not report.ok and [(p.kind, p.ref) for p in report.problems] == [("canary_mismatch", "m:1")]
    with Registry(home) as unkeyed:  # what the MAC stands between: without a key the rewrite goes unnoticed
        assert unkeyed.check("m").status == "equal"


def test_a_canary_forged_onto_a_version_or_moved_between_versions_is_refused(home: Path, iris) -> None:
    X, y = iris
    with Registry(home, signing_key=KEY) as reg:
        reg.register("m", shifted(iris), data=(X, y))
        reg.register("m", canary_models.ShiftedRegressor().fit(X, y + 1), data=(X, y), canary=False)
        with sqlite3.connect(home / "catalog.db") as db:  # v1's signed canary copied onto v2's other bytes
            db.execute(
                "INSERT INTO canaries (version_id, rows, inputs, outputs, hmac, created_at) "
                "SELECT 2, rows, inputs, outputs, hmac, created_at FROM canaries WHERE version_id = 1"
            )
        # the model's seal notices the new row first (the whole model is refused) ...
        with pytest.raises(UntrustedArtifact, match="version 2 has a prediction canary it did not have"):
            reg.check("m:2")
        reg.seal("m")  # ... and even adopted by someone holding the key, the copy proves nothing: its MAC
        with pytest.raises(UntrustedArtifact, match="canary of m:2 has a MAC that does not match"):
            reg.check("m:2")
        with sqlite3.connect(home / "catalog.db") as db:
            db.execute("UPDATE canaries SET hmac = NULL WHERE version_id = 2")
        with pytest.raises(UntrustedArtifact, match="canary of m:2 has no MAC"):
            reg.check("m:2")
        assert reg.check("m:1").status == "equal"


def test_a_canary_deleted_by_sql_on_a_keyed_registry_is_refused_not_reported_missing(
    home: Path, iris, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The attack: the model predicts otherwise after an upgrade, and someone deletes its canary row.

    "No canary" passes ``modelshelf check`` (exit 0) and silences the check
    of an environment-changed load, so with the key the model's seal binds
    which versions have a canary: the deletion is a mismatch, not a pass.
    """
    X, y = iris
    with Registry(home, signing_key=KEY) as reg:
        reg.register("m", shifted(iris), data=(X, y))
        monkeypatch.setattr(canary_models, "SHIFT", 5.0)
        assert reg.check("m").changed
        with sqlite3.connect(home / "catalog.db") as db:
            db.execute("DELETE FROM canaries")
        for attempt in (lambda: reg.check("m"), lambda: reg.get("m"), lambda: reg.load("m", check=False)):
            with pytest.raises(UntrustedArtifact, match="prediction canary of version 1 was removed outside"):
                attempt()
        assert not reg.verify(deep=False).ok
    with Registry(home) as unkeyed:  # what the seal stands between: without a key the deletion goes unnoticed
        assert unkeyed.check("m").status == "no canary"


# -- the command line ------------------------------------------------------


def test_modelshelf_check_prints_the_report_and_exits_3_when_a_canary_changed(
    home: Path, iris, monkeypatch: pytest.MonkeyPatch
) -> None:
    X, y = iris
    with Registry(home) as reg:
        reg.register("m", shifted(iris), data=(X, y))
        reg.register("old", shifted(iris))
    ok = run_cli(home, "check", "m", "old", catch_exceptions=False)
    assert ok.exit_code == 0, ok.output
    assert "m:1: equal (64 rows: predict equal)" in ok.stdout and "old:1: no canary" in ok.stdout
    monkeypatch.setattr(canary_models, "SHIFT", 0.25)
    changed = run_cli(home, "check", "m", catch_exceptions=False)
    assert changed.exit_code == 3, changed.output
    assert "m:1: CHANGED (64 rows: predict changed)" in changed.stderr
    assert "predict: 64 cells changed, max abs diff 0.25" in changed.stdout and "row 0: " in changed.stdout
    tolerant = run_cli(home, "check", "m", "--atol", "0.3", catch_exceptions=False)
    assert tolerant.exit_code == 0 and "within tolerance" in tolerant.stdout
    data = json.loads(run_cli(home, "--json", "check", "m", "old", catch_exceptions=False).stdout)
    assert [r["status"] for r in data] == ["changed", "no canary"] and [r["passed"] for r in data] == [False, False]
    [method] = data[0]["methods"]
    assert set(method) == {
        "method",
        "status",
        "shape",
        "dtype",
        "changed_cells",
        "max_abs_diff",
        "max_rel_diff",
        "changes",
        "detail",
    }
    assert method["shape"] == [64] and method["changed_cells"] == 64
    assert set(method["changes"][0]) == {"method", "row", "column", "expected", "actual", "abs_diff", "rel_diff"}
    assert set(data[0]) == {
        "ref",
        "status",
        "rows",
        "rtol",
        "atol",
        "methods",
        "environment",
        "note",
        "passed",
        "summary",
    }


# -- versions from before canaries, and another process ------------------------


def test_a_version_registered_before_canaries_upgrades_and_checks_as_no_canary(tmp_path: Path) -> None:
    from tests.old_catalogs import legacy_version, old_catalog

    home = tmp_path / "old"
    old_catalog(home, "5c1f0e2d9b7a")  # the head before canaries
    legacy_version(home, {"old": True}, with_imports=True)
    with Registry(home, upgrade=True) as reg:
        assert reg.check("legacy:1").status == "no canary"
        assert reg.load("legacy:1") == {"old": True}
    result = run_cli(home, "check", "legacy:1", catch_exceptions=False)
    assert result.exit_code == 0 and "legacy:1: no canary, nothing to compare" in result.stdout


def test_a_second_process_whose_code_predicts_otherwise_fails_the_check(home: Path, iris) -> None:
    """Registered here; checked by ``modelshelf check`` in another interpreter whose module adds 0.125."""
    import os
    import subprocess
    import sys

    X, y = iris
    with Registry(home) as reg:
        reg.register("m", shifted(iris), data=(X, y))
    root = Path(__file__).resolve().parents[1]
    command = [sys.executable, "-m", "registry", "--home", str(home), "check", "m", "--json"]
    env = {**os.environ, "PYTHONPATH": str(root), "MODELSHELF_CACHE": str(home / "cache")}
    same = subprocess.run(command, capture_output=True, text=True, env=env, timeout=120, cwd=root)
    assert same.returncode == 0, same.stderr
    assert json.loads(same.stdout)[0]["status"] == "equal"
    other = subprocess.run(
        command, capture_output=True, text=True, env={**env, "CANARY_SHIFT": "0.125"}, timeout=120, cwd=root
    )
    assert other.returncode == 3, other.stderr
    [report] = json.loads(other.stdout)
    assert report["status"] == "changed" and report["methods"][0]["max_abs_diff"] == pytest.approx(0.125)


@pytest.fixture(params=["sqlite", "postgresql", pytest.param("mariadb", marks=pytest.mark.slow)])
def catalog_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    """A catalog on SQLite or on a real PostgreSQL or MariaDB server (a fresh database, dropped afterwards)."""
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    from tests.servers import fresh_database

    yield from fresh_database(request.param)


def test_a_canary_of_awkward_values_round_trips_every_catalog_and_keeps_its_mac(
    catalog_url: str, tmp_path: Path, iris
) -> None:
    """NaN, infinities, 2**62, -0.0, text: the server's JSON gives back what the MAC covered, bit for bit."""
    X, y = iris
    awkward = np.array(X[:6], dtype=np.float64)
    awkward[0, 0], awkward[1, 1], awkward[2, 2], awkward[3, 3] = np.nan, np.inf, -np.inf, -0.0
    awkward[4, 0], awkward[5, 1] = 1e-310, 2.0**62
    with Registry(catalog=catalog_url, store=str(tmp_path / "store"), signing_key=KEY) as reg:
        reg.register("m", shifted(iris), input_example=awkward)
        reg.register("labels", canary_models.MappedClassifier().fit(X, y), input_example=X[::10])
        for ref in ("m:1", "labels:1"):
            assert reg.check(ref).status == "equal", ref
        assert not [p for p in reg.verify(deep=False).problems if p.kind == "canary_mismatch"]


class _Decrementing:
    """A model that changes its input in place, as some preprocessing code does; its answers are still stable."""

    def fit(self, X: Any, y: Any = None) -> _Decrementing:
        return self

    def predict(self, X: Any) -> Any:
        X -= 1.0
        return X.sum(axis=1)

    def transform(self, X: Any) -> Any:
        X *= 2.0
        return X


def test_a_model_that_changes_its_input_in_place_still_passes_its_own_canary(home: Path) -> None:
    rows = np.arange(12, dtype=float).reshape(6, 2)
    with Registry(home) as reg:
        reg.register("inplace", _Decrementing(), input_example=rows.copy())
        report = reg.check("inplace")
        assert report.status == "equal", report.summary
        kept = reg.canary("inplace")
        assert kept is not None and canaries.decode_input(kept.inputs).tolist() == rows.tolist()  # as given


def test_strict_in_another_environment_raises_without_a_loading_failed_warning(reg: Registry, home: Path, iris) -> None:
    X, y = iris
    reg.register("m", shifted(iris), data=(X, y))
    rewrite_environment(home, numpy="1.0.0")
    with warnings.catch_warnings(record=True) as seen:
        warnings.simplefilter("always")
        with pytest.raises(EnvironmentMismatch):
            reg.load("m", check=True, strict=True)
    assert [w for w in seen if issubclass(w.category, EnvironmentMismatchWarning)] == []  # nothing failed to load


def test_always_from_the_variable_names_the_variable_for_a_version_without_a_canary(
    reg: Registry, knn, monkeypatch: pytest.MonkeyPatch
) -> None:
    reg.register("m", knn)
    monkeypatch.setenv("MODELSHELF_CHECK", "always")
    with pytest.raises(CanaryNotFound, match=r"load it without \$MODELSHELF_CHECK=always \(set it to auto\)"):
        reg.load("m")
    monkeypatch.delenv("MODELSHELF_CHECK")
    with pytest.raises(CanaryNotFound, match="load it without check=True"):
        reg.load("m", check=True)


def test_auto_warns_when_the_canary_cannot_run_here_and_still_returns_the_model(
    reg: Registry, home: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A DataFrame canary loaded where pandas is missing: "auto" never refuses what loaded before."""
    import pandas as pd
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame({"a": [float(i) for i in range(10)], "b": [float(i % 3) for i in range(10)]})
    reg.register("m", LogisticRegression().fit(frame.to_numpy(), [i % 2 for i in range(10)]), input_example=frame)
    rewrite_environment(home, numpy="1.0.0")
    monkeypatch.setitem(sys.modules, "pandas", None)  # `import pandas` fails from here on
    with pytest.warns(EnvironmentMismatchWarning, match="its canary could not run here: .*pandas"):
        model = reg.load("m")
    assert isinstance(model, LogisticRegression) and model.coef_.shape == (
        1,
        2,
    )  # (sklearn itself wants pandas to predict)
