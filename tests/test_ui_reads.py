"""The reads a browser view needs at 10,000 versions: versions_page, metric_series, version_history, alias_names."""

from __future__ import annotations

from pathlib import Path

import pytest

from registry import (
    InvalidArgument,
    InvalidMetric,
    InvalidName,
    InvalidQuery,
    ModelNotFound,
    Registry,
    UntrustedArtifact,
    VersionNotFound,
    VersionPage,
)


@pytest.fixture(scope="module")
def reg(tmp_path_factory: pytest.TempPathFactory) -> Registry:
    registry = Registry(Path(tmp_path_factory.mktemp("page")))
    for i in range(1, 13):
        registry.register("m", {"i": i}, params={"i": i}, metrics={"acc": (i * 7) % 13 / 13}, tags={"odd": str(i % 2)})
    registry.register("other", {"x": 1})
    registry.delete_version("m", 5)
    return registry


def test_pages_cover_every_live_version_once_in_order(reg: Registry) -> None:
    seen: list[int] = []
    offset = 0
    while True:
        page = reg.versions_page("m", offset=offset, limit=5)
        assert isinstance(page, VersionPage) and page.total == 11 and page.offset == offset and page.limit == 5
        if not page.versions:
            break
        seen += [mv.version for mv in page.versions]
        offset += 5
    assert seen == [v for v in range(1, 13) if v != 5]


def test_ordering_filter_and_total(reg: Registry) -> None:
    page = reg.versions_page("m", where="tags.odd = '1'", order_by="metrics.acc desc", limit=3)
    assert page.total == 5  # 1, 3, 7, 9, 11 (5 is deleted)
    everything = reg.search("m", where="tags.odd = '1'", order_by="metrics.acc desc")
    assert [mv.version for mv in page.versions] == [mv.version for mv in everything[:3]]
    assert all(mv.name == "m" and mv.tags["odd"] == "1" for mv in page.versions)
    assert page.versions[0].metrics["acc"] >= page.versions[-1].metrics["acc"]


def test_bad_arguments_are_refused(reg: Registry) -> None:
    with pytest.raises(InvalidArgument, match="offset"):
        reg.versions_page("m", offset=-1)
    with pytest.raises(InvalidArgument, match="limit"):
        reg.versions_page("m", limit=0)
    with pytest.raises(InvalidQuery):
        reg.versions_page("m", where="metrics.acc >")
    with pytest.raises(ModelNotFound):
        reg.versions_page("nope")
    with pytest.raises(InvalidArgument, match="offset"):  # past 64 bits: was SQLite's raw OverflowError
        reg.versions_page("m", offset=2**70)
    assert reg.versions_page("m", offset=2**63 - 1).versions == []


def test_metric_names_are_every_live_versions_keys(tmp_path: Path) -> None:
    with Registry(tmp_path / "r") as registry:
        registry.register("m", {"x": 1}, metrics={"b": 1.0, "gone": 1.0})
        registry.register("m", {"x": 2}, metrics={"a": 0.5, "b": 2.0})
        registry.register("m", {"x": 3})  # the newest: no metrics yet
        registry.register("other", {"x": 1}, metrics={"elsewhere": 1.0})
        registry.log_metrics("m", 2, {"c": 3.0}, step=1)
        assert registry.latest("m").metrics == {}
        assert registry.metric_names("m") == ["a", "b", "c", "gone"]
        registry.delete_version("m", 1)  # deleted versions' keys are not offered
        assert registry.metric_names("m") == ["a", "b", "c"]
        registry.register("bare", {"x": 1})
        assert registry.metric_names("bare") == []
        with pytest.raises(ModelNotFound):
            registry.metric_names("nope")


def test_metric_series_is_each_versions_current_value(reg: Registry) -> None:
    reg_series = reg.metric_series("m", ["acc", "missing"])
    assert reg_series["missing"] == []
    expected = [(mv.version, mv.metrics["acc"]) for mv in reg.versions("m")]
    assert reg_series["acc"] == expected and 5 not in [v for v, _ in expected]  # deleted: left out


def test_metric_series_follows_the_latest_logged_value(tmp_path: Path) -> None:
    with Registry(tmp_path / "r") as registry:
        registry.register("m", {"x": 1}, metrics={"acc": 0.5})
        registry.log_metrics("m", 1, {"acc": 0.9}, step=3)
        registry.log_metrics("m", 1, {"acc": 0.7}, step=1)  # logged last: the current value, whatever its step
        assert registry.metric_series("m", ["acc"]) == {"acc": [(1, 0.7)]}
        assert registry.get("m:1").metrics["acc"] == 0.7
        with pytest.raises(InvalidMetric):
            registry.metric_series("m", "acc")


