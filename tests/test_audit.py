"""The audit trail: every change appends an event in its own transaction; alias history comes from it."""

from __future__ import annotations

import getpass
import socket
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from registry import AliasNotFound, ModelNotFound, Registry, VersionNotFound
from registry.catalog import NewVersion


def trail(reg: Registry, name: str | None = None) -> list[tuple]:
    return [(e.action, e.model, e.version, e.alias, e.old, e.new) for e in reg.events(name)]


def test_every_kind_of_change_is_recorded_with_old_and_new_values(reg: Registry) -> None:
    first = reg.register("m", [1], format="pickle", alias="staging")
    reg.register("m", [2], format="pickle")
    reg.set_alias("m", "production", 1)
    reg.set_alias("m", "production", 2)
    reg.set_alias("m", "production", 2)  # no change, no event
    reg.set_tags("m", 2, {"owner": "ana", "stage": "beta"})
    reg.set_tags("m", 2, {"owner": "bo"}, remove=["stage", "absent"])
    reg.log_metrics("m", 2, {"accuracy": 0.9}, step=3)
    reg.delete_alias("m", "staging")
    reg.delete_version("m", 2)
    assert trail(reg, "m") == [
        ("register", "m", 1, None, None, {"checksum": first.checksum, "format": "pickle"}),
        ("alias.set", "m", 1, "staging", None, 1),
        ("register", "m", 2, None, None, {"checksum": reg.events("m")[2].new["checksum"], "format": "pickle"}),
        ("alias.set", "m", 1, "production", None, 1),
        ("alias.move", "m", 2, "production", 1, 2),
        ("tags.set", "m", 2, None, {"owner": None, "stage": None}, {"owner": "ana", "stage": "beta"}),
        ("tags.set", "m", 2, None, {"owner": "ana", "stage": "beta"}, {"owner": "bo", "stage": None}),
        ("metrics.log", "m", 2, None, None, {"metrics": {"accuracy": 0.9}, "step": 3}),
        ("alias.delete", "m", 1, "staging", 1, None),
        ("alias.delete", "m", 2, "production", 2, None),  # deleting a version drops its aliases
        ("version.delete", "m", 2, None, {"checksum": reg.events("m")[2].new["checksum"]}, None),
    ]


def test_events_say_who_and_when_in_utc(reg: Registry) -> None:
    before = datetime.now(UTC)
    reg.register("m", [1], format="pickle")
    (event,) = reg.events()
    assert event.user == getpass.getuser() and event.host == socket.gethostname()
    assert event.at.tzinfo is not None and before - timedelta(seconds=1) <= event.at <= datetime.now(UTC)


def test_a_change_that_fails_leaves_no_event(reg: Registry) -> None:
    reg.register("m", [1], format="pickle")
    with pytest.raises(VersionNotFound):
        reg.set_alias("m", "production", 7)
    with pytest.raises(AliasNotFound):
        reg.delete_alias("m", "production")
    with pytest.raises(VersionNotFound):
        reg.log_metrics("m", 9, {"accuracy": 1.0})
    with pytest.raises(VersionNotFound):
        reg.register("m", [2], format="pickle", parent="m:9")
    assert [e.action for e in reg.events()] == ["register"]


def test_a_transaction_that_rolls_back_takes_its_events_with_it(reg: Registry) -> None:
    """Two versions in one transaction whose second publish fails (an injected fault): no version, no event."""
    digest = "0" * 64

    def fail() -> None:
        raise OSError("the store went away")

    batch = [
        (NewVersion(name="m", digest=digest, size=1, format="pickle"), lambda: None),
        (NewVersion(name="m", digest=digest, size=1, format="pickle"), fail),
    ]
    with pytest.raises(OSError, match="went away"):
        reg._catalog.add_versions(batch)
    assert reg.events() == [] and reg.models() == []


