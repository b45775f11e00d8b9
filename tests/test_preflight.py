"""Upgrade pre-flight and guarded migration: versions loaded and checked by another interpreter, for real.

The other interpreter is a real subprocess: this one (so the tests run
anywhere) with an environment that makes models behave otherwise there
(``$CANARY_SHIFT`` for :mod:`tests.canary_models`, ``$QUIRK`` for
:mod:`tests.preflight_models`, a module it cannot import), and in CI a
second virtual environment with an older scikit-learn and numpy
(``$MODELSHELF_TEST_OTHER_PYTHON``, built by ``.ci/run``), whose findings
the README's table states and this module checks.
"""

from __future__ import annotations

import json
import os
import pickle
import re
import sqlite3
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

from registry import (
    CanaryMismatch,
    CanaryNotFound,
    InvalidArgument,
    NotFound,
    PromotionRefused,
    ReadOnlyRegistry,
    Registry,
    UntrustedArtifact,
    tagged,
)
from tests import canary_models, preflight_models
from tests.cli_helpers import run_cli
from tests.servers import skip_or_fail

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text(encoding="utf-8")
#: The interpreter of a second virtual environment (older scikit-learn and numpy), where CI has built one.
OTHER_PYTHON = os.environ.get("MODELSHELF_TEST_OTHER_PYTHON")
ROWS = np.arange(20, dtype=float).reshape(10, 2)
KEY = "preflight-test-signing-key-32-bytes"


@pytest.fixture(autouse=True)
def _child_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """The other interpreter imports ``tests.*`` as this one does, and misbehaves only where a test says so."""
    monkeypatch.setenv("PYTHONPATH", str(ROOT))
    monkeypatch.delenv("QUIRK", raising=False)
    monkeypatch.delenv("CANARY_SHIFT", raising=False)


def quirky(reg: Registry, name: str = "quirky", alias: str | None = "production") -> Any:
    return reg.register(name, preflight_models.Quirky().fit(ROWS), input_example=ROWS, alias=alias)


def shifted(reg: Registry, iris: tuple[Any, Any], alias: str | None = "production") -> Any:
    X, y = iris
    return reg.register("shifted", canary_models.ShiftedRegressor().fit(X, y), data=(X, y), alias=alias)


def by_ref(report: Any) -> dict[str, Any]:
    return {result.ref: result for result in report.results}


# -- which versions, and what becomes of them --------------------------------


def test_the_aliased_versions_by_default_every_version_with_all_versions_or_those_named(
    reg: Registry, iris: tuple[Any, Any]
) -> None:
    quirky(reg)
    quirky(reg, alias=None)
    shifted(reg, iris, alias=None)
    aliased = reg.preflight(sys.executable)
    assert [(r.ref, r.aliases, r.status, r.canary) for r in aliased.results] == [
        ("quirky:1", ("production",), "loads", "equal")
    ]
    assert aliased.python == os.path.abspath(sys.executable) and aliased.environment["numpy"] == np.__version__
    every = reg.preflight(sys.executable, all_versions=True)
    assert sorted(by_ref(every)) == ["quirky:1", "quirky:2", "shifted:1"]
    assert all(r.status == "loads" and r.canary == "equal" and r.environment == () for r in every.results)
    named = reg.preflight(sys.executable, ["shifted:1", "quirky@production", "quirky:1"])
    assert [r.ref for r in named.results] == ["shifted:1", "quirky:1"]  # each version once
    assert named.breaking == () and named.to_json()["breaking"] == []


