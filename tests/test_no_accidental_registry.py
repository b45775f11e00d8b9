"""A mistyped location never becomes a registry: reads say "no registry at PATH" and create nothing.

``Registry(path)`` still creates a registry on first use (the contract);
``Registry(path, create=False)`` and every command that does not add
versions only open one that exists. Each check lists the directory before
and after, so a stray ``catalog.db``, ``blobs/`` or ``-wal`` would show.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy.exc import DBAPIError

from registry import InvalidCatalogURL, NotFound, ReadOnlyRegistry, Registry, RegistryNotFound
from registry.catalog import parse_url
from registry.catalog.engine import sqlite_path, sqlite_read_only
from tests.cli_helpers import run_cli


def listing(root: Path) -> list[str]:
    """Every path below ``root``, relative to it, sorted: what a test compares before and after."""
    return sorted(str(path.relative_to(root)) for path in root.rglob("*"))


@pytest.fixture
def cwd(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """An empty current directory: relative paths resolve here, and nothing may appear in it."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("MODELSHELF_HOME", raising=False)
    monkeypatch.delenv("MODELSHELF_CATALOG", raising=False)
    monkeypatch.delenv("MODELSHELF_STORE", raising=False)
    return tmp_path


@pytest.mark.parametrize("where", ["nosuchdir", "no/such/deep/dir"])
def test_create_false_on_a_missing_home_creates_nothing_and_names_the_absolute_path(cwd: Path, where: str) -> None:
    with pytest.raises(RegistryNotFound) as caught:
        Registry(where, create=False)
    absolute = cwd / where
    assert f"no registry at {absolute} (no catalog.db there)" in str(caught.value)
    assert "modelshelf register" in str(caught.value)
    assert caught.value.location == str(absolute / "catalog.db")
    assert isinstance(caught.value, NotFound) and isinstance(caught.value, LookupError)
    assert listing(cwd) == []


def test_a_relative_three_slash_url_is_named_absolute_with_the_four_slash_form(cwd: Path) -> None:
    with pytest.raises(RegistryNotFound) as caught:
        Registry(catalog="sqlite:///srv/models/catalog.db", store=str(cwd / "store"), create=False)
    message = str(caught.value)
    assert f"no registry at {cwd / 'srv/models/catalog.db'}" in message
    assert "'sqlite:////srv/models/catalog.db'" in message  # the four-slash form of what was probably meant
    assert listing(cwd) == []


def test_an_absolute_url_gets_no_four_slash_hint(cwd: Path) -> None:
    with pytest.raises(RegistryNotFound) as caught:
        Registry(catalog=f"sqlite:///{cwd}/x/catalog.db", create=False)
    assert "four" not in str(caught.value)
    assert listing(cwd) == []


def test_the_default_still_creates_a_registry(cwd: Path) -> None:
    with Registry("fresh") as reg:
        assert reg.models() == []
    assert (cwd / "fresh" / "catalog.db").is_file()
    with Registry("fresh", create=False) as again:  # now it exists: create=False opens it
        assert again.models() == []


def test_create_false_on_an_empty_database_file_creates_no_schema(cwd: Path) -> None:
    (cwd / "r").mkdir()
    (cwd / "r" / "catalog.db").write_bytes(b"")
    with pytest.raises(RegistryNotFound, match="no modelshelf schema"):
        Registry("r", create=False)
    assert (cwd / "r" / "catalog.db").read_bytes() == b""


def test_read_only_never_creates_either(cwd: Path) -> None:
    with pytest.raises(RegistryNotFound):
        Registry("nosuchdir", read_only=True)
    assert listing(cwd) == []


def test_postgres_scheme_says_what_to_write() -> None:
    with pytest.raises(InvalidCatalogURL, match=r"did you mean postgresql\+psycopg://") as caught:
        Registry(catalog="postgres://me:secret@dbhost/models", create=False)
    assert "secret" not in str(caught.value)  # the suggested URL hides the password too


