"""Aliases, metric history and deletion."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import AliasNotFound, ModelNotFound, Registry, VersionNotFound
from tests.conftest import blob_files


@pytest.fixture
def three(reg: Registry) -> Registry:
    for i in range(1, 4):
        reg.register("m", {"i": i}, metrics={"accuracy": round(0.8 + i / 100, 2)}, format="pickle")
    return reg


def test_set_alias_points_and_moves(three: Registry) -> None:
    mv = three.set_alias("m", "production", 1)
    assert mv.version == 1 and mv.aliases == ("production",)
    assert three.load("m@production") == {"i": 1}
    three.set_alias("m", "production", 3)
    assert three.load("m@production") == {"i": 3}
    assert three.get("m:1").aliases == ()
    assert three.get("m:3").aliases == ("production",)


def test_several_aliases_on_one_version_are_sorted(three: Registry) -> None:
    three.set_alias("m", "staging", 2)
    three.set_alias("m", "canary", 2)
    assert three.get("m:2").aliases == ("canary", "staging")
    assert [mv.aliases for mv in three.versions("m")] == [(), ("canary", "staging"), ()]


def test_aliases_are_per_model(three: Registry) -> None:
    three.register("other", {"o": 1}, format="pickle")
    three.set_alias("m", "production", 2)
    three.set_alias("other", "production", 1)
    assert three.load("m@production") == {"i": 2}
    assert three.load("other@production") == {"o": 1}


def test_set_alias_on_missing_things(three: Registry) -> None:
    with pytest.raises(VersionNotFound):
        three.set_alias("m", "production", 9)
    with pytest.raises(ModelNotFound):
        three.set_alias("nope", "production", 1)


def test_delete_alias(three: Registry) -> None:
    three.set_alias("m", "production", 2)
    assert three.delete_alias("m", "production") == 2  # the version it pointed at, read as it was removed
    with pytest.raises(AliasNotFound):
        three.get("m@production")
    with pytest.raises(AliasNotFound):
        three.delete_alias("m", "production")
    with pytest.raises(ModelNotFound):
        three.delete_alias("nope", "production")
    assert three.get("m:2").aliases == ()


def test_register_with_alias_moves_it(three: Registry) -> None:
    three.set_alias("m", "production", 1)
    mv = three.register("m", {"i": 4}, format="pickle", alias="production")
    assert mv.aliases == ("production",)
    assert three.get("m@production").version == 4
    assert three.get("m:1").aliases == ()


def test_log_metrics_appends_history_and_updates_latest(three: Registry) -> None:
    three.log_metrics("m", 2, {"accuracy": 0.5, "f1": 0.4}, step=1)
    three.log_metrics("m", 2, {"accuracy": 0.6}, step=2)
    assert three.get("m:2").metrics == {"accuracy": 0.6, "f1": 0.4}
    history = three.metrics_history("m", "accuracy")
    assert [(p.version, p.step, p.value) for p in history] == [
        (1, None, 0.81),
        (2, None, 0.82),
        (2, 1, 0.5),
        (2, 2, 0.6),
        (3, None, 0.83),
    ]
    assert all(p.key == "accuracy" and p.timestamp.utcoffset() is not None for p in history)
    assert {p.key for p in three.metrics_history("m")} == {"accuracy", "f1"}
    assert three.metrics_history("m", "missing") == []


def test_history_orders_by_step_not_by_logging_time(three: Registry) -> None:
    three.log_metrics("m", 1, {"loss": 3.0}, step=30)
    three.log_metrics("m", 1, {"loss": 1.0}, step=10)
    three.log_metrics("m", 1, {"loss": 2.0}, step=20)
    assert [p.step for p in three.metrics_history("m", "loss")] == [10, 20, 30]
    assert three.get("m:1").metrics["loss"] == 2.0  # the most recently logged value


def test_log_metrics_on_missing_versions(three: Registry) -> None:
    with pytest.raises(VersionNotFound):
        three.log_metrics("m", 7, {"a": 1.0})
    with pytest.raises(ModelNotFound):
        three.log_metrics("nope", 1, {"a": 1.0})
    with pytest.raises(ModelNotFound):
        three.metrics_history("nope")


def test_deleted_version_is_gone_and_its_number_never_reused(three: Registry) -> None:
    three.set_alias("m", "production", 3)
    three.delete_version("m", 3)
    with pytest.raises(VersionNotFound, match="deleted"):
        three.get("m:3")
    with pytest.raises(AliasNotFound):
        three.get("m@production")
    assert three.latest("m").version == 2
    assert [mv.version for mv in three.versions("m")] == [1, 2]
    assert [p.version for p in three.metrics_history("m")] == [1, 2]
    assert three.register("m", {"i": 4}, format="pickle").version == 4
    with pytest.raises(VersionNotFound):
        three.delete_version("m", 3)


def test_deleting_every_version(three: Registry) -> None:
    for version in (1, 2, 3):
        three.delete_version("m", version)
    assert three.models() == []
    with pytest.raises(VersionNotFound, match="every version was deleted"):
        three.latest("m")
    assert three.register("m", {"i": 9}, format="pickle").version == 4


def test_blob_is_freed_only_when_nothing_references_it(reg: Registry, home: Path) -> None:
    reg.register("a", {"same": True}, format="pickle")
    reg.register("b", {"same": True}, format="pickle")
    reg.register("a", {"other": True}, format="pickle")
    assert len(blob_files(home)) == 2
    reg.delete_version("a", 1)
    assert len(blob_files(home)) == 2  # b:1 still uses the shared bytes
    assert reg.load("b:1") == {"same": True}
    reg.delete_version("b", 1)
    assert len(blob_files(home)) == 1
    assert reg.load("a:2") == {"other": True}


def test_bytes_registered_again_after_being_freed_are_stored_again(reg: Registry, home: Path) -> None:
    reg.register("a", {"x": 1}, format="pickle")
    reg.delete_version("a", 1)
    assert blob_files(home) == []
    reg.register("a", {"x": 1}, format="pickle")
    assert reg.load("a") == {"x": 1}
    assert len(blob_files(home)) == 1