def test_a_model_that_predicts_otherwise_there_is_changed_with_the_rows_and_sizes(
    reg: Registry, iris: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shifted(reg, iris)
    monkeypatch.setenv("CANARY_SHIFT", "0.5")  # read by tests.canary_models in the other interpreter only
    report = reg.preflight(sys.executable)
    (result,) = report.results
    assert result.status == "changed" and result.canary == "changed" and result.breaks
    assert result.report is not None and result.report.methods[0].changed_cells == 64
    assert result.report.methods[0].max_abs_diff == pytest.approx(0.5)
    assert report.aliased_breaking == (result,)
    assert reg.check("shifted:1").status == "equal"  # here nothing changed: it is the other side that differs


def test_warnings_over_there_are_reported_and_the_canary_still_runs(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    quirky(reg)
    monkeypatch.setenv("QUIRK", "warn")
    (result,) = reg.preflight(sys.executable).results
    assert result.status == "warns" and result.canary == "equal" and not result.breaks
    assert result.warnings == ("UserWarning: quirky: loaded in another interpreter",)


def test_what_the_model_prints_while_loading_does_not_spoil_the_answer(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    quirky(reg)
    monkeypatch.setenv("QUIRK", "print")
    (result,) = reg.preflight(sys.executable).results
    assert (result.status, result.canary) == ("loads", "equal")


@pytest.mark.parametrize(
    ("quirk", "said"),
    [
        ("crash", r"killed by SIGSEGV: about to crash"),
        ("exit", r"SystemExit: 7"),
        ("fd1", r"^the interpreter exited with status 0 but|^$"),
    ],
)
def test_a_crash_or_an_exit_fails_that_version_and_the_others_still_run(
    reg: Registry, iris: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch, quirk: str, said: str
) -> None:
    quirky(reg)
    shifted(reg, iris)
    monkeypatch.setenv("QUIRK", quirk)
    results = by_ref(reg.preflight(sys.executable))
    if quirk == "fd1":  # output written straight to file descriptor 1 and by an atexit hook spoils nothing
        assert (results["quirky:1"].status, results["quirky:1"].canary) == ("loads", "equal")
        assert (results["shifted:1"].status, results["shifted:1"].canary) == ("loads", "equal")
        return
    assert results["quirky:1"].status == "fails" and results["quirky:1"].canary == "not run"
    assert re.search(said, results["quirky:1"].error or ""), results["quirky:1"].error
    assert (results["shifted:1"].status, results["shifted:1"].canary) == ("loads", "equal")


def test_a_hang_is_stopped_at_the_timeout_with_what_the_model_started(
    reg: Registry, monkeypatch: pytest.MonkeyPatch
) -> None:
    quirky(reg)
    monkeypatch.setenv("QUIRK", "hang")
    (result,) = reg.preflight(sys.executable, timeout=8).results
    assert result.status == "fails" and "did not finish within 8 s" in (result.error or "")


def test_the_other_interpreter_gets_no_keys_and_an_empty_directory_not_ours(
    home: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MODELSHELF_SIGNING_KEY", KEY)
    with Registry(home) as reg:
        quirky(reg)
    workdir = tmp_path / "work"
    workdir.mkdir()
    (workdir / "joblib.py").write_text("raise ImportError('a joblib.py in the directory the command ran in')\n")
    monkeypatch.chdir(workdir)
    monkeypatch.setenv("QUIRK", "snoop")
    with Registry(home) as reg:
        (result,) = reg.preflight(sys.executable).results
    assert result.status == "warns" and result.canary == "equal"  # the real joblib loaded it
    (snooped,) = result.warnings
    assert "key=None" in snooped and str(workdir) not in snooped


def test_the_child_program_parses_as_python_3_8() -> None:
    import ast

    from registry.inputs import preflight

    ast.parse(preflight.child_source(), feature_version=(3, 8))  # a SyntaxError if it does not


def test_a_skops_version_loads_over_there_with_the_types_trusted_here(reg: Registry, iris: tuple[Any, Any]) -> None:
    X, y = iris
    reg.register("sk", LogisticRegression(max_iter=500).fit(X, y), data=(X, y), format="skops", alias="production")
    (result,) = reg.preflight(sys.executable).results
    assert (result.status, result.canary) == ("loads", "equal"), result.error
    reg.register("odd", preflight_models.Quirky().fit(ROWS), input_example=ROWS, format="skops", alias="production")
    refused = by_ref(reg.preflight(sys.executable, ["odd:1"]))["odd:1"]
    assert refused.status == "fails" and "tests.preflight_models.Quirky" in (refused.error or "")
    trusted = by_ref(reg.preflight(sys.executable, ["odd:1"], trusted=["tests.preflight_models.Quirky"]))["odd:1"]
    assert (trusted.status, trusted.canary) == ("loads", "equal"), trusted.error


def test_a_class_the_other_interpreter_cannot_import_fails_with_its_error(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    module = tmp_path / "only_here"
    module.mkdir()
    (module / "here_only_model.py").write_text(
        "import numpy as np\n\nclass Local:\n    def predict(self, X):\n        return np.asarray(X).sum(axis=1)\n"
    )
    monkeypatch.syspath_prepend(str(module))  # importable here, not on the other interpreter's path
    import here_only_model

    reg.register("local", here_only_model.Local(), input_example=ROWS, alias="production")
    (result,) = reg.preflight(sys.executable).results
    assert result.status == "fails" and "No module named 'here_only_model'" in (result.error or "")


# -- trust: the bytes handed over are the verified ones ----------------------


class _LeavesAMark:
    """Unpickling it creates the file it names: what an attacker's swapped artifact would run over there."""

    def __init__(self, path: Path) -> None:
        self.path = str(path)

    def __reduce__(self) -> tuple[Any, ...]:
        return (open, (self.path, "w"))


def test_bytes_swapped_in_the_store_are_refused_here_and_never_reach_the_other_interpreter(
    reg: Registry, tmp_path: Path
) -> None:
    mv = quirky(reg)
    blob = Path(reg._store.path_of(mv.digest))
    marker = tmp_path / "ran-over-there"
    payload = pickle.dumps(_LeavesAMark(marker))
    assert pickle.loads(payload) and marker.exists()  # the payload does run when unpickled...
    marker.unlink()
    blob.chmod(0o644)
    blob.write_bytes(payload)
    (result,) = reg.preflight(sys.executable).results
    assert result.status == "fails" and result.breaks and "refused here, never handed over" in (result.error or "")
    assert "quirky:1" in (result.error or "")
    assert not marker.exists()  # ...and the pre-flight never handed it over


def test_a_version_pointed_by_sql_at_an_attackers_blob_is_refused_with_the_key_before_anything_runs(
    home: Path, tmp_path: Path
) -> None:
    marker = tmp_path / "ran-over-there"
    with Registry(home, signing_key=KEY) as reg:
        quirky(reg)
        evil = reg.register("evil", _LeavesAMark(marker), format="pickle")
    marker.unlink(missing_ok=True)  # registering pickled it, which does not run it; be sure nothing is left
    with sqlite3.connect(home / "catalog.db") as db:  # a writer of the catalog without the key
        db.execute(
            "UPDATE versions SET blob_digest = ?, size = ?, format = 'pickle' WHERE model_id = "
            "(SELECT id FROM models WHERE name = 'quirky')",
            (evil.digest, evil.size),
        )
    with Registry(home, signing_key=KEY) as reg:
        with pytest.raises(UntrustedArtifact, match="quirky:1 has a signature that does not match"):
            reg.preflight(sys.executable, ["quirky:1"])  # tampering is refused outright, before anything runs
    assert not marker.exists()
    with Registry(home) as reg:  # a version registered without the key, beside signed ones
        reg.register("plain", preflight_models.Quirky().fit(ROWS), input_example=ROWS, alias="production")
    with Registry(home, signing_key=KEY) as reg:
        reg.seal("plain")  # its state adopted under the key; the version itself stays unsigned
        (result,) = reg.preflight(sys.executable, ["plain:1"]).results
    assert result.status == "fails" and "refused here, never handed over: plain:1 has no signature" in (
        result.error or ""
    )


# -- bad input ---------------------------------------------------------------


def test_bad_arguments_are_refused_before_any_interpreter_runs(reg: Registry, tmp_path: Path) -> None:
    quirky(reg)
    not_executable = tmp_path / "python"
    not_executable.write_text("#!/bin/sh\n")
    for python, said in [
        (tmp_path / "missing" / "python", "no interpreter at"),
        (tmp_path, "no interpreter at"),
        (not_executable, "is not executable"),
        ("", "must be the path of an interpreter"),
        (3, "must be the path of an interpreter"),
    ]:
        with pytest.raises(InvalidArgument, match=said):
            reg.preflight(python)  # type: ignore[arg-type]
    for timeout in (0, -1, True, "3", float("inf")):
        with pytest.raises(InvalidArgument, match="timeout must be"):
            reg.preflight(sys.executable, timeout=timeout)  # type: ignore[arg-type]
    with pytest.raises(InvalidArgument, match="not both"):
        reg.preflight(sys.executable, ["quirky:1"], all_versions=True)
    with pytest.raises(InvalidArgument, match="refs is empty"):
        reg.preflight(sys.executable, [])
    with pytest.raises(NotFound):
        reg.preflight(sys.executable, ["quirky:9"])


def test_an_interpreter_without_numpy_or_scikit_learn_is_refused_naming_what_to_install(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    quirky(reg)
    bare = tmp_path / "bare"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", str(bare)], check=True)
    monkeypatch.delenv("PYTHONPATH")
    with pytest.raises(InvalidArgument, match="cannot run the pre-flight.*No module named 'numpy'.*needs numpy"):
        reg.preflight(bare / "bin" / "python")


# -- command line ------------------------------------------------------------


def test_the_command_prints_a_table_and_exits_3_when_an_aliased_version_would_break(
    home: Path, iris: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    with Registry(home) as reg:
        shifted(reg, iris)
        quirky(reg, alias=None)
    fine = run_cli(home, "preflight", "--python", sys.executable)
    assert fine.exit_code == 0, fine.output
    assert "shifted:1\tproduction\tloads\tequal\tsame environment" in fine.stdout
    assert "quirky" not in fine.stdout and "nothing would break there" in fine.stdout
    monkeypatch.setenv("CANARY_SHIFT", "2")
    broken = run_cli(home, "preflight", "--python", sys.executable, "--all", "--json")
    assert broken.exit_code == 3, broken.output
    data = json.loads(broken.stdout)
    assert data["aliased_breaking"] == ["shifted:1"] and data["breaking"] == ["shifted:1"]
    assert {r["ref"]: r["status"] for r in data["results"]} == {"quirky:1": "loads", "shifted:1": "changed"}
    assert data["results"][1]["report"]["methods"][0]["changed_cells"] == 64
    unaliased = run_cli(home, "preflight", "--python", sys.executable, "quirky:1")
    assert unaliased.exit_code == 0
    named = run_cli(home, "preflight", "--python", sys.executable, "shifted:1")
    assert named.exit_code == 3 and "1 version would break there: shifted:1" in named.stderr
    both = run_cli(home, "preflight", "--python", sys.executable, "--all", "shifted:1")
    assert both.exit_code == 2 and "not both" in both.output


# -- migrate -----------------------------------------------------------------


def test_migrate_writes_a_new_version_with_the_old_ones_record_and_moves_aliases_when_asked(
    reg: Registry, iris: tuple[Any, Any]
) -> None:
    X, y = iris
    old = reg.register(
        "iris-lr",
        LogisticRegression(max_iter=500).fit(X, y),
        metrics={"accuracy": 0.97},
        tags={"team": "ml"},
        description="the first",
        data=(X, y),
        alias="production",
    )
    reg.set_alias("iris-lr", "staging", 1)
    stay = reg.migrate("iris-lr:1")
    assert stay.ref == "iris-lr:2" and stay.aliases == ()
    assert stay.tags == {"team": "ml", "modelshelf.migrated-from": "iris-lr:1"}
    assert stay.metrics == old.metrics and stay.params == old.params and stay.description == "the first"
    assert stay.input_signature == old.input_signature and stay.format == old.format
    assert stay.lineage is not None and old.lineage is not None
    assert stay.lineage.parent == "iris-lr:1" and stay.lineage.data == old.lineage.data
    assert reg.check(stay.ref).status == "equal" and reg.canary(stay.ref) is not None
    moved = reg.migrate("iris-lr@production", alias_follow=True)
    assert moved.ref == "iris-lr:3" and set(moved.aliases) == {"production", "staging"}
    assert reg.get("iris-lr", alias="staging").version == 3


def test_migrate_writes_nothing_when_the_canary_changed_or_is_missing(
    reg: Registry, iris: tuple[Any, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    shifted(reg, iris)
    monkeypatch.setattr(canary_models, "SHIFT", 0.25)  # this process's code now predicts otherwise
    with pytest.raises(CanaryMismatch, match="nothing was written") as raised:
        reg.migrate("shifted:1", alias_follow=True)
    assert raised.value.report.methods[0].changed_cells == 64
    X, y = iris
    reg.register("bare", LogisticRegression(max_iter=500).fit(X, y), canary=False)
    with pytest.raises(CanaryNotFound, match="bare:1"):
        reg.migrate("bare")
    assert [mv.ref for mv in reg.versions("shifted")] == ["shifted:1"] and len(reg.versions("bare")) == 1
    assert reg.get("shifted", alias="production").version == 1


def test_migrate_is_refused_read_only_and_a_protected_alias_keeps_its_gates(home: Path, iris: tuple[Any, Any]) -> None:
    with Registry(home) as reg:
        quirky(reg)
        reg.set_alias("quirky", "staging", 1)
        reg.protect_alias("quirky", "production", require=[tagged("approved", "yes")])
        with pytest.raises(PromotionRefused, match="approved") as raised:
            reg.migrate("quirky@production", alias_follow=True)
        assert str(raised.value).startswith(
            "quirky:2 was written (migrated from quirky:1) and moved staging, but production stayed on quirky:1"
        )
        assert reg.get("quirky", alias="production").version == 1  # the gate held
        assert reg.get("quirky", alias="staging").version == 2  # the unprotected alias followed
    with Registry(home, read_only=True) as ro, pytest.raises(ReadOnlyRegistry):
        ro.migrate("quirky:1")


def test_migrate_on_the_command_line_says_what_it_wrote_or_which_rows_changed(
    home: Path, iris: tuple[Any, Any]
) -> None:
    with Registry(home) as reg:
        shifted(reg, iris)
    done = run_cli(home, "migrate", "shifted@production", "--alias-follow")
    assert done.exit_code == 0 and done.stdout == "shifted:2: migrated from shifted:1; production now points at it\n"
    as_json = run_cli(home, "migrate", "shifted:2", "--json")
    assert json.loads(as_json.stdout)["migrated"]["version"] == 3
    canary_models.SHIFT, before = 1.0, canary_models.SHIFT
    try:
        refused = run_cli(home, "migrate", "shifted:3")
    finally:
        canary_models.SHIFT = before
    assert refused.exit_code == 3 and "nothing was written" in refused.stderr
    assert "predict: 64 cells changed" in refused.stdout
    with Registry(home) as reg:
        assert len(reg.versions("shifted")) == 3


# -- a real second environment (CI builds it) ------------------------------------


def readme_preflight_table() -> list[list[str]]:
    """The rows of the README's pre-flight table: version, aliases, load, canary, detail."""
    _, _, rest = README.partition("### Upgrade pre-flight")
    rows = [line for line in rest.splitlines() if line.startswith("| `")]
    return [[cell.strip().strip("`") for cell in row.strip("|").split("|")] for row in rows]


def test_the_readme_table_is_what_a_real_older_scikit_learn_and_numpy_report(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    if not OTHER_PYTHON:
        skip_or_fail("no second environment: .ci/run builds one and sets MODELSHELF_TEST_OTHER_PYTHON")
    from tests.test_readme import blocks  # the README's own registration code, run as it is written

    (setup,) = [code for code in blocks("python") if "iris-hgb" in code]
    monkeypatch.chdir(tmp_path)
    exec(compile(setup, "README.md pre-flight block", "exec"), {"__name__": "__readme__"})
    result = run_cli(tmp_path / "upgrade", "preflight", "--python", OTHER_PYTHON, "--all", "--json")
    assert result.exit_code == 3, result.output
    found = {r["ref"]: r for r in json.loads(result.stdout)["results"]}
    table = readme_preflight_table()
    assert len(table) == len(found) >= 4
    for ref, aliases, status, canary, detail in table:
        got = found[ref]
        assert (", ".join(got["aliases"]), got["status"], got["canary"]) == (aliases, status.lower(), canary), ref
        said = got["error"] if got["status"] == "fails" else "; ".join(got["warnings"])
        if got["status"] == "changed":
            said = got["report"]["summary"]
        assert unversioned(detail.rstrip("…")) in unversioned(said), (ref, said)


def unversioned(text: str) -> str:
    """``text`` with version numbers blanked: the README names the versions CI had when it was written."""
    return re.sub(r"\b\d+\.\d+\.\d+\b", "X.Y.Z", text)
