"""The command line, through its real entry point."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import cli
from registry.demo import KNN_NAME, LOGREG_NAME, NEIGHBOURS, run_demo
from tests.cli_helpers import run_cli


def modelshelf(*args: str, cwd: Path, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "registry", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        env={**os.environ, **(env or {})},
        timeout=120,
    )


@pytest.mark.slow
def test_demo_runs_in_a_fresh_directory(tmp_path: Path) -> None:
    result = modelshelf("demo", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    assert "predictions identical" in result.stdout
    assert "accuracy across versions" in result.stdout
    with Registry(tmp_path / "modelshelf-demo") as reg:
        assert reg.models() == [KNN_NAME, LOGREG_NAME]
        assert len(reg.versions(KNN_NAME)) == len(NEIGHBOURS)
        production = reg.get(f"{KNN_NAME}@production")
        best = max(v.metrics["accuracy"] for v in reg.versions(KNN_NAME))
        assert reg.metrics_history(KNN_NAME, "accuracy")[0].key == "accuracy"
        assert all(p.step is None for p in reg.metrics_history(KNN_NAME, "accuracy"))  # one meaning per key
        assert production.metrics["accuracy"] == best
        assert production.version == reg.best(KNN_NAME, "accuracy").version
        assert "train_accuracy" in production.metrics


def test_demo_can_run_twice_in_the_same_registry(tmp_path: Path) -> None:
    first = run_demo(tmp_path / "r")
    second = run_demo(tmp_path / "r")
    assert [mv.version for mv in second.registered if mv.name == KNN_NAME] == [
        mv.version + len(NEIGHBOURS) for mv in first.registered if mv.name == KNN_NAME
    ]
    assert len(second.checks) == 4


def test_db_commands(tmp_path: Path) -> None:
    runner = CliRunner()
    home = str(tmp_path / "r")
    result = runner.invoke(cli, ["--home", home, "db", "current"])
    assert result.exit_code == 0 and "no catalog yet" in result.output
    assert not (tmp_path / "r").exists()  # looking does not create anything
    result = runner.invoke(cli, ["--home", home, "db", "upgrade"])
    assert result.exit_code == 0 and "upgraded from empty" in result.output
    result = runner.invoke(cli, ["--home", home, "db", "upgrade"])
    assert result.exit_code == 0 and "already at revision" in result.output
    result = runner.invoke(cli, ["--home", home, "db", "current"])
    assert "up to date" in result.output


def test_environment_variables_select_the_registry(tmp_path: Path) -> None:
    result = modelshelf("db", "upgrade", cwd=tmp_path, env={"MODELSHELF_HOME": str(tmp_path / "from-env")})
    assert result.returncode == 0, result.stderr
    assert (tmp_path / "from-env" / "catalog.db").exists()


def test_errors_are_one_line_with_an_exit_code(tmp_path: Path) -> None:
    (tmp_path / "r").mkdir()
    (tmp_path / "r" / "catalog.db").write_bytes(b"garbage" * 1000)
    result = modelshelf("--home", str(tmp_path / "r"), "db", "upgrade", cwd=tmp_path)
    assert result.returncode == 1
    assert result.stderr.startswith("error: ") and result.stderr.count("\n") == 1
    assert "Traceback" not in result.stderr
    debug = modelshelf("--debug", "--home", str(tmp_path / "r"), "db", "upgrade", cwd=tmp_path)
    assert "Traceback" in debug.stderr


def test_usage_errors_exit_2(tmp_path: Path) -> None:
    result = modelshelf("--catalog", "not a url", "db", "upgrade", cwd=tmp_path)
    assert result.returncode == 2 and "catalog URL" in result.stderr
    result = modelshelf("no-such-command", cwd=tmp_path)
    assert result.returncode == 2


@pytest.mark.parametrize("args", [[], ["demo"], ["db"], ["db", "upgrade"], ["db", "current"]])
def test_help_shows_an_example(args: list[str]) -> None:
    result = run_cli(None, *args, "--help")
    assert result.exit_code == 0
    assert "Example" in result.output


def test_version_option() -> None:
    import registry

    result = run_cli(None, "--version")
    assert result.exit_code == 0 and "modelshelf" in result.output and registry.__version__ in result.output
