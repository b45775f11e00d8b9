"""Authenticated catalog state: what decides which bytes are served cannot be changed by SQL alone.

Each attack plays someone who can write the catalog database (here with
``sqlite3`` on the file, as any SQL client could) but does not hold the
signing key. With the key every one is refused at ``get``/``load`` with
:class:`UntrustedArtifact` and reported by ``verify``; on the code before
sealing each of them was served.
"""

from __future__ import annotations

import json
import shutil
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry, UntrustedArtifact
from registry.cli import cli

KEY = "catalog-trust-key-of-at-least-32-bytes"
NOW = "2026-06-01 00:00:00.000000"


@pytest.fixture(autouse=True)
def own_cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The client's rollback memory lives in its cache: each test gets its own, never the user's."""
    cache = tmp_path / "cache"
    monkeypatch.setenv("MODELSHELF_CACHE", str(cache))
    return cache


@pytest.fixture
def keyed(home: Path) -> Iterator[Registry]:
    """m:1 acc .5, m:2 acc .9 @production, m:3 acc .7 (latest), m:4 deleted (revoked).

    m:4 has m:1's bytes, so its blob outlives the deletion: bringing it back
    by SQL would serve it (the attacker could as well restore a blob).
    """
    with Registry(home, signing_key=KEY) as reg:
        reg.register("m", {"v": 1}, format="pickle", metrics={"acc": 0.5})
        reg.register("m", {"v": 2}, format="pickle", metrics={"acc": 0.9}, alias="production")
        reg.register("m", {"v": 3}, format="pickle", metrics={"acc": 0.7})
        reg.register("m", {"v": 1}, format="pickle", metrics={"acc": 0.1})
        reg.delete_version("m", 4)
        yield reg


def sql(home: Path, *statements: str) -> None:
    with sqlite3.connect(home / "catalog.db") as db:
        for statement in statements:
            db.execute(statement)


def version_id(number: int) -> str:
    return f"(SELECT id FROM versions WHERE version = {number})"


#: name → (the SQL of the attack, a lookup that it would redirect, what the refusal must say)
ATTACKS: dict[str, tuple[list[str], Callable[[Registry], object], str]] = {
    "alias moved to an old version": (
        [f"UPDATE aliases SET version_id = {version_id(1)} WHERE alias = 'production'"],
        lambda reg: reg.load("m@production"),
        "alias 'production' points at version 1 but was sealed pointing at version 2",
    ),
    "delete rolls latest back": (
        [f"UPDATE versions SET deleted_at = '{NOW}' WHERE version = 3"],
        lambda reg: reg.load("m"),
        "version 3 is deleted but was live when sealed",
    ),
    "revoked version brought back": (
        ["UPDATE versions SET deleted_at = NULL WHERE version = 4"],
        lambda reg: reg.load("m:4"),
        "version 4 was deleted when sealed but is live again",
    ),
    "un-delete makes it latest": (
        ["UPDATE versions SET deleted_at = NULL WHERE version = 4"],
        lambda reg: reg.get("m"),
        "un-deleted outside modelshelf",
    ),
    "metrics raised so best() picks another version": (
        [f"UPDATE latest_metrics SET value = 0.99 WHERE version_id = {version_id(1)}"],
        lambda reg: reg.best("m", "acc"),
        "latest metrics differ from the sealed ones",
    ),
    "metrics row removed so best() skips the real best": (
        [f"DELETE FROM latest_metrics WHERE version_id = {version_id(2)}"],
        lambda reg: reg.best("m", "acc"),
        "latest metrics differ",
    ),
    "import inventory rewritten": (
        ["UPDATE versions SET imports = '[\"builtins.eval\"]' WHERE version = 2"],
        lambda reg: reg.get("m:2"),
        "signature that does not match its catalog entry",
    ),
    "alias pointed by forging a whole new alias row": (
        [
            "INSERT INTO aliases (model_id, alias, version_id, updated_at)"
            f" VALUES (1, 'staging', {version_id(1)}, '{NOW}')"
        ],
        lambda reg: reg.load("m@staging"),
        "alias 'staging' points at version 1 but was not set when sealed",
    ),
    "event of the trail removed": (
        ["DELETE FROM events WHERE id = (SELECT MAX(id) FROM events)"],
        lambda reg: reg.load("m:1"),
        "audit trail does not end with the sealed event",
    ),
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_each_catalog_tamper_is_refused_with_the_key_and_reported_by_verify(
    keyed: Registry, home: Path, attack: str
) -> None:
    statements, lookup, message = ATTACKS[attack]
    sql(home, *statements)
    with pytest.raises(UntrustedArtifact, match=message):
        lookup(keyed)
    report = keyed.verify(deep=False)
    assert not report.ok
    assert {p.kind for p in report.problems} & {"state_mismatch", "signature_mismatch"}


def test_without_tampering_every_keyed_lookup_answers(keyed: Registry) -> None:
    """The control: the same lookups as the attacks, on the untouched catalog."""
    assert keyed.load("m@production") == {"v": 2}
    assert keyed.get("m").version == 3
    assert keyed.best("m", "acc").version == 2
    assert keyed.load("m:2") == {"v": 2}
    assert keyed.verify().ok, keyed.verify().problems


def test_the_import_inventory_rewrite_is_refused_at_load_too(keyed: Registry, home: Path) -> None:
    sql(home, 'UPDATE versions SET imports = \'["builtins.dict", "posix.system"]\' WHERE version = 2')
    with pytest.raises(UntrustedArtifact, match="m:2 has a signature that does not match"):
        keyed.load("m@production")
    (problem,) = [p for p in keyed.verify(deep=False).problems if p.kind == "signature_mismatch"]
    assert problem.ref == "m:2"


def test_a_change_by_a_client_without_the_key_is_refused_until_sealed(keyed: Registry, home: Path) -> None:
    with Registry(home) as plain:  # a legitimate client that simply lacks the key
        plain.set_alias("m", "production", 1)
        assert plain.get("m@production").version == 1
    with pytest.raises(UntrustedArtifact, match="changed by a client without the signing key.*modelshelf seal m"):
        keyed.get("m@production")
    assert "state_unsealed" in {p.kind for p in keyed.verify(deep=False).problems}
    with pytest.raises(UntrustedArtifact, match="without the signing key"):
        keyed.set_alias("m", "production", 2)  # a keyed writer never reseals someone else's change
    keyed.seal("m")
    assert keyed.get("m@production").version == 1
    seal_event = keyed.events("m")[-1]
    assert seal_event.action == "state.seal" and seal_event.old["problem"] == "state_unsealed"
    assert seal_event.user is not None
    assert keyed.verify(deep=False).ok


def test_a_forged_seal_is_refused(keyed: Registry, home: Path) -> None:
    """The attacker moves the alias and writes a matching plain-text state; the MAC gives them away."""
    with sqlite3.connect(home / "catalog.db") as db:
        (state,) = db.execute("SELECT state FROM models WHERE name = 'm'").fetchone()
        forged = json.loads(state)
        forged["aliases"]["production"] = 1
        db.execute(f"UPDATE aliases SET version_id = {version_id(1)}")
        db.execute("UPDATE models SET state = ?", (json.dumps(forged),))
    with pytest.raises(UntrustedArtifact, match="does not verify under this signing key"):
        keyed.load("m@production")


def test_legitimate_changes_with_the_key_keep_loading(home: Path, knn, pipeline) -> None:
    with Registry(home, signing_key=KEY) as reg:
        reg.register("p", pipeline, params=None)  # captured params (nested, tuples, floats) signed and read back
        assert reg.load("p", safe=True).predict([[5.1, 3.5, 1.4, 0.2]])[0] == 0
        reg.register("m", knn, metrics={"acc": 0.8}, alias="production")
        reg.register("m", knn, metrics={"acc": 0.9})
        reg.set_alias("m", "production", 2)
        reg.set_alias("m", "staging", 1)
        reg.delete_alias("m", "staging")
        reg.log_metrics("m", 1, {"acc": 0.95}, step=2)
        reg.set_tags("m", 1, {"team": "cv"})
        reg.register("m", knn)
        reg.delete_version("m", 3)
        assert reg.best("m", "acc").version == 1
        assert reg.get("m").version == 2
        assert reg.load("m@production").predict([[5.1, 3.5, 1.4, 0.2]])[0] == 0
        assert [mv.version for mv in reg.search("m", where="tags.team = 'cv'")] == [1]
        assert [mv.version for mv in reg.search(where="metrics.acc > 0.5")] == [1, 2]
        assert reg.verify().ok, reg.verify().problems
    with Registry(home, signing_key=KEY) as again:  # another client, same key
        assert again.get("m@production").version == 2


def test_a_catalog_rolled_back_to_an_earlier_copy_is_refused(keyed: Registry, home: Path, own_cache: Path) -> None:
    """Every seal in the old copy verifies: only the client's memory of a newer state catches it."""
    old = home.parent / "old-catalog.db"
    with sqlite3.connect(home / "catalog.db") as live, sqlite3.connect(old) as copy:
        live.backup(copy)
    keyed.set_alias("m", "production", 1)  # say version 2 was revoked from production
    assert keyed.get("m@production").version == 1  # this client has now seen the newer state
    with sqlite3.connect(old) as copy, sqlite3.connect(home / "catalog.db") as live:
        copy.backup(live)  # the attacker restores the backup
    with Registry(home, signing_key=KEY) as reg:
        with pytest.raises(UntrustedArtifact, match="rolled back.*remove .*catalog-state"):
            reg.load("m@production")
        assert "rolled_back" in {p.kind for p in reg.verify(deep=False).problems}
    shutil.rmtree(own_cache / "catalog-state")  # the rollback was deliberate: forget the newer state
    with Registry(home, signing_key=KEY) as reg:
        assert reg.load("m@production") == {"v": 2}


