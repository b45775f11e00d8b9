"""A cold process that opens a registry and loads a version imports only what that takes.

Each check runs a fresh interpreter (the only way to see what an import
costs) on a real registry; how long it takes is the benchmark's business
(``python -m benchmarks --only cold``), which modules it pulls in is this test's.
"""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

from registry import Registry

#: Never needed to open a registry and load a version: SQLAlchemy (a SQLite catalog opened without a key is read
#: by registry.catalog.lite), migrations, the CLI, the UI, object stores; nor what only registering needs.
NOT_ON_THE_LOAD_PATH = (
    "sqlalchemy",
    "alembic",
    "sqlalchemy.orm",
    "click",
    "rich",
    "lark",
    "fsspec",
    "starlette",
    "jinja2",
    "pandas",
    "registry.drafting",
    "registry.gates",
    "registry.query",
    "registry.maintenance",
    "registry.bundles",
)


def modules_after(code: str) -> set[str]:
    script = f"import json, sys\n{code}\nprint(json.dumps(sorted(sys.modules)))"
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, check=True).stdout
    return set(json.loads(out.splitlines()[-1]))


def heavy_in(modules: set[str], names: tuple[str, ...]) -> list[str]:
    return sorted(name for name in names if name in modules)


def test_a_cold_load_imports_no_migration_cli_or_orm_code(tmp_path: Path) -> None:
    with Registry(tmp_path / "reg") as reg:
        reg.register("m", {"weights": [1.0, 2.0]})
    loaded = modules_after(f"from registry import Registry\nRegistry({str(tmp_path / 'reg')!r}).load('m')")
    assert heavy_in(loaded, NOT_ON_THE_LOAD_PATH) == []
    assert "registry.catalog.lite" in loaded  # the test saw a real load, not an import error swallowed somewhere


def test_a_keyed_registry_loads_through_the_full_catalog(tmp_path: Path) -> None:
    """With a signing key every lookup checks the model's seal, which needs the whole catalog."""
    with Registry(tmp_path / "reg", signing_key="k" * 32) as reg:
        reg.register("m", {"weights": [1.0]})
    code = f"from registry import Registry\nRegistry({str(tmp_path / 'reg')!r}, signing_key='k' * 32).load('m')"
    loaded = modules_after(code)
    assert "sqlalchemy" in loaded and "registry.catalog.lite" not in loaded
    assert heavy_in(loaded, ("alembic", "sqlalchemy.orm", "click", "rich")) == []


def test_the_catalog_schema_needs_no_orm() -> None:
    loaded = modules_after("import registry.catalog.schema, registry.catalog.search")
    assert "sqlalchemy.orm" not in loaded
