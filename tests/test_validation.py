"""Params, metrics, tags and descriptions: validated before anything is written."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from registry import Registry
from registry.validation import capture_params, validate_metrics, validate_params
from tests.conftest import blob_files, temp_files
from tests.lanes import examples


def assert_nothing_written(reg: Registry, home: Path) -> None:
    assert reg.models() == []
    assert blob_files(home) == [] and temp_files(home) == []


@pytest.mark.parametrize(
    "value", [math.nan, math.inf, -math.inf, np.nan, np.float32("inf"), True, False, np.bool_(True), "0.9", None, [1.0]]
)
def test_metrics_must_be_finite_real_numbers(reg: Registry, home: Path, knn, value) -> None:
    with pytest.raises(ValueError, match="metric 'accuracy'"):
        reg.register("m", knn, metrics={"accuracy": value})
    assert_nothing_written(reg, home)


def test_numpy_and_integer_metrics_are_stored_as_floats(reg: Registry, knn) -> None:
    mv = reg.register("m", knn, metrics={"a": np.float32(0.5), "b": np.int64(3), "c": 2})
    assert reg.get("m").metrics == mv.metrics == {"a": 0.5, "b": 3.0, "c": 2.0}


def test_log_metrics_validates_before_writing(reg: Registry, knn) -> None:
    reg.register("m", knn, metrics={"accuracy": 0.9})
    with pytest.raises(ValueError, match="metric 'bad'"):
        reg.log_metrics("m", 1, {"accuracy": 0.1, "bad": math.nan})
    with pytest.raises(ValueError, match="empty"):
        reg.log_metrics("m", 1, {})
    for step in (1.5, "3", True, 2**64):
        with pytest.raises(ValueError, match="step"):
            reg.log_metrics("m", 1, {"accuracy": 0.2}, step=step)
    assert [p.value for p in reg.metrics_history("m")] == [0.9]


def test_explicit_params_must_be_json(reg: Registry, home: Path, knn) -> None:
    with pytest.raises(ValueError, match="param 'seed'.*numpy.int64"):
        reg.register("m", knn, params={"alpha": 0.1, "seed": np.int64(3)})
    with pytest.raises(ValueError, match=r"param 'fn'"):
        reg.register("m", knn, params={"fn": print})
    with pytest.raises(ValueError, match=r"param 'x'"):
        reg.register("m", knn, params={"x": math.nan})
    with pytest.raises(ValueError, match=r"param 'd' has the key 1"):
        reg.register("m", knn, params={"d": {1: "a"}})
    with pytest.raises(ValueError, match="params must be a dict"):
        reg.register("m", knn, params=[("a", 1)])
    assert_nothing_written(reg, home)


def test_explicit_params_read_back_equal(reg: Registry, knn) -> None:
    params = {"k": 3, "lr": 0.01, "name": "knn", "flags": [True, None], "nested": {"a": [1, {"b": "c"}]}, "big": 2**62}
    reg.register("m", knn, params=params)
    assert reg.get("m").params == params


def test_tuples_in_params_come_back_as_lists(reg: Registry, knn) -> None:
    reg.register("m", knn, params={"layers": (64, 32)})
    assert reg.get("m").params == {"layers": [64, 32]}


def test_params_limits_are_clear(reg: Registry, home: Path, knn) -> None:
    deep: dict = {}
    node = deep
    for _ in range(100):
        node["x"] = {}
        node = node["x"]
    with pytest.raises(ValueError, match="nested deeper than"):
        reg.register("m", knn, params={"deep": deep})
    with pytest.raises(ValueError, match="limit"):
        reg.register("m", knn, params={"blob": "x" * (5 * 1024 * 1024)})
    assert_nothing_written(reg, home)
    many = {f"p{i}": i for i in range(10_000)}
    assert reg.register("m", knn, params=many).params == many
    assert reg.get("m").params == many


def test_captured_params_of_a_pipeline_are_json_safe(pipeline) -> None:
    from sklearn.impute import SimpleImputer
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder

    params = capture_params(make_pipeline(SimpleImputer(), OneHotEncoder(categories=[np.array([1, 2])]), pipeline))
    assert params["simpleimputer__missing_values"] == "nan"  # np.nan has no JSON form
    assert params["onehotencoder__dtype"] == "numpy.float64"  # a type becomes its dotted name
    assert params["onehotencoder__categories"] == [[1, 2]]
    assert params["simpleimputer"] == "SimpleImputer()"  # nested estimators become their repr
    assert params["pipeline__logisticregression__C"] == 0.5
    assert validate_params(params) == params  # strictly JSON


def test_captured_params_are_stored(reg: Registry, pipeline) -> None:
    mv = reg.register("m", pipeline)
    assert mv.params["logisticregression__C"] == 0.5
    assert mv.params["logisticregression__max_iter"] == 300
    assert reg.get("m").params == mv.params


def test_objects_without_get_params_have_no_params(reg: Registry) -> None:
    assert reg.register("m", {"a": 1}, format="pickle").params == {}


def test_broken_get_params_is_reported(reg: Registry, home: Path) -> None:
    class Broken:
        def get_params(self, deep=True):
            raise RuntimeError("boom")

    with pytest.raises(ValueError, match="get_params.*boom.*params="):
        reg.register("m", Broken(), format="pickle")
    assert_nothing_written(reg, home)


@pytest.mark.parametrize(
    ("tags", "match"),
    [
        ({"n": 3}, "tag 'n'"),
        ({"n": None}, "tag 'n'"),
        ({"": "x"}, "tag key"),
        ({1: "x"}, "tag key 1"),
        ({"k": "x" * 5001}, "tag 'k'"),
        ({"k": "a\x00b"}, "tag 'k'"),
        ("team=cv", "tags must be a dict"),
    ],
)
def test_bad_tags_are_refused(reg: Registry, home: Path, knn, tags, match: str) -> None:
    with pytest.raises(ValueError, match=match):
        reg.register("m", knn, tags=tags)
    assert_nothing_written(reg, home)


def test_hostile_tag_text_is_stored_verbatim(reg: Registry, knn) -> None:
    tags = {"q": 'it\'s "quoted"', "sql": "x'; DROP TABLE versions; --", "nl": "line1\nline2", "uni": "ε → ∞"}
    reg.register("m", knn, tags=tags)
    assert reg.get("m").tags == tags
    assert reg.models() == ["m"]


@pytest.mark.parametrize(("description", "match"), [(3, "description"), ("x" * 70_000, "description")])
def test_bad_descriptions_are_refused(reg: Registry, home: Path, knn, description, match) -> None:
    with pytest.raises(ValueError, match=match):
        reg.register("m", knn, description=description)
    assert_nothing_written(reg, home)


def test_unknown_format_is_refused(reg: Registry, home: Path, knn) -> None:
    with pytest.raises(ValueError, match="unknown format 'onnx'.*joblib, pickle"):
        reg.register("m", knn, format="onnx")
    assert_nothing_written(reg, home)


# Any Unicode text but NUL and lone surrogates, which no catalog database can store (refused below).
STORABLE = st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00")

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(-(2**53), 2**53)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(STORABLE, max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(STORABLE, max_size=8), children, max_size=4)
    ),
    max_leaves=12,
)


@settings(max_examples=examples(60), deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    params=st.dictionaries(st.text(STORABLE, min_size=1, max_size=30), json_values, max_size=6),
    metrics=st.dictionaries(
        st.text(STORABLE, min_size=1, max_size=30),
        st.floats(allow_nan=False, allow_infinity=False),
        max_size=4,
    ),
)
def test_params_and_metrics_round_trip_through_the_catalog(reg: Registry, params, metrics) -> None:
    mv = reg.register("prop", b"artifact", params=params, metrics=metrics, format="pickle")
    back = reg.get(mv.ref)
    assert back.params == params
    assert back.metrics == validate_metrics(metrics)


@pytest.mark.parametrize("where", ["tag key", "tag value", "metric key", "param value", "param key", "description"])
def test_text_no_database_can_store_is_refused_before_writing(reg: Registry, home: Path, knn, where: str) -> None:
    bad = "ok\ud800"  # a lone surrogate: a valid Python str, invalid UTF-8
    kwargs = {
        "tag key": {"tags": {bad: "x"}},
        "tag value": {"tags": {"k": bad}},
        "metric key": {"metrics": {bad: 1.0}},
        "param value": {"params": {"p": [bad]}},
        "param key": {"params": {"p": {bad: 1}}},
        "description": {"description": bad},
    }[where]
    with pytest.raises(ValueError, match="valid Unicode"):
        reg.register("m", knn, **kwargs)
    assert_nothing_written(reg, home)


@pytest.mark.parametrize("value", [10**400, -(10**400)])
def test_metrics_too_large_for_a_float_are_refused(reg: Registry, knn, value: int) -> None:
    with pytest.raises(ValueError, match="finite"):
        reg.register("m", knn, metrics={"big": value})


def test_param_integers_beyond_64_bits_are_refused(reg: Registry, knn) -> None:
    with pytest.raises(ValueError, match="param 'n'.*64 bits"):
        reg.register("m", knn, params={"n": 10**5000})
