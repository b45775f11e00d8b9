"""``modelshelf register`` checks a file with the safe unpickler by default; running its code is opt-in."""

from __future__ import annotations

import json
import pickle as P
from pathlib import Path

from click.testing import CliRunner
from sklearn.linear_model import Ridge

from registry import Registry, UnsafeArtifact
from registry.cli import cli
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
    return CliRunner().invoke(cli, ["--home", str(home), "register", *args, "--format", "pickle"])


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
    assert "RUNS ANY CODE" in CliRunner().invoke(cli, ["register", "--help"]).output
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
