"""The catalog schema: owned by Alembic, checked on open, shipped inside the package."""

from __future__ import annotations

import json
import os
import shutil
import sqlite3
import subprocess
import sys
import textwrap
import zipfile
from pathlib import Path

import pytest
from alembic import command
from alembic.script import ScriptDirectory
from click.testing import CliRunner
from sqlalchemy import create_engine

from registry import Registry, SchemaVersionError
from registry.catalog import migrate, revision
from registry.cli import cli
from registry.errors import CatalogError
from tests.old_catalogs import LEGACY_TIME, legacy_version, old_catalog, write_blob

ROOT = Path(__file__).resolve().parents[1]


def test_one_head_and_it_is_the_revision_the_code_expects() -> None:
    script = ScriptDirectory.from_config(migrate.alembic_config())
    assert script.get_heads() == [migrate.HEAD_REVISION]


def test_the_head_is_read_from_the_scripts_so_a_new_script_is_all_a_migration_takes(tmp_path: Path) -> None:
    versions = tmp_path / "versions"
    shutil.copytree(migrate.migrations_dir() / "versions", versions)
    assert migrate.head_revision(versions) == migrate.HEAD_REVISION
    (versions / "abc123_next.py").write_text(
        f'revision: str = "abc123"\ndown_revision: str | None = "{migrate.HEAD_REVISION}"\n'
    )
    assert migrate.head_revision(versions) == "abc123"
    (versions / "def456_branch.py").write_text(
        f'revision: str = "def456"\ndown_revision: str | None = "{migrate.HEAD_REVISION}"\n'
    )
    with pytest.raises(SchemaVersionError, match="2 heads"):
        migrate.head_revision(versions)


def test_orm_and_migrations_agree(home: Path) -> None:
    """``alembic check``: a column added to the ORM alone (or to a migration alone) fails here."""
    engine = create_engine(f"sqlite:///{home / 'catalog.db'}")
    with engine.connect() as connection:
        command.check(migrate.alembic_config(connection))
    engine.dispose()


def test_developer_alembic_ini_works_too(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'dev.db'}"
    run = [sys.executable, "-m", "alembic", "-c", str(ROOT / "alembic.ini"), "-x", f"url={url}"]
    subprocess.run([*run, "upgrade", "head"], check=True, capture_output=True, cwd=ROOT)
    subprocess.run([*run, "check"], check=True, capture_output=True, cwd=ROOT)


def test_upgrade_downgrade_upgrade_round_trip(tmp_path: Path) -> None:
    engine = create_engine(f"sqlite:///{tmp_path / 'c.db'}")
    with engine.begin() as connection:
        config = migrate.alembic_config(connection)
        command.upgrade(config, "head")
        command.downgrade(config, "base")
        assert set(sqlite3_tables(tmp_path / "c.db", connection)) <= {"alembic_version"}
        command.upgrade(config, "head")
        command.check(config)
    engine.dispose()
    with Registry(catalog=f"sqlite:///{tmp_path / 'c.db'}", store=tmp_path / "s") as reg:
        assert reg.register("m", [1], format="pickle").version == 1


def sqlite3_tables(path: Path, connection) -> list[str]:
    from sqlalchemy import inspect

    return inspect(connection).get_table_names()


def test_a_new_registry_is_created_at_head(tmp_path: Path) -> None:
    with Registry(tmp_path / "new"):
        pass
    with sqlite3.connect(tmp_path / "new" / "catalog.db") as db:
        assert db.execute("SELECT version_num FROM alembic_version").fetchall() == [(migrate.HEAD_REVISION,)]
        assert db.execute("PRAGMA journal_mode").fetchone() == ("wal",)


def test_sqlite_connections_are_configured_for_safety(reg: Registry) -> None:
    with reg._catalog.engine.connect() as connection:
        pragma = connection.exec_driver_sql
        assert pragma("PRAGMA foreign_keys").scalar() == 1
        assert pragma("PRAGMA journal_mode").scalar() == "wal"
        assert pragma("PRAGMA synchronous").scalar() == 2  # FULL
        assert pragma("PRAGMA busy_timeout").scalar() >= 10_000


def test_a_catalog_from_a_newer_modelshelf_is_refused(home: Path) -> None:
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    with pytest.raises(SchemaVersionError, match="newer modelshelf.*pip install -U modelshelf"):
        Registry(home)
    with pytest.raises(SchemaVersionError, match="newer"):
        Registry(home, upgrade=True)


