"""``modelshelf register`` checks a file with the safe unpickler by default; running its code is opt-in."""

from __future__ import annotations

import json
import pickle as P
from pathlib import Path
from typing import Any

import joblib
import pytest
from sklearn.linear_model import Ridge

from registry import Registry, UnsafeArtifact
from tests.cli_helpers import register_cli, run_cli
from tests.conftest import blob_files
from tests.hostile_pickles import call, glob, text


def _sneaky_file(tmp_path: Path) -> tuple[Path, Path]:
    """A file whose bytes run ``posix.system`` and then yield a clean estimator."""
    mark = tmp_path / "mark"
    clean = P.dumps(Ridge().fit([[0.0], [1.0]], [0.0, 1.0]), protocol=2)
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(P.PROTO + b"\x02" + call(glob("posix", "system"), text(f"touch {mark}")) + P.POP + clean[2:])
    return artifact, mark


def _register(home: Path, *args: str) -> object:
    return register_cli(home, *args, "--format", "pickle")


def test_the_default_check_is_safe_and_refuses_without_running_or_writing(home: Path, tmp_path: Path) -> None:
    artifact, mark = _sneaky_file(tmp_path)
    result = _register(home, str(artifact), "--name", "sneaky")
    assert result.exit_code == 3 and "posix.system" in result.output
    assert not mark.exists()
    with Registry(home) as reg:
        assert reg.models() == []
    assert blob_files(home) == []


def test_no_check_stores_the_file_and_still_records_what_it_imports(home: Path, tmp_path: Path) -> None:
    artifact, mark = _sneaky_file(tmp_path)
    result = _register(home, str(artifact), "--name", "sneaky", "--no-check", "--json")
    assert result.exit_code == 0, result.output
    assert "posix.system" in json.loads(result.output)["imports"] and not mark.exists()


def test_unsafe_check_runs_the_file_as_its_help_says(home: Path, tmp_path: Path) -> None:
    artifact, mark = _sneaky_file(tmp_path)
    assert "RUNS ANY CODE" in run_cli(None, "register", "--help").output
    result = _register(home, str(artifact), "--name", "sneaky", "--unsafe-check")
    assert result.exit_code == 0, result.output
    assert mark.exists()


def test_register_file_checks_safely_when_asked(reg: Registry, tmp_path: Path) -> None:
    artifact, mark = _sneaky_file(tmp_path)
    try:
        reg.register_file("sneaky", artifact, format="pickle", check="safe")
    except UnsafeArtifact as exc:
        assert exc.global_name == "posix.system"
    else:
        raise AssertionError("a safe check admitted posix.system")
    assert not mark.exists() and reg.models() == []


def test_the_cli_refuses_both_check_flags_at_once(home: Path, tmp_path: Path) -> None:
    artifact, mark = _sneaky_file(tmp_path)
    result = _register(home, str(artifact), "--name", "sneaky", "--unsafe-check", "--no-check")
    assert result.exit_code == 2 and "not both" in result.output and not mark.exists()


@pytest.mark.parametrize("fmt", ["pickle", "joblib"])
def test_a_clean_file_passes_the_safe_check_with_params_and_signature(
    reg: Registry, tmp_path: Path, pipeline: Any, iris: Any, fmt: str
) -> None:
    path = tmp_path / f"model.{fmt}"
    joblib.dump(pipeline, path) if fmt == "joblib" else path.write_bytes(P.dumps(pipeline))
    mv = reg.register_file("pipe", path, format=fmt, check="safe")
    assert mv.params["logisticregression__C"] == 0.5 and mv.input_signature is not None
    assert "sklearn.pipeline.Pipeline" in mv.imports
    X, _ = iris
    assert (reg.load("pipe", safe=True).predict(X) == pipeline.predict(X)).all()


class Box:
    """A user's own class: not on the safe-loading policy."""

    def __init__(self, content: Any) -> None:
        self.content = content


BOX = f"{Box.__module__}.{Box.__qualname__}"


def test_the_safe_check_refuses_a_class_outside_the_policy_unless_trusted(reg: Registry, tmp_path: Path) -> None:
    path = tmp_path / "box.pkl"
    path.write_bytes(P.dumps(Box([1, 2])))
    with pytest.raises(UnsafeArtifact) as refused:
        reg.register_file("box", path, format="pickle", check="safe")
    assert refused.value.global_name == BOX
    assert "check='unsafe'" in str(refused.value)
    assert reg.models() == []
    mv = reg.register_file("box", path, format="pickle", check="safe", trusted=[BOX])
    assert mv.imports == (BOX,)
    assert reg.load("box", safe=True, trusted=[BOX]).content == [1, 2]


def test_check_takes_only_the_documented_values(reg: Registry, tmp_path: Path) -> None:
    path = tmp_path / "x.pkl"
    path.write_bytes(P.dumps([1, 2]))
    for wrong in ("yes", 1, None, "SAFE"):
        with pytest.raises(ValueError, match="check must be"):
            reg.register_file("x", path, format="pickle", check=wrong)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="single string"):
        reg.register_file("x", path, format="pickle", check="safe", trusted="builtins.list")
    assert reg.models() == []
