"""Names, aliases and references: every invalid form is refused and nothing is written."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import InvalidName, Registry
from registry.errors import InvalidReference
from registry.names import parse_ref, resolve_ref
from tests.conftest import blob_files, temp_files

INVALID_MODEL_NAMES = [
    "",
    "../x",
    "..",
    ".hidden",
    "-flag",
    "a/b",
    "a\\b",
    "a b",
    "iris\n",
    "iris\x00",
    "tab\there",
    "x" * 129,
    "x" * 500,
    "x" * 10_000,
    "ιris",  # Greek iota, a look-alike of "i"
    "irіs",  # Cyrillic i
    "café",
    "a:b",
    "a@b",
    "a%2fb",
    None,
    3,
    b"iris",
]

VALID_MODEL_NAMES = ["a", "iris-knn", "churn_v2.1", "3d-unet", "A" * 128, "x.y_z-1"]

INVALID_ALIASES = ["", "Prod", "2nd", "a.b", "a b", "a/b", "prod\n", "prod\x00", "x" * 65, "ρrod", "latest", 1]


@pytest.mark.parametrize("name", VALID_MODEL_NAMES)
def test_valid_model_names_are_accepted(reg: Registry, name: str) -> None:
    assert reg.register(name, [1, 2, 3], format="pickle").name == name
    assert reg.load(name) == [1, 2, 3]


@pytest.mark.parametrize("name", INVALID_MODEL_NAMES, ids=repr)
def test_invalid_model_names_are_refused_and_nothing_is_written(reg: Registry, home: Path, name) -> None:
    with pytest.raises(InvalidName, match="invalid model name"):
        reg.register(name, [1, 2, 3])
    assert reg.models() == []
    assert blob_files(home) == [] and temp_files(home) == []


@pytest.mark.parametrize("name", [n for n in INVALID_MODEL_NAMES if n != "a@b"], ids=repr)  # a@b is a valid reference
def test_invalid_model_names_are_refused_by_lookups(reg: Registry, name) -> None:
    with pytest.raises(InvalidName):
        reg.get(name)
    with pytest.raises(InvalidName):
        reg.versions(name)


@pytest.mark.parametrize("alias", INVALID_ALIASES, ids=repr)
def test_invalid_aliases_are_refused_and_nothing_is_written(reg: Registry, home: Path, alias) -> None:
    with pytest.raises(InvalidName):
        reg.register("m", [1], alias=alias, format="pickle")
    assert reg.models() == [] and blob_files(home) == []
    reg.register("m", [1], format="pickle")
    with pytest.raises(InvalidName):
        reg.set_alias("m", alias, 1)
    with pytest.raises(InvalidName):
        reg.set_alias("m", None, 1)
    assert reg.get("m").aliases == ()


def test_latest_is_reserved_with_a_reason(reg: Registry) -> None:
    reg.register("m", [1], format="pickle")
    with pytest.raises(InvalidName, match="reserved"):
        reg.set_alias("m", "latest", 1)


@pytest.mark.parametrize(
    "text", ["x:-1", "x:0", "x:1.5", "x:", "x@", "x:1@a", "x@a:1", "x:01", "x: 1", "x:1\n", ":1", "@a", "x::1", "x@@a"]
)
def test_malformed_references_are_refused(reg: Registry, text: str) -> None:
    with pytest.raises(InvalidReference):
        reg.get(text)
    with pytest.raises(InvalidName):  # a malformed reference is an invalid name too
        reg.load(text)


def test_reference_forms_parse() -> None:
    assert parse_ref("iris-knn") == parse_ref("iris-knn:latest") == parse_ref("iris-knn@latest")
    assert parse_ref("iris-knn:12").version == 12
    assert parse_ref("iris-knn@production").alias == "production"
    assert str(parse_ref("iris-knn:12")) == "iris-knn:12"
    assert str(parse_ref("iris-knn@production")) == "iris-knn@production"


@pytest.mark.parametrize(
    ("ref", "kwargs"),
    [
        ("m:1", {"version": 2}),
        ("m@prod", {"version": 2}),
        ("m:1", {"alias": "prod"}),
        ("m", {"version": 1, "alias": "prod"}),
        ("m", {"version": 0}),
        ("m", {"version": -3}),
        ("m", {"version": True}),
        ("m", {"version": 1.0}),
        ("m", {"version": "2"}),
    ],
)
def test_conflicting_or_bad_keywords_are_refused(ref: str, kwargs: dict) -> None:
    with pytest.raises(InvalidReference):
        resolve_ref(ref, **kwargs)


@pytest.mark.parametrize("version", [0, -1, True, 1.5, "1", None])
def test_version_arguments_are_checked_by_every_writer(reg: Registry, version) -> None:
    reg.register("m", [1], format="pickle")
    with pytest.raises(InvalidName):
        reg.set_alias("m", "prod", version)
    with pytest.raises(InvalidName):
        reg.log_metrics("m", version, {"a": 1.0})
    with pytest.raises(InvalidName):
        reg.delete_version("m", version)
    assert reg.get("m").aliases == () and reg.get("m").metrics == {}