def test_a_url_naming_no_driver_says_which_one_to_name(tmp_path: Path) -> None:
    import importlib.util

    from registry import CatalogError

    if importlib.util.find_spec("MySQLdb") is not None:
        pytest.skip("mysqlclient is installed here, so mysql:// works as it is")
    with pytest.raises(
        CatalogError, match=r"URL names no driver, so SQLAlchemy picks MySQLdb; write mysql\+pymysql://"
    ):
        Registry(catalog="mysql://root@127.0.0.1/models", store=str(tmp_path), create=False)


def test_sqlite_uri_form_is_a_file_and_mode_ro_implies_read_only(tmp_path: Path) -> None:
    with Registry(tmp_path) as reg:
        reg.register("m", [1], format="pickle")
    url = f"sqlite:///file:{tmp_path / 'catalog.db'}?mode=ro&uri=true"
    assert sqlite_path(parse_url(url)) == tmp_path / "catalog.db"
    assert sqlite_read_only(parse_url(url))
    assert sqlite_read_only(parse_url(f"sqlite:///file:{tmp_path / 'catalog.db'}?immutable=1"))  # uri=true added
    with Registry(catalog=url, store=str(tmp_path)) as ro:
        assert ro.read_only
        assert ro.load("m:1") == [1]
        with pytest.raises(ReadOnlyRegistry):
            ro.set_alias("m", "prod", 1)
    with pytest.raises(InvalidCatalogURL, match="in-memory"):
        parse_url("sqlite:///file::memory:?uri=true")
    with pytest.raises(InvalidCatalogURL, match="in-memory"):
        parse_url(f"sqlite:///file:{tmp_path / 'x.db'}?mode=memory&uri=true")


@pytest.mark.parametrize("parameter", ["mode=ro", "immutable=1"])
def test_sqlite_parameters_on_a_plain_path_take_effect(tmp_path: Path, parameter: str) -> None:
    """``sqlite:////path?mode=ro`` is the natural way to write it; pysqlite alone drops the parameter and writes."""
    with Registry(tmp_path) as reg:
        reg.register("m", [1], format="pickle")
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # no driver warning about an ignored parameter either
        with Registry(catalog=f"sqlite:///{tmp_path / 'catalog.db'}?{parameter}", store=str(tmp_path)) as ro:
            assert ro.read_only
            assert ro.load("m:1") == [1]
            with pytest.raises(ReadOnlyRegistry):
                ro.register("m", [2], format="pickle")
    with Registry(tmp_path) as reg:
        assert [mv.version for mv in reg.versions("m")] == [1]
    missing = tmp_path / "elsewhere" / "catalog.db"
    with pytest.raises(RegistryNotFound):
        Registry(catalog=f"sqlite:///{missing}?mode=ro", store=str(tmp_path))
    assert not missing.parent.exists()  # read-only: nothing is created, even on a first use
    with pytest.raises(InvalidCatalogURL, match="bogus"):
        parse_url(f"sqlite:///{tmp_path / 'catalog.db'}?bogus=1")


def test_a_percent_or_question_mark_in_the_path_survives_read_only(tmp_path: Path) -> None:
    home = tmp_path / "odd ?%23 name"
    with Registry(home) as reg:
        reg.register("m", [1], format="pickle")
    with Registry(home, read_only=True) as ro:
        assert ro.load("m") == [1]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["odd ?%23 name"]  # no file of a misread name


# -- the command line ------------------------------------------------------------

READING_COMMANDS = [
    ["models"],
    ["versions", "m"],
    ["show", "m"],
    ["diff", "m:1", "m:2"],
    ["history", "m"],
    ["search"],
    ["best", "m", "accuracy"],
    ["log", "m"],
    ["verify"],
    ["audit", "--deny", "os.system"],
    ["fetch", "m", "-o", "out.pkl"],
    ["export", "m", "-o", "out.tar"],
    # changes to what exists: nothing to change in a registry that is not there
    ["alias", "set", "m", "prod", "1"],
    ["alias", "rm", "m", "prod"],
    ["tag", "m:1", "k=v"],
    ["delete", "m:1", "--yes"],
    ["seal", "m"],
    ["gc"],
    ["repair", "--dry-run"],
]


