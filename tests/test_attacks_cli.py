"""Issue 11, item 7: ``modelshelf register FILE`` must not run the file's code unless told to.

The attacker hands someone a model file and waits for them to register it
with the command's defaults. Whatever the default check is, it may refuse
the file, but it may not unpickle it with the unrestricted loader, and a
refused file leaves no version behind.
"""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import Registry
from tests.cli_helpers import register_cli as _register
from tests.cli_helpers import run_cli
from tests.conftest import blob_files, temp_files
from tests.markers import Marker
from tests.pickle_payloads import call, global_, program


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
    assert blob_files(home) == [] and temp_files(home) == []  # nothing written, not even an orphan blob


def test_register_with_default_options_still_takes_an_ordinary_model(home: Path, tmp_path: Path, knn) -> None:
    import joblib

    artifact = tmp_path / "knn.joblib"
    joblib.dump(knn, artifact)
    result = _register(home, str(artifact), "--name", "knn")
    assert result.exit_code == 0, result.output  # type: ignore[attr-defined]
    with Registry(home) as reg:
        assert "sklearn.neighbors._classification.KNeighborsClassifier" in reg.get("knn").imports


def test_the_printed_policy_admits_no_test_doubles_and_no_foreign_names(home: Path) -> None:
    """The policy as ``modelshelf policy --json`` prints it: nothing from test helpers, nothing re-exported.

    ``sklearn.utils._mocking.CheckingClassifier`` calls the ``check_X`` and
    ``check_y`` it was given (its state, so the attacker's) at every predict;
    test doubles have no business in a model.
    """
    import importlib
    import json

    result = run_cli(home, "policy", "--json")
    assert result.exit_code == 0, result.output
    names = [entry["name"] for entry in json.loads(result.output)["entries"]]
    assert len(names) == len(set(names)) > 0
    forbidden = ("sklearn.utils._mocking", "sklearn.utils._testing", "sklearn.externals", "sklearn.datasets", ".tests")
    assert [name for name in names if any(part in name for part in forbidden)] == []
    for name in names:
        module, _, qualname = name.rpartition(".")
        if module.startswith("sklearn.") and "." not in qualname and not qualname.startswith("__pyx_unpickle_"):
            obj = getattr(importlib.import_module(module), qualname)
            assert getattr(obj, "__module__", module) == module, f"{name} is a re-export of {obj.__module__}"
