"""Every command of the CLI against a real registry directory: output, --json, exit codes."""

from __future__ import annotations

import hashlib
import json
import tarfile
from pathlib import Path
from typing import Any

import click
import pytest

from registry import Registry
from registry.cli import cli
from tests.cli_helpers import run_cli
from tests.cli_helpers import run_cli_strict as run
from tests.prebuilt import build_registry, copy_registry


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, template_home: Path, iris) -> Path:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = iris

    def fill(reg: Registry) -> None:
        for k in (1, 3, 5):
            model = KNeighborsClassifier(n_neighbors=k).fit(X, y)
            reg.register(
                "iris-knn",
                model,
                metrics={"accuracy": 1 - k / 100, "f1": 0.9},
                tags={"team": "cv"},
                description=f"k={k}",
            )
        reg.set_alias("iris-knn", "production", 2)
        reg.log_metrics("iris-knn", 2, {"accuracy": 0.5}, step=7)
        reg.register("other", {"plain": True}, format="pickle")

    return build_registry(tmp_path_factory, template_home, "cli-commands", fill)


@pytest.fixture
def filled(home: Path, built: Path) -> Path:
    """iris-knn:1-3 (2 @production, a logged step) and other:1, in this test's own copy."""
    return copy_registry(built, home)


def as_json(home: Path, *args: str) -> Any:
    result = run(home, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


VERSION_KEYS = {
    "name",
    "version",
    "ref",
    "checksum",
    "size",
    "format",
    "created_at",
    "params",
    "metrics",
    "tags",
    "description",
    "environment",
    "aliases",
    "imports",
    "imports_scanned",
    "signed",
    "lineage",
    "input_signature",
}


def test_models(filled: Path) -> None:
    result = run(filled, "models")
    assert result.exit_code == 0
    lines = result.output.splitlines()
    assert lines[0].split("\t") == ["name", "latest", "versions", "aliases", "updated (UTC)"]
    assert lines[1].split("\t")[:4] == ["iris-knn", "3", "3", "production→2"]
    data = as_json(filled, "models")
    assert [m["name"] for m in data] == ["iris-knn", "other"]
    assert data[0] == {**data[0], "latest_version": 3, "versions": 3, "aliases": {"production": 2}}


def test_versions(filled: Path) -> None:
    result = run(filled, "versions", "iris-knn")
    header, *rows = result.output.splitlines()
    assert header.split("\t") == ["version", "created (UTC)", "format", "size", "aliases", "accuracy", "f1"]
    assert [row.split("\t")[0] for row in rows] == ["1", "2", "3"]
    assert rows[1].split("\t")[4:6] == ["production", "0.5"]
    data = as_json(filled, "versions", "iris-knn")
    assert [v["version"] for v in data] == [1, 2, 3] and set(data[0]) == VERSION_KEYS


def test_show(filled: Path) -> None:
    result = run(filled, "show", "iris-knn@production")
    assert result.exit_code == 0
    assert "\tref\tiris-knn:2" in result.output and "params\tn_neighbors\t3" in result.output
    assert "environment\tscikit-learn\t" in result.output and "sha256:" in result.output
    data = as_json(filled, "show", "iris-knn:2")
    assert set(data) == VERSION_KEYS | {"ancestors"}
    assert data["aliases"] == ["production"] and data["params"]["n_neighbors"] == 3 and data["signed"] is False


def test_diff(filled: Path) -> None:
    result = run(filled, "diff", "iris-knn:1", "iris-knn:3", "--changed-only")
    rows = [line.split("\t") for line in result.output.splitlines()[1:]]
    assert all(row[0] == "*" for row in rows)
    assert ["*", "params", "n_neighbors", "1", "5"] in rows
    assert ["*", "tags", "team", "cv", "cv"] not in rows
    full = run(filled, "diff", "iris-knn:1", "iris-knn:3").output
    assert "\ttags\tteam\tcv\tcv" in full
    data = as_json(filled, "diff", "iris-knn:1", "iris-knn:3")
    expected = {"section": "params", "key": "n_neighbors", "left": 1, "right": 5, "in_left": True, "in_right": True}
    assert expected in data["differences"]
    assert all(d["left"] != d["right"] for d in data["differences"])


def test_history_table_json_and_plots(filled: Path, tmp_path: Path) -> None:
    result = run(filled, "history", "iris-knn", "accuracy")
    header, *rows = result.output.splitlines()
    assert header.split("\t")[:4] == ["version", "step", "metric", "value"]
    assert [row.split("\t")[:4] for row in rows] == [
        ["1", "", "accuracy", "0.99"],
        ["2", "", "accuracy", "0.97"],
        ["2", "7", "accuracy", "0.5"],
        ["3", "", "accuracy", "0.95"],
    ]
    data = as_json(filled, "history", "iris-knn")
    assert {p["key"] for p in data} == {"accuracy", "f1"}
    assert [(p["version"], p["key"], p["value"]) for p in data if p["step"] == 7] == [(2, "accuracy", 0.5)]
    for suffix, magic in ((".png", b"\x89PNG\r\n\x1a\n"), (".svg", b"<?xml")):
        figure = tmp_path / f"history{suffix}"
        result = run(filled, "history", "iris-knn", "--plot", str(figure))
        assert result.exit_code == 0, result.output
        assert figure.read_bytes().startswith(magic) and figure.stat().st_size > 5_000
    assert run(filled, "history", "iris-knn", "--plot", str(tmp_path / "x.gif")).exit_code == 2


def test_alias_commands(filled: Path) -> None:
    assert run(filled, "alias", "set", "iris-knn", "canary", "3").output.strip() == "iris-knn@canary → iris-knn:3"
    assert as_json(filled, "show", "iris-knn@canary")["version"] == 3
    assert run(filled, "alias", "rm", "iris-knn", "canary").exit_code == 0
    assert run(filled, "show", "iris-knn@canary").exit_code == 1
    assert run(filled, "alias", "set", "iris-knn", "canary", "0").exit_code == 2


def test_tag_command(filled: Path) -> None:
    result = run(filled, "tag", "iris-knn:1", "reviewed=yes", "note=a=b", "--rm", "team")
    assert result.exit_code == 0, result.output
    assert as_json(filled, "show", "iris-knn:1")["tags"] == {"reviewed": "yes", "note": "a=b"}
    assert run(filled, "tag", "iris-knn:1", "novalue").exit_code == 2


def test_delete_command(filled: Path) -> None:
    assert run(filled, "delete", "iris-knn").exit_code == 2  # names no version
    refused = run(filled, "delete", "iris-knn:1")  # not a terminal and no --yes
    assert refused.exit_code == 2 and "--yes" in refused.output
    assert run(filled, "delete", "iris-knn:1", "--yes").output.strip() == "deleted iris-knn:1"
    assert [v["version"] for v in as_json(filled, "versions", "iris-knn")] == [2, 3]
    assert run(filled, "delete", "iris-knn:1", "--yes").exit_code == 1


def test_register_and_fetch_commands(filled: Path, tmp_path: Path, knn, monkeypatch) -> None:
    import joblib

    artifact = tmp_path / "made-elsewhere.joblib"
    joblib.dump(knn, artifact)
    result = run(
        filled,
        "register",
        str(artifact),
        "--name",
        "external",
        "--metric",
        "auc=0.91",
        "--param",
        "depth=8",
        "--param",
        "kind=knn",
        "--tag",
        "team=ds",
        "--alias",
        "production",
    )
    assert result.exit_code == 0, result.output
    mv = as_json(filled, "show", "external@production")
    assert mv["checksum"] == "sha256:" + hashlib.sha256(artifact.read_bytes()).hexdigest()  # byte for byte
    assert mv["params"] == {"depth": 8, "kind": "knn"} and mv["metrics"] == {"auc": 0.91}
    assert "sklearn.neighbors._classification.KNeighborsClassifier" in mv["imports"]
    captured = as_json(filled, "register", str(artifact), "--name", "external")
    assert captured["params"]["n_neighbors"] == 3  # no --param: captured from the loaded model

    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"not a model")
    failed = run(filled, "register", str(junk), "--name", "junk")
    assert failed.exit_code == 2 and "could not load" in failed.output
    assert run(filled, "register", str(junk), "--name", "junk", "--no-check").exit_code == 0
    assert run(filled, "register", str(artifact), "--name", "x", "--metric", "auc=high").exit_code == 2

    out = tmp_path / "served.joblib"
    assert run(filled, "fetch", "external:1", "-o", str(out)).exit_code == 0
    assert out.read_bytes() == artifact.read_bytes()
    monkeypatch.chdir(tmp_path)
    assert run(filled, "fetch", "other").exit_code == 0
    assert (tmp_path / "other-1.pkl").exists()