@pytest.fixture
def newer_code(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> str:
    """This code base as it will be after one more migration: a copy of the scripts plus a new head."""
    scripts = tmp_path / "future_migrations"
    shutil.copytree(migrate.migrations_dir(), scripts, ignore=shutil.ignore_patterns("__pycache__"))
    new_head = "aaaaaaaaaaaa"
    (scripts / "versions" / f"{new_head}_future.py").write_text(
        textwrap.dedent(
            f'''
            import sqlalchemy as sa
            from alembic import op

            revision = "{new_head}"
            down_revision = "{migrate.HEAD_REVISION}"
            branch_labels = None
            depends_on = None


            def upgrade():
                with op.batch_alter_table("models") as batch:
                    batch.add_column(sa.Column("future", sa.Text(), nullable=True))


            def downgrade():
                with op.batch_alter_table("models") as batch:
                    batch.drop_column("future")
            '''
        )
    )
    monkeypatch.setattr(migrate, "migrations_dir", lambda: scripts)
    monkeypatch.setattr(revision, "HEAD_REVISION", new_head)
    return new_head


def test_an_older_catalog_names_the_upgrade_command_and_upgrades_on_request(home: Path, knn, newer_code: str) -> None:
    old_revision = current_of(home)
    with pytest.raises(SchemaVersionError) as caught:
        Registry(home)
    message = str(caught.value)
    assert "upgrade=True" in message and old_revision in message
    assert current_of(home) == old_revision  # nothing was changed
    with Registry(home, upgrade=True) as reg:
        reg.register("m", knn)
    assert current_of(home) == newer_code


def test_the_printed_upgrade_command_works(tmp_path: Path, newer_code: str) -> None:
    """The command in the error is run exactly as printed (a home with a space and a '?' in its name)."""
    import re
    import shlex

    home = tmp_path / "my models?v=1"
    migrate_to = revision.HEAD_REVISION
    revision.HEAD_REVISION = FIRST_REVISION_OF_TEST  # create the catalog as the previous code would have
    try:
        Registry(home).close()
    finally:
        revision.HEAD_REVISION = migrate_to
    with pytest.raises(SchemaVersionError) as caught:
        Registry(home)
    command = re.search(r"`(modelshelf db upgrade [^`]+)`", str(caught.value)).group(1)
    result = CliRunner().invoke(cli, shlex.split(command)[1:])
    assert result.exit_code == 0, result.output
    assert current_of(home) == newer_code
    assert not (tmp_path / "my models").exists()  # the '?' was never read as URL syntax


def test_db_upgrade_command_upgrades_an_older_catalog(home: Path, newer_code: str) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "db", "current"])
    assert result.exit_code == 0 and "modelshelf db upgrade" in result.output
    result = runner.invoke(cli, ["db", "upgrade", "--catalog", f"sqlite:///{home / 'catalog.db'}"])
    assert result.exit_code == 0, result.output
    assert f"to {newer_code}" in result.output
    assert current_of(home) == newer_code
    result = runner.invoke(cli, ["--home", str(home), "db", "current"])
    assert "up to date" in result.output


def current_of(home: Path) -> str:
    with sqlite3.connect(home / "catalog.db") as db:
        return db.execute("SELECT version_num FROM alembic_version").fetchone()[0]


@pytest.mark.parametrize("content", [b"this is not a database at all" * 100, b""])
def test_a_file_that_is_not_a_catalog_is_a_clear_error(tmp_path: Path, content: bytes) -> None:
    home = tmp_path / "reg"
    home.mkdir()
    (home / "catalog.db").write_bytes(content)
    if not content:
        Registry(home).close()  # an empty file is an empty database: it becomes a catalog
        return
    with pytest.raises(CatalogError, match=str(home / "catalog.db")):
        Registry(home)


