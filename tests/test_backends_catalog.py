"""Search semantics, lineage and the schema upgrade on every catalog engine: SQLite, PostgreSQL and MariaDB."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime
from pathlib import Path

import pytest
from alembic import command
from sqlalchemy import JSON, column, create_engine, insert, inspect, table, text

from registry import Registry
from registry.catalog import migrate
from tests.old_catalogs import write_blob
from tests.test_backends import backend, catalog_url, reg  # noqa: F401  (the fixtures, shared)

PREVIOUS_REVISION = "7bba9ce21c3f"


def refs(registry: Registry, **query: object) -> list[str]:
    return [mv.ref for mv in registry.search(**query)]


def test_text_compares_exactly_and_like_escapes_alike(reg: Registry) -> None:  # noqa: F811
    values = ["cv", "CV", "a%b", "a_b", "axb", "a\\b", "Éx"]
    for value in values:
        reg.register("t", [value], format="pickle", tags={"v": value}, params={"s": value})
    assert refs(reg, where="tags.v = 'cv'") == ["t:1"] and refs(reg, where="params.s = 'CV'") == ["t:2"]
    assert refs(reg, where="tags.v in ('cv', 'x')") == ["t:1"]
    assert refs(reg, where="tags.v like 'cv'") == ["t:1", "t:2"]  # like ignores the case of ASCII letters
    assert refs(reg, where="tags.v like 'a\\%b'") == ["t:3"] and refs(reg, where="tags.v like 'a\\_b'") == ["t:4"]
    assert refs(reg, where="tags.v like 'a_b'") == ["t:3", "t:4", "t:5", "t:6"]
    assert refs(reg, where="tags.v like 'a\\\\b'") == ["t:6"]
    assert refs(reg, where="tags.v = 'Éx'") == ["t:7"] and refs(reg, where="tags.v = 'éx'") == []
    assert refs(reg, where="tags.v > 'a' and tags.v < 'b'") == ["t:3", "t:4", "t:5", "t:6"]  # byte order
    assert reg.search(order_by="tags.v desc", limit=1)[0].ref == "t:7"


def test_keys_differing_in_case_or_trailing_space_are_different_keys(reg: Registry) -> None:  # noqa: F811
    """MySQL/MariaDB's default collation would merge them (and lose a metric value); no engine may."""
    mv = reg.register(
        "k",
        [1],
        format="pickle",
        params={"k": 1, "K": 2, "k ": 3, "é": 4, "e": 5},
        metrics={"acc": 0.1, "ACC": 0.9},
        tags={"Team": "a", "team": "b"},
    )
    stored = reg.get("k")
    assert stored.params == mv.params and stored.metrics == {"acc": 0.1, "ACC": 0.9}
    assert stored.tags == {"Team": "a", "team": "b"}
    assert refs(reg, where="metrics.ACC > 0.5") == ["k:1"] and refs(reg, where="metrics.acc > 0.5") == []
    assert refs(reg, where="params.K = 2") == ["k:1"] and refs(reg, where="params.`k ` = 1") == []
    assert reg.best("k", "ACC").ref == "k:1"


EXACT_COLUMNS = [
    ("models", "name"),
    ("tags", "key"),
    ("tags", "value"),
    ("metrics", "key"),
    ("latest_metrics", "key"),
    ("param_values", "key"),
    ("param_values", "text"),
    ("lineage", "script"),
    ("lineage", "user_name"),
    ("events", "model"),
]


def assert_exact_collations(url: str) -> None:
    """Read each searched column's collation off the server (``alembic check`` does not compare them)."""
    engine = create_engine(url)
    try:
        if engine.dialect.name == "sqlite":
            return  # SQLite compares bytes
        expected = "C" if engine.dialect.name == "postgresql" else "utf8mb4_nopad_bin"
        with engine.connect() as connection:
            schema = connection.execute(text("SELECT current_schema()" if expected == "C" else "SELECT DATABASE()"))
            where = schema.scalar_one()
            for table_name, column_name in EXACT_COLUMNS:
                found = connection.execute(
                    text(
                        "SELECT collation_name FROM information_schema.columns "
                        "WHERE table_schema = :schema AND table_name = :t AND column_name = :c"
                    ),
                    {"schema": where, "t": table_name, "c": column_name},
                ).scalar_one()
                assert found == expected, (table_name, column_name, found)
    finally:
        engine.dispose()