def test_export_import_round_trip(filled: Path, tmp_path: Path, template_home: Path) -> None:
    import shutil

    target = tmp_path / "target"
    target.mkdir()
    shutil.copyfile(template_home / "catalog.db", target / "catalog.db")
    bundle = tmp_path / "bundle.tar"
    result = run(filled, "export", "iris-knn:2", "iris-knn@production", "other", "-o", str(bundle))
    assert result.exit_code == 0 and "2 versions" in result.output  # the same version named twice
    with Registry(target) as reg:
        reg.register("iris-knn", {"already": "here"}, format="pickle")
    assert run(target, "import", str(bundle)).exit_code == 3  # unsigned: refused unless accepted
    imported = as_json(target, "import", str(bundle), "--allow-unsigned")
    assert imported == [
        {"source": "iris-knn:2", "target": "iris-knn:2", "created": True, "signer": None, "verified": False},
        {"source": "other:1", "target": "other:1", "created": True, "signer": None, "verified": False},
    ]
    again = as_json(target, "import", str(bundle), "--allow-unsigned")
    assert [r["created"] for r in again] == [False, False] and [r["target"] for r in again] == ["iris-knn:2", "other:1"]
    with Registry(filled) as source, Registry(target) as copy:
        original, moved = source.get("iris-knn:2"), copy.get("iris-knn:2")
        assert (moved.checksum, moved.params, moved.description) == (
            original.checksum,
            original.params,
            original.description,
        )
        assert moved.tags == {**original.tags, "modelshelf.imported-from": moved.tags["modelshelf.imported-from"]}
        assert [(p.key, p.value, p.step, p.timestamp) for p in copy.metrics_history("iris-knn") if p.version == 2] == [
            (p.key, p.value, p.step, p.timestamp) for p in source.metrics_history("iris-knn") if p.version == 2
        ]
        assert moved.metrics == original.metrics and moved.aliases == ()
        assert copy.load("iris-knn:2").n_neighbors == 3 and copy.verify().ok


