"""Raw-SQL edits, without the key, that a keyed registry must neither serve nor seal, found in review.

Resetting a model to look never registered, restoring an older catalog
behind a keyed writer, lowering a metric so a cross-model search drops the
true best, and rewriting signed fields that listings show.
"""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import Registry, UntrustedArtifact
from tests.conftest import sql

KEY = "catalog-trust-key-of-at-least-32-bytes"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELSHELF_CACHE", str(cache))
    return cache


@pytest.fixture
def keyed(home: Path) -> Iterator[Registry]:
    """m:1, m:2 @production, m:3 (latest), m:4 deleted (revoked, same bytes as m:1 so its blob survives)."""
    with Registry(home, signing_key=KEY) as reg:
        reg.register("m", {"v": 1}, format="pickle", metrics={"acc": 0.5})
        reg.register("m", {"v": 2}, format="pickle", metrics={"acc": 0.9}, alias="production")
        reg.register("m", {"v": 3}, format="pickle", metrics={"acc": 0.7})
        reg.register("m", {"v": 1}, format="pickle", metrics={"acc": 0.1})
        reg.delete_version("m", 4)
        assert reg.get("m").version == 3  # the client has now seen the sealed state
        yield reg


def test_resetting_a_model_to_never_registered_does_not_lift_its_seal(keyed: Registry, home: Path) -> None:
    """check_state treats `state IS NULL AND last_version = 0 AND no events` as "nothing to protect"
    without looking at the versions that still exist: the attacker clears those three and then
    un-deletes the revoked m:4 and moves production, and a keyed client serves both."""
    sql(
        home,
        "UPDATE models SET state = NULL, state_seal = NULL, last_version = 0 WHERE name = 'm'",
        "DELETE FROM events WHERE model = 'm'",
        "UPDATE versions SET deleted_at = NULL WHERE version = 4",
        "UPDATE aliases SET version_id = (SELECT id FROM versions WHERE version = 1) WHERE alias = 'production'",
    )
    served = {}
    for ref in ("m", "m:4", "m@production"):
        try:
            served[ref] = keyed.load(ref)
        except UntrustedArtifact:
            pass
    report = keyed.verify(deep=False)
    assert served == {}, f"a keyed client served {served}; verify ok={report.ok} {report.problems}"


def test_resetting_a_model_then_undeleting_is_refused_and_reported(keyed: Registry, home: Path) -> None:
    sql(
        home,
        "UPDATE models SET state = NULL, state_seal = NULL, last_version = 0 WHERE name = 'm'",
        "DELETE FROM events WHERE model = 'm'",
        "UPDATE versions SET deleted_at = NULL WHERE version = 4",
        "DELETE FROM aliases",  # the trail no longer tells of the alias, so drop it too
    )
    with pytest.raises(UntrustedArtifact, match="never been sealed"):
        keyed.get("m")  # the revoked version 4 would be latest again
    report = keyed.verify(deep=False)
    assert "state_unsealed" in {problem.kind for problem in report.problems}


def test_a_cross_model_search_checks_every_model_not_only_those_it_returns(home: Path) -> None:
    """search(name=None) seals only the models whose rows came back: lowering a metric by SQL drops the
    true best model out of the result unchecked, and the keyed registry serves the runner-up."""
    with Registry(home, signing_key=KEY) as reg:
        reg.register("a", {"v": "a"}, format="pickle", metrics={"acc": 0.99})
        reg.register("b", {"v": "b"}, format="pickle", metrics={"acc": 0.80})
        assert reg.search(order_by="metrics.acc desc", limit=1)[0].name == "a"
        sql(
            home,
            "UPDATE latest_metrics SET value = 0.1 WHERE version_id = (SELECT v.id FROM versions v "
            "JOIN models m ON m.id = v.model_id WHERE m.name = 'a')",
        )
        with pytest.raises(UntrustedArtifact):
            reg.search(order_by="metrics.acc desc", limit=1)


def test_versions_does_not_show_a_rewritten_inventory_as_signed(keyed: Registry, home: Path) -> None:
    """get() refuses a rewritten inventory (v2 signature); versions() and search() return it unchecked."""
    sql(home, "UPDATE versions SET imports = '[\"builtins.dict\"]', params = '{\"x\": 1}' WHERE version = 2")
    with pytest.raises(UntrustedArtifact):
        keyed.get("m:2")
    try:
        listed = {mv.version: mv for mv in keyed.versions("m")}
    except UntrustedArtifact:
        return
    forged = listed[2]
    assert forged.imports != ("builtins.dict",), (
        f"versions() shows {forged.ref} with the forged inventory {forged.imports} and params {forged.params}, "
        f"HMAC {forged.hmac!r}"
    )


