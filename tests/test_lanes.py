"""The fast lane's policy names real tests: a renamed test or module must not drop silently out of it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from tests import lanes

HERE = Path(__file__).resolve().parent


@pytest.mark.parametrize("module", sorted(lanes.SLOW))
def test_every_test_the_policy_names_is_defined_in_its_module(module: str) -> None:
    path = HERE / module
    assert path.is_file(), f"tests/lanes.py names {module}, which does not exist: update SLOW"
    defined = set(re.findall(r"^def (test_\w+)\(", path.read_text(encoding="utf-8"), flags=re.MULTILINE))
    missing = lanes.SLOW[module] - lanes.ALL - defined
    assert not missing, f"tests/lanes.py names {sorted(missing)} in {module}, which defines no such test: update SLOW"


def test_the_policy_marks_by_module_by_name_and_by_checker_word() -> None:
    assert lanes.is_slow("test_concurrency.py", "test_anything")
    assert lanes.is_slow("test_cli.py", "test_usage_errors_exit_2")
    assert not lanes.is_slow("test_cli.py", "test_version_option")
    assert lanes.is_slow("test_project.py", "test_mypy_is_clean_in_strict_mode")


def test_property_tests_keep_their_full_count_outside_the_fast_lane(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(lanes, "fast_lane", False)
    assert lanes.examples(300) == 300
    monkeypatch.setattr(lanes, "fast_lane", True)
    assert lanes.examples(300) == 25 and lanes.examples(10) == 10
