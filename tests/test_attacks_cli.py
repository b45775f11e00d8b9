"""Issue 11, item 7: ``modelshelf register FILE`` must not run the file's code unless told to.

The attacker hands someone a model file and waits for them to register it
with the command's defaults. Whatever the default check is, it may refuse
the file, but it may not unpickle it with the unrestricted loader, and a
refused file leaves no version behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import cli
from tests.markers import Marker
from tests.pickle_payloads import call, global_, program


def _register(home: Path, *args: str) -> object:
    return CliRunner().invoke(cli, ["--home", str(home), "register", *args])


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
def test_register_with_default_options_runs_none_of_the_files_code(home: Path, tmp_path: Path, fmt: str) -> None:
    import joblib

    marker = tmp_path / "ran"
    artifact = tmp_path / f"gift.{fmt}"
    if fmt == "joblib":
        joblib.dump(Marker(marker), artifact)  # what an attacker's own __reduce__ writes
    else:
        artifact.write_bytes(program(call(global_("posix", "system"), f"touch {marker}")))
    result = _register(home, str(artifact), "--name", "gift", "--format", fmt)
    assert not marker.exists(), "registering with default options ran the file's code"
    assert result.exit_code != 0, result.output  # type: ignore[attr-defined]
    with Registry(home) as reg:
        assert reg.models() == []


def test_register_with_default_options_still_takes_an_ordinary_model(home: Path, tmp_path: Path, knn) -> None:
    import joblib

    artifact = tmp_path / "knn.joblib"
    joblib.dump(knn, artifact)
    result = _register(home, str(artifact), "--name", "knn")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    with Registry(home) as reg:
        assert "sklearn.neighbors._classification.KNeighborsClassifier" in reg.get("knn").imports