def test_a_catalog_from_before_sealing_must_be_sealed_explicitly(home: Path) -> None:
    with Registry(home) as plain:
        plain.register("m", {"v": 1}, format="pickle")
    with Registry(home, signing_key=KEY) as reg:
        with pytest.raises(UntrustedArtifact, match="never been sealed.*modelshelf seal m"):
            reg.get("m")
        assert "state_unsealed" in {p.kind for p in reg.verify(deep=False).problems}
        reg.seal("m")
        assert reg.get("m").version == 1
        with pytest.raises(UntrustedArtifact, match="no signature"):
            reg.load("m")  # sealing adopts which version is served, not unsigned bytes


# -- without a key: the unkeyed chain makes accidental damage visible ---------


@pytest.mark.parametrize(
    "damage",
    [
        "UPDATE events SET new = '1' WHERE action = 'alias.set'",
        "DELETE FROM events WHERE id = (SELECT MIN(id) FROM events)",
        "UPDATE events SET user_name = 'someone-else' WHERE id = 2",
    ],
    ids=["edited", "removed from the start", "actor rewritten"],
)
def test_without_a_key_verify_shows_an_edited_trail(home: Path, damage: str) -> None:
    with Registry(home) as reg:
        reg.register("m", {"v": 1}, format="pickle")
        reg.register("m", {"v": 2}, format="pickle", alias="production")
        reg.register("m", {"v": 3}, format="pickle")
        assert reg.verify(deep=False).ok
        sql(home, damage)
        problems = [p for p in reg.verify(deep=False).problems if p.kind == "trail_broken"]
        assert len(problems) == 1 and "'m'" in problems[0].detail
        assert not reg.verify(deep=False).ok