def test_searched_columns_compare_exactly_in_a_new_catalog(reg: Registry, catalog_url: str) -> None:  # noqa: F811
    assert_exact_collations(catalog_url)
    assert reg.verify(deep=False).ok
    undo = {
        "postgresql": 'ALTER TABLE tags ALTER COLUMN value TYPE TEXT COLLATE "default"',
        "mysql": "ALTER TABLE tags MODIFY value TEXT COLLATE utf8mb4_general_ci NOT NULL",
    }.get(reg._catalog.engine.dialect.name)
    if undo is None:
        return  # SQLite has no collation to lose
    with reg._catalog.engine.begin() as connection:
        connection.execute(text(undo))  # what a hand-made "fix" might do
    report = reg.verify(deep=False)
    assert not report.ok and any("tags" in p.detail and "value" in p.detail for p in report.problems)


def test_model_names_differing_in_case_are_different_models(reg: Registry) -> None:  # noqa: F811
    reg.register("iris", [1], format="pickle")
    reg.register("Iris", [2], format="pickle")
    assert reg.load("iris") == [1] and reg.load("Iris") == [2]
    assert [e.version for e in reg.events("Iris")] == [1]


def test_ordering_by_every_lineage_key(reg: Registry, iris) -> None:  # noqa: F811
    base = reg.register("base", [0], format="pickle")
    reg.register("child", [1], format="pickle", parent=base, data=iris)
    reg.register("child", [2], format="pickle", parent="child:1")
    for key in ("data", "commit", "dirty", "script", "user", "host", "modelshelf_version", "parent"):
        found = refs(reg, order_by=f"lineage.{key} desc")
        assert sorted(found) == ["base:1", "child:1", "child:2"], key
    assert refs(reg, order_by="lineage.parent") == ["child:1", "child:2", "base:1"]  # parents base:1 < child:1
    assert refs(reg, order_by="lineage.data")[0] == "child:1"
    assert reg.ancestors("child:2") == ["child:1", "base:1"]  # one recursive query on every engine


def test_a_sha256_repository_records_its_64_digit_commit(backend: tuple[str, str], tmp_path: Path) -> None:  # noqa: F811
    repo = tmp_path / "repo"
    repo.mkdir()
    git = ["git", "-c", "user.name=t", "-c", "user.email=t@example.com", "-C", str(repo)]
    made = subprocess.run([*git, "init", "-q", "--object-format=sha256"], capture_output=True)
    if made.returncode != 0:
        pytest.skip(f"this git cannot make SHA-256 repositories: {made.stderr.decode().strip()}")
    script = repo / "train.py"
    script.write_text(
        "import sys\nfrom registry import Registry\n"
        "with Registry(catalog=sys.argv[1], store=sys.argv[2]) as reg:\n"
        "    print(reg.register('m', [1], format='pickle').lineage.git_commit)\n"
    )
    subprocess.run([*git, "add", "train.py"], check=True)
    subprocess.run([*git, "commit", "-q", "-m", "one"], check=True)
    commit = subprocess.run([*git, "rev-parse", "HEAD"], check=True, capture_output=True, text=True).stdout.strip()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    out = subprocess.run([sys.executable, str(script), *backend], capture_output=True, text=True, env=env)
    assert out.returncode == 0, out.stderr
    assert len(commit) == 64 and out.stdout.strip() == commit
    with Registry(catalog=backend[0], store=backend[1]) as reg:  # noqa: F811
        assert reg.get("m").lineage.git_commit == commit
        assert refs(reg, where=f"lineage.commit = '{commit[:10].upper()}'") == ["m:1"]