def test_a_tampered_bundle_is_refused_whole(filled: Path, tmp_path: Path) -> None:
    bundle, tampered = tmp_path / "b.tar", tmp_path / "t.tar"
    assert run(filled, "export", "other", "iris-knn:1", "-o", str(bundle)).exit_code == 0
    with tarfile.open(bundle) as source, tarfile.open(tampered, "w") as out:
        for member in source.getmembers():
            data = bytearray(source.extractfile(member).read())
            if member.name.startswith("blobs/") and data[:1] != b"{":
                data[len(data) // 2] ^= 1
            out.addfile(member, __import__("io").BytesIO(bytes(data)))
    target = tmp_path / "target"
    result = run(target, "import", str(tampered), "--allow-unsigned")  # accepted unsigned, still hashed
    assert result.exit_code == 3 and "altered" in result.output
    with Registry(target) as reg:
        assert reg.models() == []  # not even the intact version was recorded
    assert run(target, "import", str(tmp_path / "missing.tar")).exit_code == 2


def test_exit_codes(filled: Path) -> None:
    assert run(filled, "show", "nope").exit_code == 1
    assert run(filled, "show", "iris-knn:99").exit_code == 1
    assert run(filled, "show", "../x").exit_code == 2
    assert run(filled, "versions").exit_code == 2
    with Registry(filled) as reg:
        path = reg._store.path_of(reg.get("other").digest)
    path.chmod(0o644)
    path.write_bytes(b"x" * path.stat().st_size)
    assert run(filled, "fetch", "other", "-o", str(filled / "out.pkl")).exit_code == 3
    assert not (filled / "out.pkl").exists()


def _commands(group: click.Group, prefix: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    found = []
    for name, command in group.commands.items():
        found.append((*prefix, name))
        if isinstance(command, click.Group):
            found.extend(_commands(command, (*prefix, name)))
    return found


@pytest.mark.parametrize("path", [(), *_commands(cli)], ids=" ".join)
def test_every_command_has_help_with_an_example(path: tuple[str, ...]) -> None:
    result = run_cli(None, *path, "--help")
    assert result.exit_code == 0 and "Example" in result.output, path


def test_every_command_is_in_the_readme() -> None:
    readme = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    invocations = [f"{line} " for line in readme.splitlines() if line.startswith("modelshelf ")]
    for path in _commands(cli):
        words = " ".join(path)
        assert any(f" {words} " in line for line in invocations) or f"`{words}" in readme, path


def test_import_is_all_or_nothing_and_handles_shared_bytes(tmp_path: Path) -> None:
    from registry import RegistryError

    with Registry(tmp_path / "src") as src:
        src.register("a", {"same": 1}, format="pickle", metrics={"m": 1.0})
        src.register("b", {"same": 1}, format="pickle")  # the same bytes as a:1
        src.export_bundle(["a:1", "b:1"], tmp_path / "ok.tar")
    with Registry(tmp_path / "dst") as dst:
        assert [r.target for r in dst.import_bundle(tmp_path / "ok.tar", allow_unsigned=True)] == ["a:1", "b:1"]
        assert dst.load("b") == {"same": 1} and dst.verify().ok

    with tarfile.open(tmp_path / "ok.tar") as source, tarfile.open(tmp_path / "bad.tar", "w") as out:
        for member in source.getmembers():
            data = source.extractfile(member).read()
            if member.name == "manifest.json":
                manifest = json.loads(data)
                manifest["versions"][1]["history"] = [
                    {"key": "m", "value": "NaN", "step": None, "timestamp": "2026-01-01T00:00:00+00:00"}
                ]
                data = json.dumps(manifest).encode()
                member.size = len(data)
            out.addfile(member, __import__("io").BytesIO(data))
    with Registry(tmp_path / "dst2") as dst:
        with pytest.raises(RegistryError, match="malformed.*nothing was imported"):
            dst.import_bundle(tmp_path / "bad.tar", allow_unsigned=True)
        assert dst.models() == []
