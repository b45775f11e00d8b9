"""The README is the front door: its commands and every snippet in it must work."""

from __future__ import annotations

import contextlib
import io
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]
README = (ROOT / "README.md").read_text()
BLOCK = re.compile(r"^```(\w*)\n(.*?)^```$", re.MULTILINE | re.DOTALL)
BLOCKS = [(language, body) for language, body in BLOCK.findall(README)]


def blocks(language: str) -> list[str]:
    return [body for lang, body in BLOCKS if lang == language]


def commands(body: str) -> list[str]:
    return [line.strip() for line in body.splitlines() if line.strip() and not line.startswith("#")]


def test_every_block_declares_a_language() -> None:
    assert all(language in {"python", "sh", "text"} for language, _ in BLOCKS), [lang for lang, _ in BLOCKS]


def test_readme_opens_with_what_it_is_and_exactly_two_commands() -> None:
    intro, _, _ = README.partition("```")
    assert "model registry" in intro
    demo, test = commands(blocks("sh")[0])  # exactly two
    assert demo.endswith("modelshelf demo") and "pip install" in demo
    assert "pytest" in test and "pip install" in test


def test_ci_runs_the_readme_test_command() -> None:
    _, test = commands(blocks("sh")[0])
    assert test in (ROOT / ".ci" / "run").read_text()


def _env() -> dict[str, str]:
    bin_dir = str(Path(sys.executable).parent)
    return {**os.environ, "PATH": bin_dir + os.pathsep + os.environ.get("PATH", "")}


@pytest.mark.slow
def test_python_snippets_run_in_order_and_shell_snippets_after_them(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("MODELSHELF_CACHE", str(tmp_path / "cache"))  # never the user's own cache
    namespace: dict[str, object] = {"__name__": "__readme__"}
    output = io.StringIO()
    for number, code in enumerate(blocks("python"), 1):
        with contextlib.redirect_stdout(output):
            exec(compile(code, f"README.md python block {number}", "exec"), namespace)
    printed = output.getvalue()
    assert re.search(r"^iris-knn:1 sha256:[0-9a-f]{12} 1$", printed, re.MULTILINE) and "iris-knn:3" in printed
    assert "iris-knn:1 joblib 9" in printed and "iris-knn:2 pickle 9" in printed  # format=, read back by load
    assert "no alias 'canary'" in printed and "invalid model name '../etc'" in printed
    assert "sklearn.neighbors._classification.KNeighborsClassifier" in printed
    assert "True 3 []" in printed  # verify: ok, three versions, no problems
    assert "search: ['iris-knn:1', 'iris-knn:2']" in printed and "best: iris-knn:1" in printed
    assert "across models: 3" in printed
    assert "lineage: iris-knn:2 (150, 4) True" in printed and "ancestors: ['iris-knn:2']" in printed
    assert "trained on the same data: ['iris-knn:4']" in printed
    assert "signature: 4 (0, 1, 2) classification" in printed and "expected a 2-D input" in printed
    assert "event: metrics.log 2 None None {'metrics': {'accuracy': 0.95}, 'step': 1}" in printed
    assert "event: register 4 None None {'checksum': 'sha256:" in printed and "'parent': 'iris-knn:2'}" in printed
    assert "production: 2 True None" in printed and "now: 2" in printed
    assert (tmp_path / "models" / "catalog.db").exists()
    assert "nightly: ['checksum_mismatch']" in printed and "marked: ['tiny:1']" in printed
    assert "load: DamagedVersion tiny:1 True" in printed
    assert "ui: 200 True 403" in printed  # the web UI's versions page; writes refused without --allow-writes
    assert "healed: {'weights': [1, 2, 3]} True" in printed
    assert len(list((tmp_path / "scratch" / "quarantine").iterdir())) == 1  # set aside, not deleted
    assert "typo: RegistryNotFound True" in printed and not (tmp_path / "modles").exists()
    assert "read-only: set_alias" in printed

    for body in blocks("sh")[1:]:
        for command in commands(body):
            result = subprocess.run(command, shell=True, capture_output=True, text=True, env=_env(), timeout=120)
            assert result.returncode == 0, (command, result.stderr)


@pytest.mark.slow
def test_the_demo_command_runs(tmp_path: Path) -> None:
    demo, _ = commands(blocks("sh")[0])
    command = demo.split("&&")[-1].strip()  # the install part is exercised by CI's fresh environment
    result = subprocess.run(command, shell=True, capture_output=True, text=True, cwd=tmp_path, env=_env(), timeout=180)
    assert result.returncode == 0, result.stderr
    assert "predictions identical" in result.stdout