def test_alias_names_include_aliases_moved_away_and_deleted(tmp_path: Path) -> None:
    with Registry(tmp_path / "r") as registry:
        registry.register("m", {"x": 1})
        registry.register("m", {"x": 2})
        assert registry.alias_names("m") == []
        registry.set_alias("m", "staging", 1)
        registry.set_alias("m", "production", 1)
        registry.set_alias("m", "production", 2)
        registry.delete_alias("m", "staging")
        assert registry.alias_names("m") == ["production", "staging"]
        with pytest.raises(ModelNotFound):
            registry.alias_names("nope")


def test_version_history_is_that_versions_part_of_metrics_history(tmp_path: Path) -> None:
    with Registry(tmp_path / "r") as registry:
        for i in (1, 2, 3):
            registry.register("m", {"i": i}, metrics={"acc": i / 10})
        registry.log_metrics("m", 3, {"acc": 0.1, "loss": 2.0}, step=2)
        registry.log_metrics("m", 3, {"acc": 0.2}, step=1)
        registry.log_metrics("m", 2, {"acc": 0.9}, step=1)
        mine = registry.version_history("m", 3)
        assert mine == [p for p in registry.metrics_history("m") if p.version == 3]
        assert [(p.key, p.step) for p in mine] == [("acc", None), ("acc", 1), ("acc", 2), ("loss", 2)]


def test_metric_names_refuse_metrics_forged_in_a_keyed_catalog(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A metric key added by SQL alone, without the signing key, is not offered as if recorded."""
    import sqlite3

    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))
    with Registry(tmp_path / "r", signing_key="metric-names-key-of-at-least-32-bytes") as registry:
        registry.register("m", {"x": 1}, format="pickle", metrics={"acc": 0.5})
        assert registry.metric_names("m") == ["acc"]
        with sqlite3.connect(tmp_path / "r" / "catalog.db") as db:
            db.execute(
                "INSERT INTO latest_metrics (version_id, model_id, version, key, value) VALUES (1, 1, 1, 'forged', 1.0)"
            )
        with pytest.raises(UntrustedArtifact, match="latest metrics differ"):
            registry.metric_names("m")


def test_events_filter_by_alias_and_action_in_the_database_before_the_limit(tmp_path: Path) -> None:
    """What the audit page asks: the newest moves of one alias, however many other events came after."""
    with Registry(tmp_path / "r") as registry:
        for i in range(1, 4):
            registry.register("m", {"i": i})
        registry.set_alias("m", "production", 1)
        registry.set_alias("m", "staging", 1)
        registry.set_alias("m", "production", 2)
        registry.set_alias("m", "production", 3)
        registry.register("other", {"x": 1}, alias="production")
        for i in range(20):
            registry.set_tags("m", 1, {"round": str(i)})
        moves = registry.events("m", alias="production", limit=2)
        assert [(e.action, e.new) for e in moves] == [("alias.move", 2), ("alias.move", 3)]  # oldest first
        assert [e.model for e in registry.events(alias="production")] == ["m", "m", "m", "other"]
        assert [e.alias for e in registry.events(action="alias.set")] == ["production", "staging", "production"]
        assert registry.events("m", alias="staging", action="alias.move") == []
        assert len(registry.events("m", action="tags.set", limit=5)) == 5
        with pytest.raises(InvalidArgument, match="action must be one of"):
            registry.events(action="alias.moved")
        with pytest.raises(InvalidName, match="alias"):
            registry.events(alias="Not An Alias")


def test_version_history_of_a_missing_version_is_not_found(tmp_path: Path) -> None:
    with Registry(tmp_path / "r") as registry:
        registry.register("m", {"x": 1}, format="pickle", metrics={"acc": 0.5})
        registry.register("m", {"x": 2}, format="pickle")
        registry.delete_version("m", 2)
        assert [point.value for point in registry.version_history("m", 1)] == [0.5]
        with pytest.raises(VersionNotFound):
            registry.version_history("m", 7)
        with pytest.raises(VersionNotFound, match="deleted"):
            registry.version_history("m", 2)


@pytest.mark.parametrize("read", ["version_history", "metrics_history"])
def test_metric_histories_refuse_metrics_forged_in_a_keyed_catalog(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, read: str
) -> None:
    """The step histories a version page shows are checked against the sealed state, as metric_names is."""
    import sqlite3

    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))
    with Registry(tmp_path / "r", signing_key="metric-history-key-of-at-least-32-bytes") as registry:
        registry.register("m", {"x": 1}, format="pickle", metrics={"acc": 0.5})
        with sqlite3.connect(tmp_path / "r" / "catalog.db") as db:
            db.execute("UPDATE latest_metrics SET value = 0.99 WHERE key = 'acc'")
        call = (
            (lambda: registry.version_history("m", 1))
            if read == "version_history"
            else (lambda: registry.metrics_history("m"))
        )
        with pytest.raises(UntrustedArtifact, match="latest metrics differ"):
            call()