def test_a_keyed_writer_does_not_reseal_a_rolled_back_catalog(keyed: Registry, home: Path) -> None:
    """Readers check the client's rollback memory; writers (_guard) do not. A keyed writer that has seen the
    newer state writes on top of the restored backup and seals it with a fresh seq: after enough writes every
    reader accepts the rolled-back alias (here: production back on the revoked version 2)."""
    old = home.parent / "old-catalog.db"
    with sqlite3.connect(home / "catalog.db") as live, sqlite3.connect(old) as copy:
        live.backup(copy)
    keyed.set_alias("m", "production", 1)  # version 2 revoked from production
    assert keyed.get("m@production").version == 1  # this client has seen the newer state
    with sqlite3.connect(old) as copy, sqlite3.connect(home / "catalog.db") as live:
        copy.backup(live)  # the attacker restores the backup
    with pytest.raises(UntrustedArtifact, match="rolled back"):
        keyed.get("m@production")
    laundered = 0
    for step in range(5):  # ordinary keyed writes by the same client
        try:
            keyed.log_metrics("m", 3, {"acc": 0.7 + step / 100})
            laundered += 1
        except UntrustedArtifact:
            break
    assert laundered == 0, (
        f"{laundered} keyed writes sealed the rolled-back state; now production -> {keyed.get('m@production').version}"
    )


def test_the_reset_is_not_laundered_into_a_valid_seal_by_the_next_keyed_write(keyed: Registry, home: Path) -> None:
    sql(
        home,
        "UPDATE models SET state = NULL, state_seal = NULL, last_version = 0 WHERE name = 'm'",
        "DELETE FROM events WHERE model = 'm'",
        "UPDATE versions SET deleted_at = NULL WHERE version = 4",
        "UPDATE aliases SET version_id = (SELECT id FROM versions WHERE version = 1) WHERE alias = 'production'",
    )
    try:
        keyed.set_tags("m", 3, {"reviewed": "yes"})  # any ordinary keyed write: _guard lets it through
    except UntrustedArtifact:
        return
    report = keyed.verify(deep=True)
    pytest.fail(
        f"the attacker's state is now sealed: production -> {keyed.get('m@production').version}, latest -> "
        f"{keyed.get('m').version} (revoked); verify problems: {[p.kind for p in report.problems]}"
    )


def test_moving_a_metric_row_to_another_model_does_not_steer_a_top_n_read(home: Path) -> None:
    """Keyset reads find a model's metrics by latest_metrics.model_id, a column the seal once left out: pointing
    the best version's row at another model made a keyed registry return the runner-up as the best, unchecked."""
    with Registry(home, signing_key=KEY) as reg:
        reg.register("a", {"v": 1}, format="pickle", metrics={"acc": 0.99})
        reg.register("a", {"v": 2}, format="pickle", metrics={"acc": 0.80})
        reg.register("other", {"v": 0}, format="pickle", metrics={"acc": 0.5})
        assert reg.search("a", order_by="metrics.acc desc", limit=1)[0].version == 1
        sql(
            home,
            "UPDATE latest_metrics SET model_id = (SELECT id FROM models WHERE name = 'other') WHERE version_id = "
            "(SELECT v.id FROM versions v JOIN models m ON m.id = v.model_id WHERE m.name = 'a' AND v.version = 1)",
        )
        with pytest.raises(UntrustedArtifact):
            reg.search("a", order_by="metrics.acc desc", limit=1)
        with pytest.raises(UntrustedArtifact):
            reg.versions_page("a", order_by="metrics.acc desc", limit=1)
        assert not reg.verify(deep=False).ok


def test_rewriting_the_version_copy_of_a_metric_cannot_pick_among_tied_best(home: Path) -> None:
    """latest_metrics repeats each row's version number (ties come out of the index in version order); an
    attacker who rewrites that copy reorders ties, so best() would serve an older tied version as the newest.
    The seal's metrics digest only counts rows whose copies agree with their version: the edit is refused."""
    with Registry(home, signing_key=KEY) as reg:
        for version in range(1, 4):
            reg.register("t", {"v": version}, format="pickle", metrics={"acc": 0.9})
        assert reg.best("t", "acc").version == 3
        assert [mv.version for mv in reg.versions_page("t", order_by="metrics.acc desc").versions] == [1, 2, 3]
        sql(
            home,
            "UPDATE latest_metrics SET version = 99 WHERE version_id = (SELECT id FROM versions WHERE version = 1)",
        )
        with pytest.raises(UntrustedArtifact):
            reg.best("t", "acc")
        with pytest.raises(UntrustedArtifact):
            reg.versions_page("t", order_by="metrics.acc desc")
        sql(home, "UPDATE latest_metrics SET version = 1, model_id = 99 WHERE version = 99")  # hidden from the model
        with pytest.raises(UntrustedArtifact):
            reg.best("t", "acc")


def test_verify_reports_metric_rows_whose_version_copy_was_rewritten(home: Path) -> None:
    """Without a key nothing refuses the edit, but verify names the version whose metric rows disagree."""
    with Registry(home) as reg:
        reg.register("t", {"v": 1}, format="pickle", metrics={"acc": 0.9})
        reg.register("t", {"v": 2}, format="pickle", metrics={"acc": 0.9})
        assert "metric_index" not in {p.kind for p in reg.verify(deep=False).problems}
        sql(home, "UPDATE latest_metrics SET version = 7 WHERE version = 1", "UPDATE metrics SET model_id = 9")
        found = [(p.kind, p.ref) for p in reg.verify(deep=False).problems if p.kind == "metric_index"]
        assert found == [("metric_index", "t:1"), ("metric_index", "t:1"), ("metric_index", "t:2")]
        assert not reg.verify(deep=False).ok