def test_a_truncated_catalog_is_a_clear_error(home: Path, knn) -> None:
    with Registry(home) as reg:
        for _ in range(20):
            reg.register("m", knn, tags={"pad": "x" * 3000})
    catalog = home / "catalog.db"
    data = catalog.read_bytes()
    for suffix in ("-wal", "-shm"):
        Path(f"{catalog}{suffix}").unlink(missing_ok=True)
    catalog.write_bytes(data[: len(data) // 3])
    with pytest.raises(CatalogError, match="catalog.db"):
        with Registry(home) as reg:
            reg.versions("m")


def test_a_database_with_other_tables_is_not_taken_over(tmp_path: Path) -> None:
    path = tmp_path / "app.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE customers (id INTEGER PRIMARY KEY)")
    with pytest.raises(CatalogError, match="no modelshelf schema"):
        Registry(catalog=f"sqlite:///{path}", store=tmp_path / "s")


@pytest.mark.slow
def test_the_wheel_ships_the_migrations_and_creates_catalogs(tmp_path: Path, built_wheel: Path) -> None:
    """A non-editable install (no source tree) can create a catalog: the migrations are packaged."""
    wheel = built_wheel
    names = zipfile.ZipFile(wheel).namelist()
    for script in (ROOT / "migrations" / "versions").glob("*.py"):
        assert f"registry/_migrations/versions/{script.name}" in names
    for module in (ROOT / "registry").rglob("*.py"):  # every subpackage is listed in pyproject.toml
        assert module.relative_to(ROOT).as_posix() in names, module
    assert "registry/_migrations/env.py" in names and "registry/_migrations/script.py.mako" in names
    for data in [*(ROOT / "registry" / "ui" / "templates").iterdir(), *(ROOT / "registry" / "ui" / "static").iterdir()]:
        assert data.relative_to(ROOT).as_posix() in names, data  # the web UI's templates, htmx and stylesheet
    target = tmp_path / "site"
    subprocess.run(
        [sys.executable, "-m", "pip", "install", "--no-deps", "-q", "--target", str(target), str(wheel)],
        check=True,
        capture_output=True,
    )
    code = (
        "import registry, sys\n"
        "assert registry.__file__.startswith(sys.argv[1]), registry.__file__\n"
        "r = registry.Registry(sys.argv[2]); print(r.register('m', [1], format='pickle').ref)\n"
    )
    env = dict(os.environ, PYTHONPATH=str(target))
    out = subprocess.run(
        [sys.executable, "-c", code, str(target), str(tmp_path / "reg")],
        check=True,
        capture_output=True,
        text=True,
        cwd=tmp_path,
        env=env,
    )
    assert out.stdout.strip() == "m:1"


FIRST_REVISION = "2395150adee6"

FIRST_REVISION_OF_TEST = migrate.HEAD_REVISION  # the head before the newer_code fixture adds one


def test_a_catalog_of_the_first_revision_with_data_upgrades_and_still_loads(tmp_path: Path) -> None:
    """Versions written by the first schema keep loading after the upgrade (imports unknown, unsigned)."""
    home = tmp_path / "old"
    old_catalog(home, FIRST_REVISION)
    legacy_version(home, {"old": True}, params='{"k": 1}', with_imports=False)
    now = LEGACY_TIME
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("INSERT INTO latest_metrics (version_id, key, value) VALUES (1, 'acc', 0.5)")
        db.execute("INSERT INTO metrics (version_id, key, value, timestamp) VALUES (1, 'acc', 0.5, ?)", (now,))
        db.execute("INSERT INTO tags (version_id, key, value) VALUES (1, 'team', 'cv')")
    with pytest.raises(SchemaVersionError, match=FIRST_REVISION):
        Registry(home)
    with Registry(home, upgrade=True) as reg:
        mv = reg.get("legacy:1")
        assert (mv.params, mv.metrics, mv.tags, mv.imports, mv.hmac) == (
            {"k": 1},
            {"acc": 0.5},
            {"team": "cv"},
            None,
            None,
        )
        assert reg.load("legacy") == {"old": True}
        assert [p.value for p in reg.metrics_history("legacy")] == [0.5]
        assert reg.register("legacy", {"new": True}, format="pickle").version == 2
        assert reg.verify().ok
    assert current_of(home) == migrate.HEAD_REVISION


PREVIOUS_REVISION = "7bba9ce21c3f"  # the head before search, lineage and the audit trail


def test_a_catalog_of_the_previous_revision_with_data_upgrades_with_its_history(tmp_path: Path) -> None:
    """Versions, aliases, deletions and metrics written by the previous schema survive the upgrade.

    The previous code's catalog is made by migrating to its revision and
    writing rows as that code did; after the upgrade every live version
    still loads, its params are searchable, and the audit trail starts with
    the history the old catalog could tell.
    """
    home = tmp_path / "old"
    old_catalog(home, PREVIOUS_REVISION)
    blobs = []
    for number in (1, 2, 3):
        digest, data = write_blob(home, {"old": number})
        blobs.append((digest, len(data)))
    times = [f"2026-0{month}-01 00:00:00.000000" for month in (1, 2, 3, 4, 5)]
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("INSERT INTO models (id, name, last_version, created_at) VALUES (1, 'legacy', 3, ?)", (times[0],))
        for number, (digest, size) in enumerate(blobs, 1):
            db.execute("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)", (digest, size, times[0]))
            db.execute(
                "INSERT INTO versions (id, model_id, version, blob_digest, size, format, params, environment,"
                " created_at, deleted_at, imports) VALUES (?, 1, ?, ?, ?, 'pickle', ?, '{}', ?, ?, '[]')",
                (
                    number,
                    number,
                    digest,
                    size,
                    f'{{"k": {number}, "solver": "lbfgs", "fit": true, "depth": null, "layers": [8, 4]}}',
                    times[number - 1],
                    times[3] if number == 2 else None,
                ),
            )
            db.execute("INSERT INTO latest_metrics (version_id, key, value) VALUES (?, 'acc', ?)", (number, number / 4))
            db.execute(
                "INSERT INTO metrics (version_id, key, value, timestamp) VALUES (?, 'acc', ?, ?)",
                (number, number / 4, times[number - 1]),
            )
        db.execute("INSERT INTO tags (version_id, key, value) VALUES (1, 'team', 'cv')")
        # metrics logged after registration, as log_metrics wrote them: one event of two values
        for key, value in (("acc", 0.8), ("f1", 0.7)):
            db.execute(
                "INSERT INTO metrics (version_id, key, value, step, timestamp) VALUES (3, ?, ?, 5, ?)",
                (key, value, times[4]),
            )
        db.execute("UPDATE latest_metrics SET value = 0.8 WHERE version_id = 3")
        db.execute(
            "INSERT INTO aliases (model_id, alias, version_id, updated_at) VALUES (1, 'production', 3, ?)", (times[4],)
        )
    with pytest.raises(SchemaVersionError, match=PREVIOUS_REVISION):
        Registry(home)
    with Registry(home, upgrade=True) as reg:
        assert [mv.version for mv in reg.versions("legacy")] == [1, 3]
        assert [reg.load(mv.ref) for mv in reg.versions("legacy")] == [{"old": 1}, {"old": 3}]
        assert reg.get("legacy@production").version == 3
        assert [(p.version, p.value) for p in reg.metrics_history("legacy")] == [
            (1, 0.25),
            (3, 0.75),
            (3, 0.8),
            (3, 0.7),
        ]
        assert reg.get("legacy:1").tags == {"team": "cv"} and reg.get("legacy:1").lineage is None
        assert [mv.version for mv in reg.search("legacy", where="params.k >= 2")] == [3]
        assert [mv.version for mv in reg.search("legacy", where="params.solver = 'lbfgs' and params.fit = true")] == [
            1,
            3,
        ]
        assert reg.search("legacy", where="params.depth is not null") == []
        assert [mv.version for mv in reg.search("legacy", where="params.layers is not null")] == [1, 3]
        trail = [(e.action, e.version, e.alias, e.user) for e in reg.events("legacy")]
        assert trail == [
            ("register", 1, None, None),
            ("register", 2, None, None),
            ("register", 3, None, None),
            ("version.delete", 2, None, None),
            ("metrics.log", 3, None, None),
            ("alias.set", 3, "production", None),
        ]
        assert reg.events("legacy")[4].new == {"metrics": {"acc": 0.8, "f1": 0.7}, "step": 5}
        (period,) = reg.alias_history("legacy", "production")
        assert (period.version, period.since.month, period.until) == (3, 5, None)
        reg.set_alias("legacy", "production", 1)
        assert [p.version for p in reg.alias_history("legacy", "production")] == [3, 1]
        assert reg.register("legacy", {"new": True}, format="pickle").version == 4
        assert reg.verify().ok
    assert current_of(home) == migrate.HEAD_REVISION


SEALING_PREVIOUS_REVISION = "034979a6f331"  # the head before the event chain, seals and the imports index


def test_a_catalog_from_before_sealing_upgrades_with_its_trail_chained_and_imports_indexed(tmp_path: Path) -> None:
    """Existing events get their unkeyed links (verify finds the trail intact), inventories get indexed,
    and a keyed reader asks for an explicit seal before trusting any model."""
    from registry import UntrustedArtifact

    home = tmp_path / "old"
    old_catalog(home, SEALING_PREVIOUS_REVISION)
    digest, data = write_blob(home, {"old": True})
    times = ["2026-01-01 00:00:00.000000", "2026-02-01 00:00:00.123456"]
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("INSERT INTO models (id, name, last_version, created_at) VALUES (1, 'legacy', 1, ?)", (times[0],))
        db.execute("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)", (digest, len(data), times[0]))
        db.execute(
            "INSERT INTO versions (id, model_id, version, blob_digest, size, format, params, environment,"
            " created_at, imports) VALUES (1, 1, 1, ?, ?, 'pickle', '{}', '{}', ?, '[\"builtins.dict\"]')",
            (digest, len(data), times[0]),
        )
        db.execute(
            "INSERT INTO events (at, action, model, version, old, new, user_name, host) VALUES"
            " (?, 'register', 'legacy', 1, NULL, ?, 'ana', 'box')",
            (times[0], json.dumps({"checksum": f"sha256:{digest}", "format": "pickle"})),
        )
        db.execute(
            "INSERT INTO events (at, action, model, version, alias, old, new) VALUES"
            " (?, 'alias.set', 'legacy', 1, 'production', NULL, '1')",
            (times[1],),
        )
        db.execute("INSERT INTO aliases (model_id, alias, version_id, updated_at) VALUES (1, 'production', 1, ?)",
                   (times[1],))  # fmt: skip
    with Registry(home, upgrade=True) as reg:
        assert [mv.ref for mv in reg.versions_importing(["builtins.dict"])] == ["legacy:1"]
        assert reg.verify().ok, reg.verify().problems
    with sqlite3.connect(home / "catalog.db") as db:
        links = [row[0] for row in db.execute("SELECT link FROM events ORDER BY id")]
    assert len(links) == 2 and all(link.startswith("u1:") for link in links)
    with Registry(home, signing_key="a-signing-key-for-the-migration-test") as keyed:
        with pytest.raises(UntrustedArtifact, match="never been sealed.*modelshelf seal legacy"):
            keyed.get("legacy@production")
        keyed.seal("legacy")
        assert keyed.get("legacy@production").version == 1
        assert [(p.kind, p.ref) for p in keyed.verify(deep=False).problems] == [("unsigned", "legacy:1")]
    with Registry(home) as reg:
        reg.register("legacy", {"new": True}, format="pickle")
        assert reg.verify().ok


MARKS_PREVIOUS_REVISION = "3a447daecc05"  # the head before damage marks


def test_a_catalog_from_before_damage_marks_upgrades_with_no_blob_marked(tmp_path: Path) -> None:
    """The two new blob columns start empty; repair can mark and load reports the mark right after the upgrade."""
    from registry import DamagedVersion

    home = tmp_path / "old"
    old_catalog(home, MARKS_PREVIOUS_REVISION)
    digest, data = write_blob(home, {"old": True})
    at = "2026-01-01 00:00:00.000000"
    with sqlite3.connect(home / "catalog.db") as db:
        db.execute("INSERT INTO models (id, name, last_version, created_at) VALUES (1, 'legacy', 1, ?)", (at,))
        db.execute("INSERT INTO blobs (digest, size, created_at) VALUES (?, ?, ?)", (digest, len(data), at))
        db.execute(
            "INSERT INTO versions (id, model_id, version, blob_digest, size, format, params, environment,"
            " created_at, imports) VALUES (1, 1, 1, ?, ?, 'pickle', '{}', '{}', ?, '[]')",
            (digest, len(data), at),
        )
    with pytest.raises(SchemaVersionError, match="db upgrade"):
        Registry(home)
    with Registry(home, upgrade=True) as reg:
        assert reg._catalog.damaged_blobs() == [] and reg.load("legacy:1") == {"old": True}
        assert reg.repair().marked == []
        (home / "blobs" / "sha256" / digest[:2] / digest[2:]).unlink()
        assert [ref for ref, _ in reg.repair().marked] == ["legacy:1"]
        with pytest.raises(DamagedVersion, match="legacy:1 is marked damaged"):
            reg.load("legacy:1")
