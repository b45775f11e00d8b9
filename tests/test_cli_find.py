"""The search, best and log commands, and lineage in show, against a real registry directory."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from registry.cli import EXIT_NOT_FOUND, EXIT_USAGE
from tests.cli_helpers import run_cli as run
from tests.prebuilt import build_registry, copy_registry


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, template_home: Path, iris) -> Path:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = iris

    def fill(reg: Registry) -> None:
        for k in (1, 3, 5):
            model = KNeighborsClassifier(n_neighbors=k).fit(X, y)
            reg.register("iris-knn", model, metrics={"accuracy": 1 - k / 100}, tags={"team": "cv"}, data=(X, y))
        reg.set_alias("iris-knn", "production", 2)
        reg.set_alias("iris-knn", "production", 3)
        reg.register("child", [1], format="pickle", metrics={"accuracy": 0.5}, parent="iris-knn@production")

    return build_registry(tmp_path_factory, template_home, "cli-find", fill)


@pytest.fixture
def filled(home: Path, built: Path) -> Path:
    """iris-knn:1-3 (3 @production, 2 before it), child:1 whose parent is iris-knn:3, in this test's own copy."""
    return copy_registry(built, home)


def as_json(home: Path, *args: str) -> Any:
    result = run(home, *args, "--json")
    assert result.exit_code == 0, result.output
    return json.loads(result.output)


def test_search_prints_matching_versions_with_the_ordering_metric(filled: Path) -> None:
    result = run(filled, "search", "params.n_neighbors >= 3", "--order-by", "metrics.accuracy desc")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split("\t") == ["ref", "created (UTC)", "format", "size", "aliases", "accuracy"]
    assert [row.split("\t")[0] for row in rows] == ["iris-knn:2", "iris-knn:3"]
    assert rows[1].split("\t")[4:] == ["production", "0.95"]
    data = as_json(filled, "search", "metrics.accuracy < 0.99", "--name", "iris-knn", "--limit", "1")
    assert [v["ref"] for v in data] == ["iris-knn:2"] and data[0]["lineage"]["data_shape"] == [150, 4]
    assert [v["ref"] for v in as_json(filled, "search")] == ["child:1", "iris-knn:1", "iris-knn:2", "iris-knn:3"]


def test_a_malformed_filter_is_a_usage_error_naming_the_position(filled: Path) -> None:
    result = run(filled, "search", "metrics.accuracy >> 3")
    assert result.exit_code == EXIT_USAGE
    assert "position 18" in result.output and "Traceback" not in result.output
    assert run(filled, "search", "tags.team = 'cv'", "--name", "nothing").exit_code == EXIT_NOT_FOUND


def test_best(filled: Path) -> None:
    result = run(filled, "best", "iris-knn", "accuracy")
    assert result.exit_code == 0 and result.output == "iris-knn:1\taccuracy=0.99\n"
    assert run(filled, "best", "iris-knn", "accuracy", "--min").output.startswith("iris-knn:3\t")
    data = as_json(filled, "best", "iris-knn", "accuracy", "--where", "params.n_neighbors > 1")
    assert data["ref"] == "iris-knn:2" and data["input_signature"]["n_features"] == 4
    result = run(filled, "best", "iris-knn", "recall")
    assert result.exit_code == EXIT_NOT_FOUND and "recall" in result.output


def test_log_shows_the_trail_and_alias_periods(filled: Path) -> None:
    result = run(filled, "log", "iris-knn")
    assert result.exit_code == 0, result.output
    header, *rows = result.output.splitlines()
    assert header.split("\t") == ["time (UTC)", "action", "version", "alias", "change", "by"]
    assert [row.split("\t")[1] for row in rows] == ["register"] * 3 + ["alias.set", "alias.move"]
    assert rows[-1].split("\t")[2:5] == ["3", "production", "2 → 3"]
    events = as_json(filled, "log", "iris-knn", "--limit", "1")
    assert [(e["action"], e["old"], e["new"]) for e in events] == [("alias.move", 2, 3)]
    assert as_json(filled, "log", "iris-knn", "--since", "2999-01-01") == []
    periods = as_json(filled, "log", "iris-knn", "--alias", "production")
    assert [(p["version"], p["until"] is None) for p in periods] == [(2, False), (3, True)]
    assert periods[0]["until"] == periods[1]["since"]
    assert run(filled, "log", "iris-knn", "--since", "yesterday").exit_code == EXIT_USAGE
    refused = run(filled, "log", "iris-knn", "--alias", "production", "--limit", "1")
    assert refused.exit_code == EXIT_USAGE and "--alias" in refused.output


def test_show_lists_lineage_ancestors_and_the_input_signature(filled: Path) -> None:
    result = run(filled, "show", "child")
    assert result.exit_code == 0
    assert "lineage\tparent\tiris-knn:3" in result.output and "lineage\tancestors\tiris-knn:3" in result.output
    shown = run(filled, "show", "iris-knn:1").output
    assert "input\tn_features\t4" in shown and "input\tclasses\t[0, 1, 2]" in shown
    assert "lineage\tdata_shape\t[150, 4]" in shown
    data = as_json(filled, "show", "child")
    assert data["ancestors"] == ["iris-knn:3"] and data["lineage"]["parent"] == "iris-knn:3"


def test_register_file_records_parent_and_signature(filled: Path, tmp_path: Path) -> None:
    assert run(filled, "fetch", "iris-knn:1", "-o", str(tmp_path / "m.joblib")).exit_code == 0
    data = as_json(filled, "register", str(tmp_path / "m.joblib"), "--name", "copy", "--parent", "iris-knn@production")
    assert data["lineage"]["parent"] == "iris-knn:3" and data["input_signature"]["n_features"] == 4
    result = run(filled, "register", str(tmp_path / "m.joblib"), "--name", "copy", "--parent", "iris-knn:9")
    assert result.exit_code == EXIT_NOT_FOUND and "version 9" in result.output
    assert [v["version"] for v in as_json(filled, "versions", "copy")] == [1]
