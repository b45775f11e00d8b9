"""``--json`` on every command, one way: before the command or after it, the output is JSON.

The table below names one working invocation of every command; a test
checks that it covers every command of the click group (nested groups
included), so a command added later without ``--json`` fails here.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from typing import Any

import click
import joblib
import pytest

from registry import Registry
from registry.cli import cli
from tests.cli_helpers import run_cli

SIGNING_KEY = "json-walk-signing-key-of-32-bytes!!"

#: Command path → its arguments; ``{d}`` is the test's directory (registry ``{d}/r``, files beside it).
INVOCATIONS: dict[tuple[str, ...], tuple[str, ...]] = {
    ("models",): (),
    ("versions",): ("m",),
    ("show",): ("m:1",),
    ("diff",): ("m:1", "m:2"),
    ("history",): ("m",),
    ("alias", "set"): ("m", "canary", "1"),
    ("alias", "rm"): ("m", "production"),
    ("alias", "protect"): ("m", "staging", "--require", "no_regression:acc:0.1"),
    ("alias", "unprotect"): ("m", "guarded", "--reason", "json walk"),
    ("promote",): ("m", "2", "production", "--require", "no_regression:acc:0.1", "--reason", "better"),
    ("tag",): ("m:1", "reviewed=yes"),
    ("delete",): ("m:1", "--yes"),
    ("register",): ("{d}/model.joblib", "--name", "n"),
    ("fetch",): ("m:1", "-o", "{d}/out.pkl"),
    ("export",): ("m:1", "-o", "{d}/out.tar"),
    ("import",): ("{d}/bundle.tar", "--allow-unsigned"),
    ("search",): ("metrics.acc > 0",),
    ("best",): ("m", "acc"),
    ("log",): ("m",),
    ("keys", "generate"): ("--out", "{d}", "--name", "fresh"),
    ("keys", "fingerprint"): ("{d}/team.pub",),
    ("policy",): ("--role", "callable"),
    ("audit",): ("--deny", "posix.system"),
    ("seal",): ("m",),
    ("verify",): ("--quick",),
    ("repair",): ("--dry-run",),
    ("gc",): ("--dry-run",),
    ("db", "upgrade"): (),
    ("db", "current"): (),
    ("cache", "info"): (),
    ("cache", "clear"): (),
    ("check",): ("m:1",),
}

#: Commands whose JSON is checked in a test of their own: ``demo`` trains models (slow lane); ``ui`` serves
#: until stopped (tests/test_ui_browser.py reads the line it prints on start), and so does ``serve``
#: (tests/test_serve_server.py); ``preflight`` runs another
#: interpreter and ``migrate`` needs a model with a canary (tests/test_preflight.py reads the JSON of both).
OWN_TEST = {("demo",), ("ui",), ("serve",), ("preflight",), ("migrate",)}


def leaf_commands(group: click.Group, prefix: tuple[str, ...] = ()) -> dict[tuple[str, ...], click.Command]:
    """Every command that runs (not a group), by its path, nested groups walked."""
    found: dict[tuple[str, ...], click.Command] = {}
    for name, command in group.commands.items():
        if isinstance(command, click.Group):
            found.update(leaf_commands(command, (*prefix, name)))
        else:
            found[(*prefix, name)] = command
    return found


@pytest.fixture(scope="module")
def base(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry with two versions of ``m`` (``production`` → 1, ``guarded`` protected), a bundle, a file and a key."""
    from registry.trust.keys import generate_key_pair

    root = tmp_path_factory.mktemp("json-walk")
    with Registry(root / "r") as reg:
        for acc in (0.5, 0.75):
            reg.register("m", {"weights": [acc]}, format="pickle", metrics={"acc": acc}, params={"k": acc})
        reg.set_alias("m", "production", 1)
        reg.protect_alias("m", "guarded", require=["signed"])
        reg.export_bundle(["m:1"], root / "bundle.tar")
    joblib.dump({"weights": [1, 2]}, root / "model.joblib")
    generate_key_pair(root, "team", "ed25519")
    return root