@pytest.mark.parametrize("args", READING_COMMANDS, ids=lambda args: " ".join(args[:2]))
def test_commands_on_a_mistyped_home_say_no_registry_and_create_nothing(cwd: Path, args: list[str]) -> None:
    result = run_cli("nosuchdir", *args)
    assert result.exit_code == 1, result.output
    assert f"error: no registry at {cwd / 'nosuchdir'} (no catalog.db there)" in result.stderr
    assert len(result.stderr.strip().splitlines()) == 1
    assert listing(cwd) == []


def test_a_mistyped_catalog_url_creates_nothing_from_the_cli(cwd: Path) -> None:
    result = run_cli(None, "--catalog", "sqlite:///srv/models/catalog.db", "models")
    assert result.exit_code == 1, result.output
    assert "sqlite:////srv/models/catalog.db" in result.stderr
    assert listing(cwd) == []


def test_postgres_scheme_is_a_usage_error_in_the_cli(cwd: Path) -> None:
    result = run_cli(None, "--catalog", "postgres://me@dbhost/models", "models")
    assert result.exit_code == 2, result.output
    assert "did you mean postgresql+psycopg://" in result.stderr


def test_register_creates_a_registry_and_says_where_once(cwd: Path) -> None:
    (cwd / "m.pkl").write_bytes(pickle.dumps([1, 2]))
    first = run_cli("models-dir", "register", "m.pkl", "--name", "m", "--format", "pickle")
    assert first.exit_code == 0, first.output
    assert f"created a new registry: catalog {cwd / 'models-dir' / 'catalog.db'}" in first.stderr
    assert "registered m:1" in first.stdout
    second = run_cli("models-dir", "register", "m.pkl", "--name", "m", "--format", "pickle")
    assert second.exit_code == 0, second.output
    assert "created" not in second.stderr
    shown = run_cli("models-dir", "versions", "m")
    assert shown.exit_code == 0 and "created" not in shown.stderr


def test_read_only_option_is_in_the_help_and_refuses_writes(home: Path) -> None:
    assert "--read-only" in run_cli(None, "--help").output
    with Registry(home) as reg:
        reg.register("m", [1], format="pickle")
    before = (home / "catalog.db").read_bytes()
    for env in ({}, {"MODELSHELF_READ_ONLY": "1"}):
        flag = [] if env else ["--read-only"]
        listed = run_cli(home, *flag, "versions", "m", env=env)
        assert listed.exit_code == 0, listed.output
        refused = run_cli(home, *flag, "alias", "set", "m", "prod", "1", env=env)
        assert refused.exit_code == 1
        assert "opened read-only" in refused.stderr and "nothing was changed" in refused.stderr
    upgrade = run_cli(home, "--read-only", "db", "upgrade")
    assert upgrade.exit_code == 1 and "--read-only" in upgrade.stderr
    assert (home / "catalog.db").read_bytes() == before
    assert "prod" not in run_cli(home, "versions", "m").output


def test_create_false_on_a_server_database_without_schema_creates_no_tables(postgres_url: str, tmp_path: Path) -> None:
    from sqlalchemy import create_engine, inspect

    with pytest.raises(RegistryNotFound, match="no modelshelf schema") as caught:
        Registry(catalog=postgres_url, store=str(tmp_path / "store"), create=False)
    assert "db upgrade" in str(caught.value)
    engine = create_engine(postgres_url)
    try:
        assert inspect(engine).get_table_names() == []
    finally:
        engine.dispose()
    assert not (tmp_path / "store").exists()
    with Registry(catalog=postgres_url, store=str(tmp_path / "store")) as reg:  # the default creates it
        reg.register("m", [1], format="pickle")
    with Registry(catalog=postgres_url, store=str(tmp_path / "store"), read_only=True) as ro:
        assert ro.load("m") == [1]
        with pytest.raises(ReadOnlyRegistry):
            ro.set_tags("m", 1, {"k": "v"})
        # the server refuses too, behind the engine's own refusal: its sessions are read-only
        with ro._catalog.engine.connect() as connection, pytest.raises(DBAPIError, match="read-only transaction"):
            connection.exec_driver_sql("CREATE TABLE intruder (x int)")
    engine = create_engine(postgres_url)
    try:
        assert "intruder" not in inspect(engine).get_table_names()
    finally:
        engine.dispose()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    from tests.servers import fresh_database

    yield from fresh_database("postgresql")
