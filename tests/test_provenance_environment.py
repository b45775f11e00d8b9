"""The environment recorded at registration, and the check made at load."""

from __future__ import annotations

import json
import sqlite3
import warnings
from pathlib import Path

import pytest

from registry import EnvironmentMismatch, EnvironmentMismatchWarning, Registry
from registry.provenance.environment import current_environment, environment_differences
from tests.markers import Marker


def rewrite_environment(home: Path, **changes: str | None) -> None:
    """Edit the recorded environment in the catalog, as if registered on another machine."""
    with sqlite3.connect(home / "catalog.db") as db:
        (text,) = db.execute("SELECT environment FROM versions").fetchone()
        env = json.loads(text)
        env.update(changes)
        db.execute("UPDATE versions SET environment = ?", (json.dumps(env),))


def test_environment_is_recorded(reg: Registry, knn) -> None:
    import platform

    import joblib
    import numpy
    import sklearn

    env = reg.register("m", knn).environment
    assert env["python"] == platform.python_version()
    assert env["scikit-learn"] == sklearn.__version__
    assert env["numpy"] == numpy.__version__
    assert env["joblib"] == joblib.__version__
    assert env["platform"]
    assert reg.get("m").environment == env


def test_same_environment_loads_silently(reg: Registry, knn) -> None:
    reg.register("m", knn)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        reg.load("m", strict=True)


@pytest.mark.parametrize(("key", "recorded"), [("scikit-learn", "0.24.2"), ("numpy", "1.0.0"), ("python", "3.7.1")])
def test_a_different_minor_version_warns_once_naming_both(reg: Registry, home: Path, knn, key, recorded) -> None:
    reg.register("m", knn)
    rewrite_environment(home, **{key: recorded})
    with pytest.warns(EnvironmentMismatchWarning) as caught:
        model = reg.load("m")
    assert model.n_neighbors == 3
    assert len(caught) == 1
    message = str(caught[0].message)
    assert key in message and recorded in message and current_environment()[key] in message


def test_strict_raises_before_unpickling(reg: Registry, home: Path, tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    reg.register("m", Marker(mark), format="pickle")
    rewrite_environment(home, numpy="1.0.0")
    with pytest.raises(EnvironmentMismatch, match="numpy 1.0.0"):
        reg.load("m", strict=True)
    assert not mark.exists()


def test_patch_releases_and_new_packages_do_not_warn() -> None:
    now = current_environment()
    patch_only = dict(now, numpy=".".join(now["numpy"].split(".")[:2] + ["999"]))
    assert environment_differences(patch_only) == []
    assert environment_differences({"python": now["python"], "numpy": None}) == []
    assert environment_differences({"numpy": "2.1.0"}, {"numpy": None}) == [
        "numpy 2.1.0 (registered) vs not installed (here)"
    ]
