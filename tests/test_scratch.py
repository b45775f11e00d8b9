"""The tests' own surroundings (tests/scratch.py, tests/conftest.py): where their files go, how many native threads."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from registry.provenance.lineage import capture_lineage
from tests.scratch import ram_temp_root

ROOT = Path(__file__).resolve().parents[1]

#: threadpoolctl's name for a native library → the variable that sizes its pool.
POOL_VARIABLES = {"openmp": "OMP_NUM_THREADS", "openblas": "OPENBLAS_NUM_THREADS", "mkl": "MKL_NUM_THREADS"}


def test_a_directory_with_room_is_chosen_and_one_without_is_not(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.delenv("PYTEST_DEBUG_TEMPROOT", raising=False)
    assert ram_temp_root(str(tmp_path), min_free=0) == str(tmp_path)
    assert ram_temp_root(str(tmp_path), min_free=2**62) is None  # a container's 64 MiB /dev/shm, say
    assert ram_temp_root(str(tmp_path / "missing"), min_free=0) is None
    (tmp_path / "file").write_text("not a directory")
    assert ram_temp_root(str(tmp_path / "file"), min_free=0) is None


def test_a_root_the_caller_chose_wins(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("PYTEST_DEBUG_TEMPROOT", "/tmp")
    assert ram_temp_root(str(tmp_path), min_free=0) is None


def test_temporary_directories_are_under_the_chosen_root(tmp_path: Path, request: pytest.FixtureRequest) -> None:
    root = os.environ.get("PYTEST_DEBUG_TEMPROOT")
    if root is None or request.config.getoption("basetemp", None) is not None:
        pytest.skip("no temporary root was chosen for this run (--basetemp, or no RAM file system with room)")
    assert tmp_path.resolve().is_relative_to(Path(root).resolve())


def test_tests_run_outside_the_checkout_so_registrations_find_no_repository() -> None:
    here = Path.cwd().resolve()
    assert not here.is_relative_to(ROOT), f"the tests run in {here}, inside the checkout"
    assert capture_lineage(here)["git_commit"] is None  # no `git status` per registration


def test_native_thread_pools_have_one_thread_unless_the_caller_chose() -> None:
    import sklearn.ensemble  # noqa: F401  (loads OpenMP and the BLAS behind numpy)
    from threadpoolctl import threadpool_info

    pools = [pool for pool in threadpool_info() if pool["internal_api"] in POOL_VARIABLES]
    assert pools, "threadpoolctl found neither OpenMP nor a BLAS"
    for pool in pools:
        variable = POOL_VARIABLES[pool["internal_api"]]
        assert pool["num_threads"] == int(os.environ[variable]), (pool["filepath"], variable)
