"""Review: raw-SQL edits (no key) that a keyed registry still serves, or that verify does not report."""

from __future__ import annotations

import sqlite3
from collections.abc import Iterator
from pathlib import Path

import pytest

from registry import Registry, UntrustedArtifact

KEY = "catalog-trust-key-of-at-least-32-bytes"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELSHELF_CACHE", str(cache))
    return cache


def sql(home: Path, *statements: str) -> None:
    with sqlite3.connect(home / "catalog.db") as db:
        for statement in statements:
            db.execute(statement)


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


def test_resetting_a_model_to_never_registered_lifts_the_seal(keyed: Registry, home: Path) -> None:
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


def test_cross_model_search_only_checks_models_in_the_result(home: Path) -> None:
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


def test_best_where_a_tag_is_decided_by_unsealed_rows(home: Path) -> None:
    """best(where=tags...) picks which bytes are served; tags are neither sealed nor signed."""
    with Registry(home, signing_key=KEY) as reg:
        reg.register("m", {"v": 1}, format="pickle", metrics={"acc": 0.95}, tags={"qa": "failed"})
        reg.register("m", {"v": 2}, format="pickle", metrics={"acc": 0.90}, tags={"qa": "passed"})
        assert reg.best("m", "acc", where="tags.qa = 'passed'").version == 2
        sql(home, "UPDATE tags SET value = 'passed' WHERE key = 'qa'")
        with pytest.raises(UntrustedArtifact):
            reg.best("m", "acc", where="tags.qa = 'passed'")


def test_best_where_a_param_follows_the_unsigned_param_index(home: Path) -> None:
    """The v2 signature covers versions.params, but search filters on param_values, which nothing covers:
    the keyed registry returns a version whose own signed params contradict the filter."""
    with Registry(home, signing_key=KEY) as reg:
        reg.register("m", {"v": 1}, format="pickle", metrics={"acc": 0.95}, params={"k": 5})
        reg.register("m", {"v": 2}, format="pickle", metrics={"acc": 0.90}, params={"k": 3})
        assert reg.best("m", "acc", where="params.k = 3").version == 2
        sql(home, "UPDATE param_values SET number = 3 WHERE version_id = (SELECT id FROM versions WHERE version = 1)")
        try:
            found = reg.best("m", "acc", where="params.k = 3")
        except UntrustedArtifact:
            return
        assert found.params["k"] == 3, f"served {found.ref} whose signed params are {found.params}"


def test_versions_shows_a_rewritten_inventory_as_signed(keyed: Registry, home: Path) -> None:
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
        f"signature {forged.signature!r}"
    )


def test_a_version_row_signed_in_another_catalog_under_the_same_key_replaces_this_one(tmp_path: Path) -> None:
    """v2 signatures bind (name, version, bytes), not the catalog, and the seal does not cover each version's
    checksum: a row validly signed in another registry sharing the key (staging vs production) can be copied
    over this registry's row of the same number, with its blob, and is served and verified as genuine."""
    import shutil

    prod, staging = tmp_path / "prod", tmp_path / "staging"
    with Registry(staging, signing_key=KEY) as other:
        evil = other.register("m", {"v": "staging build"}, format="pickle")
        evil_blob = other._store.path_of(evil.digest)
    with Registry(prod, signing_key=KEY) as reg:
        good = reg.register("m", {"v": "release"}, format="pickle", alias="production")
        target = reg._store.path_of(evil.digest)
        target.parent.mkdir(parents=True, exist_ok=True)
        shutil.copyfile(evil_blob, target)  # the attacker can write the store
        with sqlite3.connect(staging / "catalog.db") as db:
            row = db.execute("SELECT blob_digest, size, format, params, imports, signature FROM versions").fetchone()
        with sqlite3.connect(prod / "catalog.db") as db:
            db.execute(
                "INSERT OR IGNORE INTO blobs (digest, size, created_at) SELECT ?, ?, created_at FROM blobs",
                (row[0], row[1]),
            )
            db.execute(
                "UPDATE versions SET blob_digest = ?, size = ?, format = ?, params = ?, imports = ?, "
                "signature = ? WHERE version = 1",
                row,
            )
        assert good.digest != evil.digest
        try:
            served = reg.load("m@production")
        except UntrustedArtifact:
            return
        report = reg.verify(deep=True)
        pytest.fail(f"served {served!r} from another catalog; verify ok={report.ok} {report.problems}")


def test_an_sql_edit_dressed_as_a_keyless_client_is_indistinguishable_in_the_trail(keyed: Registry, home: Path) -> None:
    """Anyone can compute a u1 link. An attacker moves production, clears the seal as a keyless client would,
    and appends a well-chained 'alias.move' by 'alice'. The refusal tells the operator to check `modelshelf log`
    and seal; the log shows the forged event exactly like a genuine one (Event carries no link/authenticity)."""
    from datetime import UTC, datetime

    from registry.catalog.chain import next_link

    with sqlite3.connect(home / "catalog.db") as db:
        (head,) = db.execute("SELECT link FROM events WHERE model = 'm' ORDER BY id DESC LIMIT 1").fetchone()
        at = datetime(2026, 12, 1, 12, 0, tzinfo=UTC)
        event = {
            "at": at,
            "action": "alias.move",
            "model": "m",
            "version": 1,
            "alias": "production",
            "old": 2,
            "new": 1,
            "user_name": "alice",
            "host": "build-01",
        }
        db.execute(
            "INSERT INTO events (at, action, model, version, alias, old, new, user_name, host, link) "
            "VALUES ('2026-12-01 12:00:00.000000', 'alias.move', 'm', 1, 'production', '2', '1', 'alice', "
            "'build-01', ?)",
            (next_link(None, head, event),),
        )
        db.execute("UPDATE aliases SET version_id = (SELECT id FROM versions WHERE version = 1)")
        db.execute("UPDATE models SET state_seal = NULL, state_seq = state_seq + 1")
    with pytest.raises(UntrustedArtifact) as refused:
        keyed.get("m@production")
    assert "changed by a client without the signing key" in str(refused.value)  # blames a legitimate client
    assert not any(p.kind == "trail_broken" for p in keyed.verify(deep=False).problems)  # the chain is intact
    last = keyed.events("m")[-1]
    assert (last.action, last.user) == ("alias.move", "alice")
    assert any(hasattr(last, attr) for attr in ("authenticated", "keyed", "link")), (
        "nothing tells the operator this event was not written by a modelshelf client"
    )


def test_a_keyed_writer_reseals_a_rolled_back_catalog(keyed: Registry, home: Path) -> None:
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


def test_the_reset_is_laundered_into_a_valid_seal_by_the_next_keyed_write(keyed: Registry, home: Path) -> None:
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


def test_without_a_key_a_trail_shortened_at_its_end_is_not_reported(home: Path) -> None:
    """README: without a key `verify` shows 'an edited or shortened trail (trail_broken)'. Only the middle:
    nothing anchors the head, so dropping the newest events leaves a valid chain."""
    with Registry(home) as reg:
        reg.register("m", {"v": 1}, format="pickle")
        reg.register("m", {"v": 2}, format="pickle")
        reg.log_metrics("m", 2, {"acc": 0.5})
        sql(home, "DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)")
        assert not reg.verify(deep=False).ok, "the newest event was removed and verify is ok"
