"""Where a version came from and what it takes, through a real registry: lineage, parents, signatures."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import pytest

from registry import (
    InputSignature,
    ModelNotFound,
    Registry,
    SignatureMismatch,
    SignatureNotFound,
    ValidatedModel,
    VersionNotFound,
    check_input,
)

ROOT = Path(__file__).resolve().parents[1]


def git(repo: Path, *args: str) -> str:
    command = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo), *args]
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout.strip()


def test_a_script_in_a_git_repository_records_commit_script_and_dirty_flag(tmp_path: Path, home: Path) -> None:
    repo = tmp_path / "project"
    repo.mkdir()
    git(repo, "init", "-q")
    script = repo / "train.py"
    script.write_text(
        textwrap.dedent(
            """
            import json, sys
            from registry import Registry
            with Registry(sys.argv[1]) as reg:
                mv = reg.register("m", [1], format="pickle")
                print(json.dumps({"commit": mv.lineage.git_commit, "dirty": mv.lineage.git_dirty,
                                  "script": mv.lineage.script, "user": mv.lineage.user}))
            """
        )
    )
    git(repo, "add", "train.py")
    git(repo, "commit", "-q", "-m", "first")
    env = {"PYTHONPATH": str(ROOT), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)}

    def run() -> dict[str, Any]:
        out = subprocess.run([sys.executable, str(script), str(home)], capture_output=True, text=True, env=env)
        assert out.returncode == 0, out.stderr
        return json.loads(out.stdout)

    clean = run()
    assert clean["commit"] == git(repo, "rev-parse", "HEAD") and clean["dirty"] is False
    assert Path(clean["script"]) == script.resolve()
    script.write_text(script.read_text() + "\n# an edit not yet committed\n")
    assert run()["dirty"] is True
    with Registry(home) as reg:
        commit = clean["commit"]
        assert [mv.version for mv in reg.search("m", where=f"lineage.commit = '{commit}'")] == [1, 2]
        assert [mv.version for mv in reg.search("m", where=f"lineage.commit = '{commit[:8]}'")] == [1, 2]
        assert [mv.version for mv in reg.search("m", where=f"lineage.commit in ('{commit[:8]}', 'abcd')")] == [1, 2]
        assert reg.search("m", where=f"lineage.commit not in ('{commit[:8]}')") == []
        assert [mv.version for mv in reg.search("m", where="lineage.dirty = true")] == [2]


def test_training_data_fingerprints_find_every_version_trained_on_the_same_data(reg: Registry, iris, knn) -> None:
    X, y = iris
    first = reg.register("iris", knn, data=(X, y))
    reg.register("iris", knn, data=(X[:100], y[:100]))
    other = reg.register("other-model", [1], format="pickle", data=(X.copy(order="F"), y))
    assert first.lineage.data.startswith("sha256:") and first.lineage.data_shape == (150, 4)
    assert other.lineage.data == first.lineage.data  # the same values, however laid out in memory
    found = reg.search(where=f"lineage.data = '{first.lineage.data}'")
    assert [mv.ref for mv in found] == ["iris:1", "other-model:1"]
    assert reg.get("iris:1").lineage == first.lineage


def test_dataframe_columns_are_recorded(reg: Registry, iris) -> None:
    from sklearn.linear_model import LogisticRegression

    frame = pd.DataFrame(iris[0], columns=["sl", "sw", "pl", "pw"])
    model = LogisticRegression(max_iter=300).fit(frame, iris[1])
    mv = reg.register("frame", model, data=(frame, iris[1]))
    assert mv.lineage.data_columns == ("sl", "sw", "pl", "pw")
    assert reg.get("frame").input_signature.feature_names == ("sl", "sw", "pl", "pw")


def test_a_parent_is_pinned_checked_and_listed_as_an_ancestor(reg: Registry) -> None:
    reg.register("base", [1], format="pickle")
    reg.register("base", [2], format="pickle")
    reg.set_alias("base", "production", 1)
    child = reg.register("tuned", [3], format="pickle", parent="base@production")
    assert child.lineage.parent == "base:1"  # the alias may move later; the lineage does not
    grandchild = reg.register("tuned", [4], format="pickle", parent=child)
    assert reg.ancestors("tuned") == ["tuned:1", "base:1"]
    assert reg.ancestors(grandchild.ref) == ["tuned:1", "base:1"] and reg.ancestors("base:1") == []
    assert [mv.ref for mv in reg.search(where="lineage.parent = 'base:1'")] == ["tuned:1"]
    assert [mv.ref for mv in reg.search(where="lineage.parent is null")] == ["base:1", "base:2"]
    reg.delete_version("base", 1)
    assert reg.ancestors("tuned:2") == ["tuned:1", "base:1"]  # a deleted ancestor is still history
    with pytest.raises(VersionNotFound):
        reg.register("tuned", [5], format="pickle", parent="base:1")
    with pytest.raises(ValueError, match="parent must be a reference"):
        reg.register("tuned", [5], format="pickle", parent=3)  # type: ignore[arg-type]
    assert [mv.version for mv in reg.versions("tuned")] == [1, 2]  # the refused ones wrote nothing


def test_fitted_estimators_get_a_signature_and_validated_loads_check_input(reg: Registry, iris, knn) -> None:
    X, y = iris
    mv = reg.register("iris", knn, data=(X, y))
    assert mv.input_signature == reg.get("iris").input_signature
    assert (mv.input_signature.n_features, mv.input_signature.classes) == (4, (0, 1, 2))
    assert mv.input_signature.output == "classification"
    model = reg.load("iris", validate=True)
    assert isinstance(model, ValidatedModel)
    np.testing.assert_array_equal(model.predict(X), knn.predict(X))
    assert model.n_neighbors == knn.n_neighbors and type(model.model) is type(knn)
    with pytest.raises(SignatureMismatch, match="shape") as caught:
        model.predict(X[0])
    assert caught.value.ref == "iris:1"
    with pytest.raises(SignatureMismatch, match="expected 4 features"):
        model.predict_proba(X[:, :3])
    with pytest.raises(SignatureMismatch):
        check_input(mv, X[:, :3])
    check_input(mv, X)  # no error


def test_signature_from_an_input_example_or_given_explicitly(reg: Registry) -> None:
    example = pd.DataFrame({"age": [31, 45], "city": ["Oslo", "Lima"]})
    mv = reg.register("rules", {"threshold": 3}, format="pickle", input_example=example)
    assert mv.input_signature.feature_names == ("age", "city") and mv.input_signature.example == (
        (31, "Oslo"),
        (45, "Lima"),
    )
    stored = reg.get("rules").input_signature
    assert stored == mv.input_signature and stored.dtypes[0] == "int64"
    with pytest.raises(SignatureMismatch, match="'city'"):
        check_input(reg.get("rules"), pd.DataFrame({"age": [1], "city": [2.5]}))
    given = reg.register("rules", {"threshold": 4}, format="pickle", signature={"n_features": 2})
    assert reg.get(given.ref).input_signature == InputSignature(n_features=2)
    with pytest.raises(ValueError, match="n_features"):
        reg.register("rules", {"threshold": 5}, format="pickle", signature={"n_features": 0})
    assert [v.version for v in reg.versions("rules")] == [1, 2]


def test_a_version_without_a_signature_cannot_be_loaded_validated(reg: Registry) -> None:
    mv = reg.register("plain", [1, 2], format="pickle")
    assert mv.input_signature is None
    with pytest.raises(SignatureNotFound, match="input_example"):
        reg.load("plain", validate=True)
    with pytest.raises(SignatureNotFound):
        check_input(mv, [[1, 2]])
    with pytest.raises(ValueError, match="takes a ModelVersion"):
        check_input("plain:1", [[1, 2]])  # type: ignore[arg-type]
    assert reg.load("plain") == [1, 2]


def test_lineage_and_signature_travel_in_bundles_but_not_the_parent(reg: Registry, tmp_path: Path, knn, iris) -> None:

    base = reg.register("iris", knn, data=iris)
    reg.register("iris", knn, parent=base)
    reg.export_bundle(["iris:1", "iris:2"], tmp_path / "b.tar")
    with Registry(tmp_path / "target") as target:
        target.import_bundle(tmp_path / "b.tar", allow_unsigned=True)
        copied = target.get("iris:1")
        assert copied.lineage == base.lineage and copied.input_signature == base.input_signature
        assert target.get("iris:2").lineage.parent is None


def test_data_as_a_list_pair_is_x_and_y(reg: Registry, iris, knn) -> None:
    X, y = iris
    as_list = reg.register("iris", knn, data=[X, y])
    assert as_list.lineage.data == reg.register("iris", knn, data=(X, y)).lineage.data
    assert as_list.lineage.data_shape == (150, 4) and as_list.input_signature.dtypes == ("float64",) * 4


def test_an_explicit_signature_must_agree_with_the_fitted_model(reg: Registry, knn, iris) -> None:
    with pytest.raises(ValueError, match="n_features=3 but the model was fitted on 4"):
        reg.register("iris", knn, signature={"n_features": 3})
    with pytest.raises(ValueError, match="not both"):
        reg.register("iris", knn, signature={"n_features": 4}, input_example=iris[0][:2])
    with pytest.raises(ModelNotFound):
        reg.get("iris")  # nothing was written
    assert reg.register("iris", knn, signature={"n_features": 4}).input_signature.n_features == 4


def test_a_script_path_that_is_not_utf8_is_recorded_escaped(tmp_path: Path, home: Path) -> None:
    folder = Path(os.fsdecode(bytes(tmp_path) + b"/bad\xffdir"))
    folder.mkdir()
    script = folder / "train.py"
    script.write_text(
        "import sys\nfrom registry import Registry\n"
        "with Registry(sys.argv[1]) as reg:\n    print(reg.register('m', [1], format='pickle').lineage.script)\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, str(script), str(home)], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().endswith("bad\\xffdir/train.py")


def test_odd_inputs_to_lineage_and_signatures(reg: Registry) -> None:
    import scipy.sparse as sp

    from registry.provenance.fingerprint import fingerprint_data

    mv = reg.register("sparse", [1], format="pickle", input_example=sp.random(10, 3, format="coo", random_state=0))
    assert mv.input_signature.n_features == 3 and len(mv.input_signature.example) == 5
    times = pd.DataFrame({"t": pd.date_range("2020-01-01", periods=100_000, freq="s", tz="UTC")})
    elsewhere = times.assign(t=times["t"].dt.tz_convert("Europe/Oslo"))  # the same instants, another zone
    assert fingerprint_data(times) == fingerprint_data(times.copy())
    assert fingerprint_data(times).digest != fingerprint_data(elsewhere).digest
    with pytest.raises(ValueError, match="years 1 to 9999"):
        reg.events(since="0001-01-01T00:00:00+01:00")
