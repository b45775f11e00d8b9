"""The README is the front door: its commands and every snippet in it must work."""

from __future__ import annotations

import contextlib
import io
import json
import os
import re
import shutil
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


def section(title: str) -> str:
    """The text of the README's ``## title`` section, up to the next one."""
    start = README.index(f"\n## {title}\n")
    end = README.find("\n## ", start + 1)
    return README[start : None if end < 0 else end]


COMMAND_LINE = section("Command line")


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
    assert "serve: {'predictions': [0], 'model': 'iris:1'}" in printed and "refused: 422 SIGNATURE_MISMATCH" in printed
    assert "moved: swapped {'predictions': [2], 'model': 'iris:2'}" in printed  # the alias moved: so did the server
    assert "moved: refused iris:2" in printed and "trail: [(3, 2, 'signature')]" in printed
    assert "healed: {'weights': [1, 2, 3]} True" in printed
    assert len(list((tmp_path / "scratch" / "quarantine").iterdir())) == 1  # set aside, not deleted
    assert "typo: RegistryNotFound True" in printed and not (tmp_path / "modles").exists()
    assert "read-only: set_alias" in printed
    assert "canary: equal 64 ['predict', 'predict_proba', 'decision_function']" in printed
    assert "none: no canary" in printed and "load: CanaryNotFound" in printed
    assert "preflight: 4 ()" in printed and "migrated: iris-knn:2 iris-knn:1 ('production',)" in printed
    assert "mapped: False (3,)" in printed and "not mapped: mmap=True maps the raw numpy arra" in printed
    assert "compressed: True [0.0, 0.0]" in printed and "refused: compression level 12 for lzma" in printed

    for body in blocks("sh")[1:]:
        if body in COMMAND_LINE:
            continue  # run, and its outputs checked, by test_the_command_line_section_runs_top_to_bottom
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


def _json_keys(data: object) -> set[str]:
    """The keys of a JSON object, or of the first object of a list of them."""
    if isinstance(data, list) and data and isinstance(data[0], dict):
        data = data[0]
    return set(data) if isinstance(data, dict) else set()


@pytest.mark.slow
def test_the_command_line_section_runs_top_to_bottom(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every command line of "Command line" runs, in order, on the registry the Quickstart makes; what it prints
    has the shape the section shows, and its ``--json`` form has only keys the section documents."""
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    env = {**_env(), "MODELSHELF_CACHE": str(tmp_path / "cache")}
    monkeypatch.setenv("MODELSHELF_CACHE", env["MODELSHELF_CACHE"])
    namespace: dict[str, object] = {"__name__": "__readme__"}  # the Quickstart's blocks share their names
    quickstart = [body for language, body in BLOCK.findall(section("Quickstart")) if language == "python"]
    with contextlib.redirect_stdout(io.StringIO()):
        for number, code in enumerate(quickstart, 1):
            exec(compile(code, f"README.md Quickstart block {number}", "exec"), namespace)

    (session,) = [body for language, body in BLOCK.findall(COMMAND_LINE) if language == "sh"]
    documented = set(re.findall(r"`([a-z_]+)`", COMMAND_LINE[COMMAND_LINE.index("**JSON**") :]))

    def run(command: str, cwd: Path) -> subprocess.CompletedProcess[str]:
        result = subprocess.run(command, shell=True, capture_output=True, text=True, env=env, cwd=cwd, timeout=120)
        assert result.returncode == 0, (command, result.stderr)
        assert "Traceback" not in result.stderr, (command, result.stderr)
        return result

    printed: dict[str, str] = {}
    for number, command in enumerate(commands(session)):
        if "--help" not in command and "--json" not in command:
            scratch = tmp_path / f"json-{number}"  # the same state, so that the plain run below is unaffected
            shutil.copytree(work, scratch)
            keys = _json_keys(json.loads(run(f"{command} --json", scratch).stdout))
            assert keys and keys <= documented, (command, keys - documented)
        printed[command] = run(command, work).stdout
        if "--json" in command:
            keys = _json_keys(json.loads(printed[command]))
            assert keys and keys <= documented, (command, keys - documented)

    # the table the section shows for `versions`, against what the command printed (tab-separated in a pipe)
    shown = next(body for language, body in BLOCK.findall(COMMAND_LINE) if language == "text")
    header = next(line for line in shown.splitlines() if line.startswith("┃"))
    rows = [
        [cell.strip() for cell in line.strip("│").split("│")] for line in shown.splitlines() if line.startswith("│")
    ]
    columns = [cell.strip() for cell in header.strip("┃").split("┃")]
    got_header, *got_rows = printed["modelshelf --home models versions iris-knn"].splitlines()
    assert got_header.split("\t") == columns
    got = [line.split("\t") for line in got_rows]
    assert [(row[0], row[2], row[4]) for row in got] == [(row[0], row[2], row[4]) for row in rows]
    assert all(re.fullmatch(r"\d{4}-\d\d-\d\d \d\d:\d\d:\d\d", row[1]) for row in got)
