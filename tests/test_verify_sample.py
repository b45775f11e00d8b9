"""verify --sample i/N re-hashes one fixed slice of the blobs; --max-duration bounds a run and says what it left."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from registry import Registry
from registry.cli import cli
from tests.cli_helpers import run_cli

N = 4


@pytest.fixture(scope="module")
def sixteen(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A registry of 16 small versions over three models, registered once for the module."""
    source = tmp_path_factory.mktemp("sixteen")
    with Registry(source) as reg:
        for k in range(16):
            reg.register(f"m{k % 3}", {"k": k}, format="pickle")
    return source


@pytest.fixture
def many(sixteen: Path, home: Path) -> Iterator[Registry]:
    """This test's own copy of those 16 versions, at ``home`` (catalog and blobs copied as they are)."""
    shutil.rmtree(home)
    shutil.copytree(sixteen, home)
    with Registry(home) as reg:
        yield reg


def digests(reg: Registry) -> set[str]:
    return {mv.digest for name in reg.models() for mv in reg.versions(name)}


def test_across_n_slices_every_blob_is_hashed_exactly_once(many: Registry) -> None:
    slices = [many.verify(sample=(i, N)).hashed for i in range(1, N + 1)]
    flat = [digest for part in slices for digest in part]
    assert len(flat) == len(set(flat)) == 16 and set(flat) == digests(many)
    assert all(part for part in slices)  # 16 random digests over 4 slices: none empty here
    assert [many.verify(sample=(i, N)).hashed for i in range(1, N + 1)] == slices  # stable from run to run
    assert sorted(many.verify().hashed) == sorted(flat)  # a full deep check hashes them all once


def test_a_damaged_blob_is_found_by_exactly_its_slice(many: Registry) -> None:
    mv = many.get("m1")
    path = many._store.path_of(mv.digest)
    path.chmod(0o644)
    data = bytearray(path.read_bytes())
    data[-3] ^= 1
    path.write_bytes(bytes(data))
    found = []
    for i in range(1, N + 1):
        report = many.verify(sample=(i, N))
        kinds = [(p.kind, p.ref) for p in report.problems]
        if kinds:
            assert kinds == [("checksum_mismatch", mv.ref)] and not report.ok
            found.append(i)
        else:
            assert report.ok
    assert found == [int(mv.digest[:8], 16) % N + 1]


def test_max_duration_stops_early_reports_what_was_not_reached_and_is_not_an_error(many: Registry) -> None:
    report = many.verify(max_duration=0)  # at least one blob is hashed, so a run always makes progress
    assert report.ok and report.stopped_early
    assert len(report.hashed) == 1 and len(report.not_reached) == 15
    every = {mv.ref for name in many.models() for mv in many.versions(name)}
    hashed_ref = {mv.ref for name in many.models() for mv in many.versions(name) if mv.digest in report.hashed}
    assert set(report.not_reached) == every - hashed_ref
    roomy = many.verify(max_duration=3600)
    assert not roomy.stopped_early and roomy.not_reached == [] and len(roomy.hashed) == 16


def test_the_cli_takes_sample_and_max_duration_in_text_and_json(many: Registry, home: Path) -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["--home", str(home), "verify", "--sample", "2/4"])
    assert result.exit_code == 0, result.output
    hashed = len(many.verify(sample=(2, N)).hashed)
    assert f"slice 2/4: {hashed} blobs re-hashed" in result.output
    result = runner.invoke(cli, ["--home", str(home), "verify", "--sample", "1/1", "--max-duration", "0", "--json"])
    assert result.exit_code == 0, result.output
    found = json.loads(result.stdout)
    assert found["ok"] is True and found["sample"] == "1/1" and found["stopped_early"] is True
    assert found["hashed"] == 1 and len(found["not_reached"]) == 15
    result = runner.invoke(cli, ["--home", str(home), "verify", "--max-duration", "0"])
    assert result.exit_code == 0 and "stopped early after --max-duration 0 s: 1 blob re-hashed" in result.output


@pytest.mark.parametrize("bad", ["0/3", "4/3", "a/b", "1.5/3", "3", "-1/2", "1/0", "/"])
def test_bad_sample_values_are_usage_errors(many: Registry, home: Path, bad: str) -> None:
    result = run_cli(home, "verify", "--sample", bad)
    assert result.exit_code == 2
    assert "--sample" in result.output and "1 <= i <= N" in result.output


def test_sample_with_quick_is_a_usage_error(many: Registry, home: Path) -> None:
    result = run_cli(home, "verify", "--quick", "--sample", "1/2")
    assert result.exit_code == 2 and "--quick" in result.output


@pytest.mark.parametrize("bad", [(0, 3), (4, 3), (1,), "1/3", (True, 2), (1.0, 2), None.__class__])
def test_the_python_api_checks_sample(many: Registry, bad: object) -> None:
    with pytest.raises(ValueError, match=r"sample must be \(i, n\)"):
        many.verify(sample=bad)  # type: ignore[arg-type]


def test_the_python_api_checks_max_duration_and_deep(many: Registry) -> None:
    for bad in (-1, "10", True, float("nan")):
        with pytest.raises(ValueError, match="max_duration"):
            many.verify(max_duration=bad)  # type: ignore[arg-type]
    with pytest.raises(ValueError, match="deep=True"):
        many.verify(deep=False, sample=(1, 2))