@pytest.mark.parametrize(
    ("edit", "what"),
    [
        (f"UPDATE aliases SET version_id = {version_id(1)}", "alias 'production' of 'm' points at version 1"),
        (f"UPDATE versions SET deleted_at = '{NOW}' WHERE version = 3", "has no deletion of it"),
        ("UPDATE versions SET deleted_at = NULL WHERE version = 2", "but is live again"),
    ],
    ids=["alias moved", "deleted", "un-deleted"],
)
def test_without_a_key_verify_shows_a_change_the_trail_does_not_tell_of(home: Path, edit: str, what: str) -> None:
    """The alias move by SQL that left no audit event: the trail and the tables no longer agree."""
    with Registry(home) as reg:
        reg.register("m", {"v": 1}, format="pickle")
        reg.register("m", {"v": 2}, format="pickle", alias="production")
        reg.delete_version("m", 2)
        reg.register("m", {"v": 3}, format="pickle", alias="production")
        assert reg.verify(deep=False).ok
        sql(home, edit)
        (problem,) = [p for p in reg.verify(deep=False).problems if p.kind == "trail_mismatch"]
        assert what in problem.detail and not reg.verify(deep=False).ok


# -- audit --deny: the imports index ---------------------------------------------


def test_versions_importing_lists_aliased_versions_first_from_the_index(home: Path, knn, pipeline) -> None:
    with Registry(home) as reg:
        reg.register("a", knn)
        reg.register("b", knn, alias="production")
        reg.register("c", pipeline)
        reg.register("d", {"plain": 1}, format="pickle")
        knn_class = "sklearn.neighbors._classification.KNeighborsClassifier"
        assert knn_class in reg.get("a").imports
        assert [mv.ref for mv in reg.versions_importing([knn_class])] == ["b:1", "a:1"]
        assert reg.versions_importing(["posix.system"]) == []
        sql(home, f"UPDATE version_imports SET name = 'x' WHERE version_id = {version_id(1)} AND name = '{knn_class}'")
        assert "inventory_index" in {p.kind for p in reg.verify(deep=False).problems}


