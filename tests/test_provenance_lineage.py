"""Lineage captured from real git repositories (training-data fingerprints: test_provenance_fingerprint.py).

The repositories are made in ``tmp_path`` with the real ``git`` binary, and
``HOME`` points at an empty directory so no global git configuration (a
default branch name, hooks, ``safe.directory``) changes what is tested.
"""

from __future__ import annotations

import getpass
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import types
from importlib import metadata
from pathlib import Path

import pytest

from registry.provenance import lineage
from registry.provenance.lineage import capture_lineage, identity

ROOT = Path(__file__).parents[1]


@pytest.fixture(autouse=True)
def clean_git_environment(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.setenv("GIT_CONFIG_NOSYSTEM", "1")
    lineage._repos.clear()


def git(cwd: Path, *args: str) -> str:
    """Run the real git as a user with a name and no other configuration."""
    identity_args = ["-c", "user.name=Test", "-c", "user.email=test@example.com", "-c", "init.defaultBranch=main"]
    proc = subprocess.run(["git", *identity_args, *args], cwd=cwd, capture_output=True, text=True, check=True)
    return proc.stdout.strip()


def make_repo(path: Path, commits: int = 1) -> Path:
    path.mkdir(parents=True)
    git(path, "init", "-q")
    for i in range(commits):
        (path / "train.py").write_text(f"print({i})\n")
        git(path, "add", "train.py")
        git(path, "commit", "-q", "-m", f"commit {i}")
    return path


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    return make_repo(tmp_path / "repo")


def head(path: Path) -> str:
    return git(path, "rev-parse", "HEAD")


# --- git commit and dirty flag ---------------------------------------------------------------------------------------


def test_commit_is_read_from_the_work_tree_and_clean(repo: Path) -> None:
    (repo / "src" / "deep").mkdir(parents=True)
    for start in (repo, repo / "src" / "deep", repo / "train.py", str(repo / "src")):
        found = capture_lineage(start)
        assert found["git_commit"] == head(repo) and len(found["git_commit"]) == 40
        assert found["git_dirty"] is False


def test_modified_tracked_file_is_dirty(repo: Path) -> None:
    (repo / "train.py").write_text("print('changed')\n")
    assert capture_lineage(repo)["git_dirty"] is True


def test_staged_change_is_dirty(repo: Path) -> None:
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    assert capture_lineage(repo)["git_dirty"] is True


def test_untracked_and_touched_files_keep_it_clean(repo: Path) -> None:
    (repo / "notes.txt").write_text("not tracked\n")
    later = time.time() + 5
    os.utime(repo / "train.py", (later, later))  # stat data changes, content does not
    assert capture_lineage(repo)["git_dirty"] is False


def test_commit_and_dirty_are_read_again_on_every_call(repo: Path) -> None:
    first = capture_lineage(repo)
    (repo / "train.py").write_text("print('next')\n")
    assert capture_lineage(repo)["git_dirty"] is True
    git(repo, "commit", "-q", "-am", "next")
    second = capture_lineage(repo)
    assert second["git_commit"] == head(repo) != first["git_commit"]
    assert second["git_dirty"] is False


def test_detached_head(tmp_path: Path) -> None:
    repo = make_repo(tmp_path / "repo", commits=2)
    first = git(repo, "rev-parse", "HEAD~1")
    git(repo, "checkout", "-q", "--detach", first)
    assert (repo / ".git" / "HEAD").read_text().strip() == first
    assert capture_lineage(repo)["git_commit"] == first


def test_packed_refs_and_a_newer_loose_ref(repo: Path) -> None:
    git(repo, "pack-refs", "--all")
    assert not (repo / ".git" / "refs" / "heads" / "main").exists()
    assert capture_lineage(repo)["git_commit"] == head(repo)
    (repo / "train.py").write_text("print('after packing')\n")
    git(repo, "commit", "-q", "-am", "after packing")  # writes a loose ref, which wins over packed-refs
    assert capture_lineage(repo)["git_commit"] == head(repo)


def test_linked_worktree(repo: Path, tmp_path: Path) -> None:
    tree = tmp_path / "tree"
    git(repo, "worktree", "add", "-q", "-b", "other", str(tree))
    (tree / "train.py").write_text("print('other branch')\n")
    git(tree, "commit", "-q", "-am", "on other")
    assert (tree / ".git").is_file()
    found = capture_lineage(tree)
    assert found["git_commit"] == head(tree) != head(repo)
    assert found["git_dirty"] is False
    (tree / "train.py").write_text("print('dirty')\n")
    assert capture_lineage(tree)["git_dirty"] is True
    assert capture_lineage(repo)["git_dirty"] is False


def test_submodule(tmp_path: Path) -> None:
    library = make_repo(tmp_path / "library", commits=2)
    outer = make_repo(tmp_path / "outer")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    assert (outer / "lib" / ".git").is_file()
    assert capture_lineage(outer / "lib")["git_commit"] == head(library) != head(outer)


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_symlink_into_a_repository_is_followed(repo: Path, tmp_path: Path) -> None:
    (repo / "notebooks").mkdir()
    link = tmp_path / "elsewhere" / "notebooks"
    link.parent.mkdir()
    link.symlink_to(repo / "notebooks", target_is_directory=True)
    assert capture_lineage(link)["git_commit"] == head(repo)  # found from the real path, as git finds it


def test_repository_without_commits(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    git(empty, "init", "-q")
    (empty / "a.py").write_text("x = 1\n")
    git(empty, "add", "a.py")
    found = capture_lineage(empty)
    assert found["git_commit"] is None and found["git_dirty"] is None


def test_outside_any_repository(tmp_path: Path) -> None:
    plain = tmp_path / "plain"
    plain.mkdir()
    if subprocess.run(["git", "rev-parse"], cwd=plain, capture_output=True).returncode == 0:
        pytest.skip("the temporary directory is itself inside a git repository")
    found = capture_lineage(plain)
    assert found["git_commit"] is None and found["git_dirty"] is None


def test_git_missing_from_path_still_reads_the_commit(repo: Path, tmp_path: Path, monkeypatch) -> None:
    empty_bin = tmp_path / "bin"
    empty_bin.mkdir()
    expected = head(repo)
    monkeypatch.setenv("PATH", str(empty_bin))
    found = capture_lineage(repo)
    assert found["git_commit"] == expected
    assert found["git_dirty"] is None


def fake_git(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, body: str) -> None:
    bin_dir = tmp_path / "fake-bin"
    bin_dir.mkdir()
    script = bin_dir / "git"
    script.write_text(f"#!/bin/sh\n{body}\n")
    script.chmod(0o755)
    monkeypatch.setenv("PATH", str(bin_dir))


def test_a_git_that_hangs_is_cut_off(repo: Path, tmp_path: Path, monkeypatch) -> None:
    sleep = shutil.which("sleep")
    assert sleep is not None
    fake_git(tmp_path, monkeypatch, f"{sleep} 30")  # a child of the shell, holding the output pipe open
    monkeypatch.setattr(lineage, "GIT_TIMEOUT", 0.3)
    began = time.monotonic()
    found = capture_lineage(repo)
    assert time.monotonic() - began < 5
    assert found["git_dirty"] is None and found["git_commit"] is not None


def test_a_failing_git_prints_nothing(repo: Path, tmp_path: Path, monkeypatch, capfd) -> None:
    fake_git(tmp_path, monkeypatch, "echo ' M everything' ; echo 'fatal: broken' >&2; exit 128")
    assert capture_lineage(repo)["git_dirty"] is None
    assert capfd.readouterr() == ("", "")


def test_git_environment_variables_are_ignored(repo: Path, tmp_path: Path, monkeypatch) -> None:
    other = make_repo(tmp_path / "other", commits=2)
    (other / "train.py").write_text("print('dirty')\n")
    monkeypatch.setenv("GIT_DIR", str(other / ".git"))
    monkeypatch.setenv("GIT_WORK_TREE", str(other))
    monkeypatch.setenv("GIT_INDEX_FILE", str(tmp_path / "no-such-index"))
    found = capture_lineage(repo)
    monkeypatch.delenv("GIT_DIR")
    monkeypatch.delenv("GIT_WORK_TREE")
    monkeypatch.delenv("GIT_INDEX_FILE")
    assert found["git_commit"] == head(repo) != head(other)
    assert found["git_dirty"] is False


@pytest.mark.parametrize(
    "head_text",
    ["garbage\n", "ref: ../../../../etc/passwd\n", "ref: refs/heads/../../../x\n", "ref: refs/heads/loop\n", ""],
)
def test_a_damaged_repository_yields_none(repo: Path, head_text: str) -> None:
    (repo / ".git" / "refs" / "heads" / "loop").write_text("ref: refs/heads/loop\n")
    (repo / ".git" / "HEAD").write_text(head_text)
    assert capture_lineage(repo)["git_commit"] is None


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_for_head_does_not_block(repo: Path) -> None:
    (repo / ".git" / "refs" / "heads" / "main").unlink()
    os.mkfifo(repo / ".git" / "refs" / "heads" / "main")
    assert capture_lineage(repo)["git_commit"] is None


def test_a_dangling_gitdir_file_is_not_a_repository(tmp_path: Path) -> None:
    outer = make_repo(tmp_path / "outer")
    inner = outer / "inner"
    inner.mkdir()
    (inner / ".git").write_text("gitdir: ../../nowhere\n")
    assert capture_lineage(inner)["git_commit"] == head(outer)  # git also skips it and goes on up


# --- script, user, host ----------------------------------------------------------------------------------------------


def run_python(args: list[str], cwd: Path, stdin: str | None = None) -> dict:
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    proc = subprocess.run(
        [sys.executable, *args], cwd=cwd, env=env, input=stdin, capture_output=True, text=True, check=True
    )
    return json.loads(proc.stdout)


PRINT_LINEAGE = (
    "import json; from registry.provenance.lineage import capture_lineage; print(json.dumps(capture_lineage()))"
)


def test_script_path_and_its_repository(repo: Path, tmp_path: Path) -> None:
    (repo / "train.py").write_text(PRINT_LINEAGE + "\n")
    git(repo, "commit", "-q", "-am", "script")
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    found = run_python([str(repo / "train.py")], cwd=elsewhere)
    assert found["script"] == str(repo / "train.py")
    assert found["git_commit"] == head(repo) and found["git_dirty"] is False


def test_a_script_outside_any_repository_falls_back_to_the_current_directory(repo: Path, tmp_path: Path) -> None:
    """A console script lives in a virtualenv's bin/, not in the project whose directory the user works in."""
    tools = tmp_path / "venv-bin"
    tools.mkdir()
    (tools / "tool.py").write_text(PRINT_LINEAGE + "\n")
    found = run_python([str(tools / "tool.py")], cwd=repo)
    assert found["script"] == str(tools / "tool.py") and found["git_commit"] == head(repo)


def test_dash_c_and_stdin_search_from_the_current_directory(repo: Path) -> None:
    by_c = run_python(["-c", PRINT_LINEAGE], cwd=repo)
    assert by_c["script"] == "-c" and by_c["git_commit"] == head(repo)
    piped = run_python(["-"], cwd=repo, stdin=PRINT_LINEAGE)
    assert piped["script"] == "<stdin>" and piped["git_commit"] == head(repo)


def fake_ipython(monkeypatch: pytest.MonkeyPatch, **names: object) -> None:
    main = types.ModuleType("__main__")
    main.get_ipython = lambda: None  # what IPython puts in the user namespace
    for name, value in names.items():
        setattr(main, name, value)
    monkeypatch.setitem(sys.modules, "__main__", main)


def test_vscode_notebook_path_and_its_repository(repo: Path, tmp_path: Path, monkeypatch) -> None:
    notebook = repo / "explore.ipynb"
    notebook.write_text("{}")
    monkeypatch.chdir(tmp_path)
    fake_ipython(monkeypatch, __vsc_ipynb_file__=str(notebook))
    found = capture_lineage()
    assert found["script"] == str(notebook)
    assert found["git_commit"] == head(repo)


def test_jupyterlab_session_name(tmp_path: Path, monkeypatch) -> None:
    folder = tmp_path / "notebooks"
    folder.mkdir()
    (folder / "train.ipynb").write_text("{}")
    monkeypatch.chdir(folder)  # kernels start in the notebook's folder; the name is relative to the server root
    fake_ipython(monkeypatch)
    monkeypatch.setenv("JPY_SESSION_NAME", "work/notebooks/train.ipynb")
    assert capture_lineage()["script"] == str(folder / "train.ipynb")
    monkeypatch.setenv("JPY_SESSION_NAME", "/srv/elsewhere/report.ipynb")
    assert capture_lineage()["script"] == "/srv/elsewhere/report.ipynb"
    monkeypatch.delenv("JPY_SESSION_NAME")
    assert capture_lineage()["script"] == "<ipython>"


def test_user_host_and_version() -> None:
    found = capture_lineage()
    assert found["user"] == getpass.getuser()
    assert found["host"] == socket.gethostname()
    assert found["modelshelf_version"] == metadata.version("modelshelf")
    assert identity() == (getpass.getuser(), socket.gethostname())


def test_capturing_lineage_imports_no_numpy(repo: Path) -> None:
    code = (
        "import sys; from registry.provenance.lineage import capture_lineage; "
        "capture_lineage(); print('numpy' in sys.modules)"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    out = subprocess.run([sys.executable, "-c", code], cwd=repo, env=env, capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "False"  # registering a model must not cost the import of numpy


def test_capture_is_cheap(repo: Path) -> None:
    capture_lineage(repo)
    began = time.perf_counter()
    for _ in range(5):
        capture_lineage(repo)
    assert (time.perf_counter() - began) / 5 < 0.1  # one git process; generous for loaded CI machines