def test_events_filter_by_model_time_and_count(reg: Registry) -> None:
    reg.register("a", [1], format="pickle")
    middle = datetime.now(UTC)
    reg.register("b", [1], format="pickle")
    reg.register("a", [2], format="pickle")
    assert [(e.model, e.version) for e in reg.events("a")] == [("a", 1), ("a", 2)]
    assert [(e.model, e.version) for e in reg.events(since=middle)] == [("b", 1), ("a", 2)]
    assert [(e.model, e.version) for e in reg.events(since=middle.isoformat())] == [("b", 1), ("a", 2)]
    assert [(e.model, e.version) for e in reg.events(limit=2)] == [("b", 1), ("a", 2)]
    assert reg.events(since="2999-01-01") == []
    with pytest.raises(ValueError, match="naive datetime"):
        reg.events(since=datetime(2026, 1, 1))  # noqa: DTZ001
    with pytest.raises(ValueError, match="ISO 8601"):
        reg.events(since="last tuesday")
    with pytest.raises(ModelNotFound):
        reg.events("c")


def test_alias_history_answers_which_version_served_when(reg: Registry) -> None:
    for value in range(3):
        reg.register("m", [value], format="pickle")
    reg.set_alias("m", "production", 1)
    reg.set_alias("m", "production", 3)
    reg.delete_alias("m", "production")
    reg.set_alias("m", "production", 2)
    periods = reg.alias_history("m", "production")
    assert [(p.version, p.until is None) for p in periods] == [(1, False), (3, False), (2, True)]
    assert periods[0].until == periods[1].since and periods[1].until < periods[2].since  # a gap while unset
    assert all(p.set_by == getpass.getuser() for p in periods)
    assert reg.alias_at("m", "production", periods[1].since).version == 3
    assert reg.alias_at("m", "production", periods[0].since - timedelta(seconds=1)) is None
    assert reg.alias_at("m", "production", datetime.now(UTC)).version == 2
    assert reg.alias_history("m", "canary") == []


def test_the_trail_survives_reopening_and_is_shared_by_processes(home, reg: Registry) -> None:
    reg.register("m", [1], format="pickle")
    with Registry(home) as other:
        other.set_alias("m", "production", 1)
    assert [e.action for e in reg.events("m")] == ["register", "alias.set"]


def test_imports_are_recorded_as_registers(tmp_path, reg: Registry) -> None:

    reg.register("m", [1], format="pickle")
    reg.export_bundle(["m:1"], tmp_path / "b.tar")
    with Registry(tmp_path / "target") as target:
        target.import_bundle(tmp_path / "b.tar", allow_unsigned=True)
        assert [(e.action, e.version) for e in target.events()] == [("register", 1)]


def test_bad_arguments_are_refused_before_anything_changes(reg: Registry) -> None:
    reg.register("m", [1], format="pickle", tags={"a": "1"})
    with pytest.raises(ValueError, match="both set and removed"):
        reg.set_tags("m", 1, {"a": "2"}, remove=["a"])
    with pytest.raises(ValueError, match="not None"):
        reg.alias_at("m", "production", None)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="limit must be"):
        reg.events(limit=2**63)
    assert reg.get("m:1").tags == {"a": "1"} and [e.action for e in reg.events()] == ["register"]


def test_record_refused_swap_checks_what_it_records_and_writes_nothing_bad(tmp_path: Path) -> None:
    from registry import InvalidArgument, InvalidName

    with Registry(tmp_path / "r") as reg:
        reg.register("m", {"w": 1}, format="pickle")
        before = reg.events("m")
        for kwargs, error in [
            ({"reason": ""}, InvalidArgument),
            ({"reason": "x" * 5000}, InvalidArgument),
            ({"kind": None}, InvalidArgument),
            ({"served": 0}, ValueError),
        ]:
            call = {"alias": "production", "served": 1, "reason": "canary changed", "kind": "canary", **kwargs}
            with pytest.raises(error):
                reg.record_refused_swap("m", 1, **call)
        with pytest.raises(InvalidName):
            reg.record_refused_swap("../m", 1, alias=None, served=1, reason="r", kind="load")
        assert reg.events("m") == before  # nothing was recorded by a refused call
        assert reg.record_refused_swap("m", 1, alias="production", served=1, reason="canary changed", kind="canary")
        assert reg.events("m", action="serve.swap_refused")[-1].new == {
            "served": 1,
            "kind": "canary",
            "reason": "canary changed",
        }