def _invoke(base: Path, tmp_path: Path, path: tuple[str, ...], json_first: bool) -> Any:
    where = tmp_path / ("before" if json_first else "after")
    shutil.copytree(base, where)
    args = [arg.replace("{d}", str(where)) for arg in INVOCATIONS[path]]
    line = ["--json", *path, *args] if json_first else [*path, *args, "--json"]
    env = {"MODELSHELF_SIGNING_KEY": SIGNING_KEY} if path == ("seal",) else None
    result = run_cli(where / "r", *line, env=env, catch_exceptions=False)
    assert result.exit_code == 0, (line, result.output)
    try:
        return json.loads(result.stdout)
    except ValueError:
        pytest.fail(f"modelshelf {' '.join(line)} printed no JSON:\n{result.stdout}")


def test_the_table_names_every_command() -> None:
    assert set(INVOCATIONS) | OWN_TEST == set(leaf_commands(cli))


@pytest.mark.parametrize("path", sorted(leaf_commands(cli)), ids=" ".join)
def test_every_command_has_a_json_option(path: tuple[str, ...]) -> None:
    command = leaf_commands(cli)[path]
    assert any("--json" in getattr(param, "opts", ()) for param in command.params), path


@pytest.mark.parametrize("path", sorted(INVOCATIONS), ids=" ".join)
def test_json_before_or_after_the_command_prints_the_same_json(
    base: Path, tmp_path: Path, path: tuple[str, ...]
) -> None:
    before = _invoke(base, tmp_path, path, json_first=True)
    after = _invoke(base, tmp_path, path, json_first=False)
    assert type(before) is type(after)
    assert before not in ([], {}, None), f"{path} printed no data: its invocation should give it something to show"
    if isinstance(before, dict):
        assert before.keys() == after.keys()
    if isinstance(before, list) and before and isinstance(before[0], dict):
        assert before[0].keys() == after[0].keys()


def test_demo_prints_json_before_and_after_it(tmp_path: Path) -> None:
    for line in (["--json", "demo", "--dir", str(tmp_path / "a")], ["demo", "--dir", str(tmp_path / "b"), "--json"]):
        result = run_cli(None, *line, catch_exceptions=False)
        assert result.exit_code == 0, result.output
        data = json.loads(result.stdout)
        assert data["production"].startswith("iris-knn:") and data["registered"] and data["history"]
        assert "predictions identical" in result.stderr  # the story is told on stderr, away from the data


def test_the_new_json_shapes(base: Path, tmp_path: Path) -> None:
    """What the commands that used to print only text give (documented in the README's Command line)."""
    assert _invoke(base, tmp_path / "1", ("alias", "rm"), True) == {
        "name": "m",
        "alias": "production",
        "version": 1,
        "removed": True,
    }
    deleted = _invoke(base, tmp_path / "2", ("delete",), True)
    assert deleted["ref"] == "m:1" and deleted["deleted"] is True and deleted["aliases"] == ["production"]
    fetched = _invoke(base, tmp_path / "3", ("fetch",), True)
    assert fetched["ref"] == "m:1" and fetched["path"].endswith("out.pkl") and Path(fetched["path"]).exists()
    exported = _invoke(base, tmp_path / "4", ("export",), True)
    assert exported["signer"] is None and [v["ref"] for v in exported["versions"]] == ["m:1"]
    assert exported["path"].endswith("out.tar")
    upgraded = _invoke(base, tmp_path / "5", ("db", "upgrade"), True)
    assert upgraded["upgraded"] is False and upgraded["before"] == upgraded["revision"]
    cleared = _invoke(base, tmp_path / "6", ("cache", "clear"), True)
    assert cleared == {"removed_files": 0, "freed_bytes": 0}