def test_audit_deny_command_exits_3_when_a_version_imports_a_denied_global(home: Path, knn) -> None:
    with Registry(home) as reg:
        reg.register("a", knn, alias="production")
        reg.register("d", {"plain": 1}, format="pickle")
    knn_class = "sklearn.neighbors._classification.KNeighborsClassifier"
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "audit", "--deny", f"posix.system,{knn_class}", "--json"])
    assert result.exit_code == 3, result.output
    data = json.loads(result.output)
    assert [v["ref"] for v in data["versions"]] == ["a:1"]
    assert data["versions"][0]["denied_imports"] == [knn_class]
    result = runner.invoke(cli, ["--home", str(home), "audit", "--deny", "posix.system"])
    assert result.exit_code == 0 and "ok: no live version imports posix.system" in result.output


def test_seal_command_adopts_a_model_with_the_key(home: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    with Registry(home) as plain:
        plain.register("m", {"v": 1}, format="pickle")
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "seal", "m"])
    assert result.exit_code == 2 and "signing key" in result.output
    monkeypatch.setenv("MODELSHELF_SIGNING_KEY", KEY)
    result = runner.invoke(cli, ["--home", str(home), "show", "m"])
    assert result.exit_code == 3 and "modelshelf seal m" in result.output
    result = runner.invoke(cli, ["--home", str(home), "seal", "m"])
    assert result.exit_code == 0 and "sealed m" in result.output
    assert runner.invoke(cli, ["--home", str(home), "show", "m"]).exit_code == 0


# -- every engine: the chain and the seal mean the same on PostgreSQL and MariaDB --


@pytest.fixture(params=["sqlite", "postgresql", "mariadb"])
def engine_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    if request.param == "sqlite":
        yield f"sqlite:///{tmp_path / 'catalog.db'}"
        return
    from tests.servers import fresh_database

    yield from fresh_database(request.param)


def test_sealing_and_tampering_on_every_engine(engine_url: str, tmp_path: Path) -> None:
    """Timestamps, JSON and floats come back from each engine exactly as they were sealed; SQL edits do not."""
    from sqlalchemy import create_engine, text

    with Registry(catalog=engine_url, store=tmp_path / "store", signing_key=KEY) as reg:
        reg.register("m", {"v": 1}, format="pickle", metrics={"acc": 0.1 + 0.2}, params={"c": 1e-5, "s": "é"})
        reg.register("m", {"v": 2}, format="pickle", alias="production")
        reg.log_metrics("m", 2, {"acc": 1 / 3}, step=7)
        reg.set_tags("m", 1, {"k": "v"})
        reg.register("m", {"v": 3}, format="pickle")
        reg.delete_version("m", 3)
        assert reg.load("m@production") == {"v": 2} and reg.best("m", "acc").version == 2
        assert reg.verify().ok, reg.verify().problems
        engine = create_engine(engine_url)
        with engine.begin() as connection:
            connection.execute(
                text("UPDATE aliases SET version_id = (SELECT id FROM versions WHERE version = 1)")
                if engine.dialect.name != "mysql"
                else text("UPDATE aliases a JOIN versions v ON v.version = 1 SET a.version_id = v.id")
            )
            connection.execute(text("UPDATE versions SET deleted_at = NULL WHERE version = 3"))
        engine.dispose()
        with pytest.raises(UntrustedArtifact, match="alias 'production' points at version 1.*version 3 was deleted"):
            reg.load("m@production")
        kinds = {p.kind for p in reg.verify(deep=False).problems}
        assert "state_mismatch" in kinds and "trail_broken" not in kinds
    with Registry(catalog=engine_url, store=tmp_path / "store") as plain:
        assert not {p.kind for p in plain.verify(deep=False).problems} & {"trail_broken", "inventory_index"}