def test_the_previous_schema_upgrades_with_its_data_and_downgrades(catalog_url: str, tmp_path: Path) -> None:  # noqa: F811
    """The previous revision's catalog, rows and all, on every engine; then back down and up again."""
    engine = create_engine(catalog_url)
    with engine.begin() as connection:
        command.upgrade(migrate.alembic_config(connection), PREVIOUS_REVISION)
    store = tmp_path / "store"
    digest, data = write_blob(store, {"old": True})
    now = datetime(2026, 1, 1)  # noqa: DTZ001  (the catalog stores naive UTC)

    def row(connection, table_name: str, **values: object) -> None:
        """Insert one row into a table of the previous schema, named literally (no live ORM class)."""
        columns = [column(key, JSON() if key in ("params", "environment") else None) for key in values]
        connection.execute(insert(table(table_name, *columns)), values)

    def version_id(connection, number: int) -> int:
        return connection.execute(text(f"SELECT id FROM versions WHERE version = {number}")).scalar_one()

    with engine.begin() as connection:
        row(connection, "models", name="legacy", last_version=2, created_at=now)
        model = connection.execute(text("SELECT id FROM models WHERE name = 'legacy'")).scalar_one()
        row(connection, "blobs", digest=digest, size=len(data), created_at=now)
        for number in (1, 2):
            row(connection, "versions", model_id=model, version=number, blob_digest=digest, size=len(data),
                format="pickle", params={"k": number, "name": "x"}, environment={}, created_at=now)  # fmt: skip
        row(connection, "aliases", model_id=model, alias="production", version_id=version_id(connection, 2),
            updated_at=now)  # fmt: skip
        row(connection, "tags", version_id=version_id(connection, 1), key="team", value="CV")
    engine.dispose()
    with Registry(catalog=catalog_url, store=store, upgrade=True) as reg:  # noqa: F811
        assert reg.load("legacy:1") == {"old": True} == reg.load("legacy@production")
        assert refs(reg, where="params.k = 2 and params.name = 'x'") == ["legacy:2"]
        assert refs(reg, where="tags.team = 'CV'") == ["legacy:1"] and refs(reg, where="tags.team = 'cv'") == []
        assert [(e.action, e.version) for e in reg.events("legacy")] == [
            ("register", 1),
            ("register", 2),
            ("alias.set", 2),
        ]
        reg.register("legacy", [3], format="pickle", tags={"team": "cv"}, parent="legacy:1")
        assert reg.verify().ok
    assert_exact_collations(catalog_url)
    engine = create_engine(catalog_url)
    with engine.begin() as connection:
        config = migrate.alembic_config(connection)
        command.downgrade(config, PREVIOUS_REVISION)
        tables = set(inspect(connection).get_table_names())
        assert {"events", "lineage", "param_values"}.isdisjoint(tables) and "versions" in tables
        assert "input_signature" not in {c["name"] for c in inspect(connection).get_columns("versions")}
        command.upgrade(config, "head")
        command.check(config)
    engine.dispose()
    with Registry(catalog=catalog_url, store=store) as reg:
        assert [mv.version for mv in reg.versions("legacy")] == [1, 2, 3] and reg.load("legacy:3") == [3]


def test_no_child_is_registered_after_its_parent_is_deleted(reg: Registry) -> None:  # noqa: F811
    """Writers deriving from a version while another deletes it: each child was recorded before the deletion."""
    import threading

    from registry import VersionNotFound

    reg.register("base", [0], format="pickle")
    under_way = threading.Semaphore(0)
    refused: list[int] = []

    def derive(writer: int) -> None:
        for i in range(200):
            try:
                reg.register(f"child-{writer % 2}", [writer, i], format="pickle", parent="base:1")
            except VersionNotFound:
                refused.append(writer)
                return
            if i == 2:
                under_way.release()

    threads = [threading.Thread(target=derive, args=(w,)) for w in range(4)]
    for thread in threads:
        thread.start()
    for _ in threads:
        under_way.acquire(timeout=30)  # every writer has registered children: delete while they go on
    reg.delete_version("base", 1)
    for thread in threads:
        thread.join()
    events = reg.events()
    deleted = next(e.id for e in events if e.action == "version.delete")
    children = [e for e in events if e.action == "register" and e.model.startswith("child-")]
    assert all(e.id < deleted and e.new["parent"] == "base:1" for e in children)
    assert len(children) >= 12 and len(refused) >= 1  # the deletion landed while writers were deriving
