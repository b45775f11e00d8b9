"""Searching versions through a real SQLite catalog: filters, ordering, best, and bad queries."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry import InvalidQuery, ModelNotFound, Registry, VersionNotFound
from tests.prebuilt import build_registry, copy_registry


def refs(found) -> list[str]:
    return [mv.ref for mv in found]


def _fill(reg: Registry) -> None:
    """Two models with metrics, typed params and tags; one version deleted."""
    rows = [
        ("knn", {"k": 1, "weights": "uniform", "scaled": True}, {"accuracy": 0.91, "f1": 0.90}, {"team": "cv"}),
        ("knn", {"k": 3, "weights": "distance", "scaled": False}, {"accuracy": 0.95, "f1": 0.93}, {"team": "cv"}),
        ("knn", {"k": "3", "weights": None, "scaled": True}, {"accuracy": 0.97}, {"team": "nlp"}),
        ("knn", {"k": 9, "weights": "Uniform"}, {"accuracy": 0.80, "f1": 0.75}, {}),
        ("tree", {"max_depth": 4, "layers": [8, 4]}, {"accuracy": 0.93}, {"team": "cv", "stage": "beta"}),
        ("tree", {"max_depth": 12}, {"accuracy": 0.99, "f1": 0.98}, {"team": "cv"}),
    ]
    for name, params, metrics, tags in rows:
        reg.register(name, [name], format="pickle", params=params, metrics=metrics, tags=tags)
    reg.register("knn", ["deleted"], format="pickle", params={"k": 3}, metrics={"accuracy": 1.0}, tags={"team": "cv"})
    reg.delete_version("knn", 5)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory, template_home: Path) -> Path:
    return build_registry(tmp_path_factory, template_home, "search", _fill)


@pytest.fixture
def filled(home: Path, built: Path) -> Iterator[Registry]:
    """A copy of :func:`_fill`'s registry, this test's own."""
    with Registry(copy_registry(built, home)) as reg:
        yield reg


def test_metrics_params_and_tags_combine(filled: Registry) -> None:
    found = filled.search(where="metrics.accuracy > 0.9 and params.k = 3 and tags.team = 'cv'")
    assert refs(found) == ["knn:2"]
    assert found[0].params["weights"] == "distance" and found[0].metrics == {"accuracy": 0.95, "f1": 0.93}


def test_params_compare_by_their_stored_json_type(filled: Registry) -> None:
    assert refs(filled.search(where="params.k = 3")) == ["knn:2"]  # the number, not the string '3'
    assert refs(filled.search(where="params.k = '3'")) == ["knn:3"]
    assert refs(filled.search(where="params.k >= 3")) == ["knn:2", "knn:4"]
    assert refs(filled.search(where="params.scaled = true")) == ["knn:1", "knn:3"]
    assert refs(filled.search(where="params.scaled = false")) == ["knn:2"]
    assert refs(filled.search(where="params.k in (1, '3')")) == ["knn:1", "knn:3"]
    assert refs(filled.search(where="params.max_depth <= 8")) == ["tree:1"]


def test_missing_keys_and_nulls(filled: Registry) -> None:
    assert refs(filled.search("knn", where="metrics.f1 is null")) == ["knn:3"]
    assert refs(filled.search("knn", where="params.weights is null")) == ["knn:3"]  # JSON null counts as absent
    assert refs(filled.search("knn", where="tags.team is null")) == ["knn:4"]
    assert refs(filled.search(where="params.layers is not null")) == ["tree:1"]
    # != means "has it, and it differs": versions without the key are not "different"
    assert refs(filled.search("knn", where="tags.team != 'cv'")) == ["knn:3"]
    assert refs(filled.search("knn", where="not tags.team = 'cv'")) == ["knn:3", "knn:4"]
    assert refs(filled.search("knn", where="params.k not in (3)")) == ["knn:1", "knn:3", "knn:4"]


def test_or_parentheses_and_like(filled: Registry) -> None:
    found = filled.search(where="(name = 'tree' or params.k = 1) and metrics.accuracy < 0.95")
    assert refs(found) == ["knn:1", "tree:1"]
    assert refs(filled.search(where="params.weights like 'uni%'")) == ["knn:1", "knn:4"]  # case-insensitive
    assert refs(filled.search(where="name like 'tr__'")) == ["tree:1", "tree:2"]
    assert refs(filled.search(where="tags.stage like '%et%' or format != 'pickle'")) == ["tree:1"]


def test_columns_version_created_at_and_format(filled: Registry) -> None:
    assert refs(filled.search("knn", where="version in (2, 4, 5)")) == ["knn:2", "knn:4"]  # 5 is deleted
    future = (datetime.now(UTC) + timedelta(days=1)).strftime("%Y-%m-%d")
    assert filled.search(where=f"created_at >= '{future}'") == []
    assert len(filled.search(where=f"created_at < '{future}' and format = 'pickle'")) == 6


def test_ordering_limit_and_missing_values_last(filled: Registry) -> None:
    found = filled.search(order_by="metrics.f1 desc")
    assert refs(found) == ["tree:2", "knn:2", "knn:1", "knn:4", "knn:3", "tree:1"]  # no f1: last, by name
    found = filled.search(order_by="metrics.f1 asc", limit=2)
    assert refs(found) == ["knn:4", "knn:1"]
    assert refs(filled.search(order_by="name desc, version desc", limit=3)) == ["tree:2", "tree:1", "knn:4"]
    assert refs(filled.search("knn", order_by="params.k")) == ["knn:1", "knn:2", "knn:4", "knn:3"]  # numbers first


def test_results_carry_everything_a_get_does(filled: Registry) -> None:
    filled.set_alias("tree", "production", 2)
    (found,) = filled.search(where="metrics.accuracy >= 0.99")
    assert found == filled.get("tree@production")
    assert found.aliases == ("production",) and found.tags == {"team": "cv"}


def test_best_picks_the_highest_or_lowest_and_skips_versions_without_the_metric(filled: Registry) -> None:
    assert filled.best("knn", "accuracy").ref == "knn:3"  # the deleted knn:5 had 1.0
    assert filled.best("knn", "accuracy", mode="min").ref == "knn:4"
    assert filled.best("knn", "f1", where="params.k <= 3").ref == "knn:2"
    assert filled.best("knn", "f1", mode="min", where="params.k <= 3").ref == "knn:1"
    filled.register("knn", ["tie"], format="pickle", metrics={"accuracy": 0.97})
    assert filled.best("knn", "accuracy").ref == "knn:6"  # a tie goes to the newest version
    with pytest.raises(VersionNotFound, match="no live version matching 'params.k > 100' has the metric 'f1'"):
        filled.best("knn", "f1", where="params.k > 100")
    with pytest.raises(VersionNotFound, match="has the metric 'recall'"):
        filled.best("knn", "recall")
    with pytest.raises(ValueError, match="mode must be 'max' or 'min'"):
        filled.best("knn", "accuracy", mode="maximum")
    with pytest.raises(ModelNotFound):
        filled.best("nothing", "accuracy")


def test_odd_metric_keys_can_be_searched_with_backquotes(reg: Registry) -> None:
    reg.register("m", [1], format="pickle", metrics={"val/f1 score": 0.5, "loss": 2.0})
    reg.register("m", [2], format="pickle", metrics={"val/f1 score": 0.7, "loss": 1.0})
    assert refs(reg.search(where="metrics.`val/f1 score` > 0.6")) == ["m:2"]
    assert reg.best("m", "val/f1 score").ref == "m:2"
    assert reg.best("m", "loss", mode="min").ref == "m:2"


def test_values_are_bound_never_spliced_into_sql(filled: Registry, home: Path) -> None:
    hostile = "cv'; DROP TABLE versions; --"
    assert filled.search(where=f"tags.team = '{hostile.replace(chr(39), chr(39) * 2)}'") == []
    assert filled.search(where="tags.`team'; DROP TABLE tags; --` = 'x'") == []
    with sqlite3.connect(home / "catalog.db") as db:
        tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type = 'table'")}
    assert {"versions", "tags"} <= tables
    assert len(filled.search()) == 6


@pytest.mark.parametrize(
    ("where", "position", "fragment"),
    [
        ("metrics.accuracy >", 18, "at the end"),
        ("metrics.accuracy > 0.9 and", 26, "at the end"),
        ("(metrics.accuracy > 0.9", 23, ")"),
        ("metric.accuracy > 0.9", 0, "metrics.KEY"),
        ("metrics.accuracy like 'a%'", 17, "like"),
        ("tags.team = 3", 12, "tags"),
    ],
)
def test_a_malformed_filter_names_the_position(filled: Registry, where: str, position: int, fragment: str) -> None:
    with pytest.raises(InvalidQuery) as caught:
        filled.search(where=where)
    assert caught.value.position == position, str(caught.value)
    assert fragment in str(caught.value) and caught.value.query == where


def test_other_bad_arguments(filled: Registry) -> None:
    with pytest.raises(InvalidQuery):
        filled.search(order_by="metrics.accuracy sideways")
    with pytest.raises(InvalidQuery, match="pinned reference") as caught:
        filled.search(where="lineage.parent = 'not a ref'")
    assert caught.value.position == 17
    with pytest.raises(InvalidQuery, match="not ordered") as caught:
        filled.search(where="lineage.parent > 'knn:1'")
    assert caught.value.position == 15
    with pytest.raises(ValueError, match="limit"):
        filled.search(limit=0)
    with pytest.raises(ValueError, match="limit"):
        filled.search(limit=2**63)
    with pytest.raises(InvalidQuery, match="at most 2147483647"):
        filled.search(where="version = 9223372036854775807")
    with pytest.raises(InvalidQuery, match="years 1 to 9999"):
        filled.search(where="created_at > '0001-01-01T00:00:00+01:00'")
    with pytest.raises(InvalidQuery, match="NUL"):
        filled.search(where="tags.team = 'a\x00b'")
    with pytest.raises(InvalidQuery):
        filled.search(where=3)  # type: ignore[arg-type]
    with pytest.raises(InvalidQuery, match="pinned reference"):
        filled.search(where="lineage.parent = 'knn:9999999999'")  # beyond any version number
    with pytest.raises(InvalidQuery, match="lone") as caught:
        filled.search(where="tags.team like 'cv\\'")
    assert caught.value.position == 15
    with pytest.raises(ModelNotFound):
        filled.search("nothing", where="metrics.accuracy > 0")