def test_export_and_import_between_keyed_registries_keep_loading(keyed: Registry, tmp_path: Path) -> None:
    from registry.trust.keys import generate_key_pair

    pair = generate_key_pair(tmp_path, "exporter")
    bundle = tmp_path / "bundle.tar"
    keyed.export_bundle(["m@production", "m:3"], bundle, sign_with=pair.private_path)
    with Registry(tmp_path / "target", signing_key=KEY) as target:
        target.import_bundle(bundle, trusted_keys=[pair.public_path])
        loaded = sorted((target.load(mv.ref)["v"], mv.metrics["acc"]) for mv in target.versions("m"))
        assert loaded == [(2, 0.9), (3, 0.7)]
        assert target.load(target.best("m", "acc").ref) == {"v": 2}
        assert target.verify().ok, target.verify().problems


def test_keyed_writers_in_parallel_keep_every_model_sealed(engine_url: str, tmp_path: Path) -> None:
    """Writers of one model serialize on its row; of different models they do not wait on each other's seal."""
    import threading

    errors: list[BaseException] = []

    def work(name: str) -> None:
        try:
            with Registry(catalog=engine_url, store=tmp_path / "store", signing_key=KEY) as reg:
                for number in range(4):
                    reg.register(name, {"n": number}, format="pickle", alias="production")
        except BaseException as exc:  # reported below, with the thread's traceback
            errors.append(exc)

    threads = [threading.Thread(target=work, args=(name,)) for name in ("a", "a", "b", "c")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert not errors, errors
    with Registry(catalog=engine_url, store=tmp_path / "store", signing_key=KEY) as reg:
        assert [reg.get(f"{name}@production").version for name in "abc"] == [8, 4, 4]
        assert reg.verify(deep=False).ok, reg.verify(deep=False).problems


def test_an_edited_event_behind_the_head_is_reported_by_verify_with_the_key(keyed: Registry, home: Path) -> None:
    """History rewritten (who registered m:1) while the head is left alone: the keyed links give it away."""
    sql(home, "UPDATE events SET user_name = 'mallory' WHERE id = 1")
    problems = [p for p in keyed.verify(deep=False).problems if p.kind == "trail_broken"]
    assert len(problems) == 1 and "event #1" in problems[0].detail


def test_a_v1_signature_still_loads_and_is_reported_as_legacy(keyed: Registry, home: Path) -> None:
    """Versions signed before v2 keep their identity check; verify says their inventory is not covered."""
    from registry.trust import signing

    one = keyed.get("m:1")
    legacy = signing.sign(KEY.encode(), "m", 1, one.format, one.checksum)
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("UPDATE versions SET signature = ? WHERE version = 1", (legacy,))
    assert keyed.load("m:1") == {"v": 1}
    report = keyed.verify(deep=False)
    assert [(p.kind, p.ref) for p in report.problems] == [("legacy_signature", "m:1")] and report.ok


def test_a_keyed_write_after_a_metric_edit_does_not_seal_the_edit(keyed: Registry, home: Path) -> None:
    """Writers do not re-read every metric; the sealed digest moves only by what they wrote, so the edit stays."""
    sql(home, f"UPDATE latest_metrics SET value = 0.99 WHERE version_id = {version_id(1)}")
    keyed.set_alias("m", "staging", 3)
    keyed.log_metrics("m", 3, {"acc": 0.75})
    keyed.register("m", {"v": 5}, format="pickle", metrics={"acc": 0.2})
    with pytest.raises(UntrustedArtifact, match="latest metrics differ"):
        keyed.best("m", "acc")
    sql(home, f"UPDATE latest_metrics SET value = 0.5 WHERE version_id = {version_id(1)}")  # undone
    assert keyed.best("m", "acc").version == 2 and keyed.verify(deep=False).ok


def test_sealing_without_the_key_says_what_to_set_and_seals_nothing(home: Path) -> None:
    with Registry(home) as reg:
        reg.register("m", {"v": 1}, format="pickle")
        with pytest.raises(ValueError, match="MODELSHELF_SIGNING_KEY"):
            reg.seal("m")
    with Registry(home, signing_key=KEY) as keyed, pytest.raises(UntrustedArtifact, match="never been sealed"):
        keyed.get("m")
