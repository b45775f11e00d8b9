"""git's dirty flag is reused only while the tree is as git last saw it: real repositories, a real git.

Each test counts the real git's runs through a shim on ``PATH`` that logs
and then runs it, so a test of "the answer changed" cannot pass by the cache
never being used, and a test of "git ran once" shows that it is. The racy
window is shortened to 50 ms (file timestamps here move in ticks of a few
milliseconds) and a test waits it out where a state must be recorded.
"""

from __future__ import annotations

import os
import shutil
import stat
import sys
import time
from pathlib import Path

import pytest

from registry.provenance import gitwatch, lineage
from registry.provenance.lineage import capture_lineage, start_capture
from tests.test_provenance_lineage import git, head, make_repo

RACY = 0.05


@pytest.fixture(autouse=True)
def clean_state(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    monkeypatch.delenv("XDG_CONFIG_HOME", raising=False)
    monkeypatch.setattr(gitwatch, "RACY_SECONDS", RACY)
    lineage._repos.clear()
    gitwatch._recorded.clear()


@pytest.fixture
def git_runs(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A log with one line per ``git status`` (the lineage's question; the tests' own git calls are not counted)."""
    real = shutil.which("git")
    assert real is not None
    shim = tmp_path / "shim"
    shim.mkdir()
    log = tmp_path / "git-runs.log"
    log.touch()
    (shim / "git").write_text(
        f'#!/bin/sh\ncase "$1" in status) echo "$*" >> "{log}";; esac\n'
        f'[ -e "{log}.fail" ] && exit 128\nexec "{real}" "$@"\n'
    )
    (shim / "git").chmod(0o755)
    monkeypatch.setenv("PATH", f"{shim}{os.pathsep}{os.environ['PATH']}")
    return log


def runs(log: Path) -> int:
    return len(log.read_text().splitlines())


def settle() -> None:
    """Wait until every file written so far is older than the racy window."""
    time.sleep(RACY * 2)


@pytest.fixture
def repo(tmp_path: Path) -> Path:
    path = make_repo(tmp_path / "repo")
    (path / "src").mkdir()
    (path / "src" / "model.py").write_text("A = 1\n")
    git(path, "add", "src/model.py")
    git(path, "commit", "-q", "-m", "src")
    settle()
    return path


def test_an_unchanged_tree_asks_git_once(repo: Path, git_runs: Path) -> None:
    answers = [capture_lineage(repo) for _ in range(4)]
    assert all(a["git_dirty"] is False and a["git_commit"] == head(repo) for a in answers)
    assert runs(git_runs) == 1


def test_an_edit_of_the_same_size_between_two_captures_is_dirty(repo: Path, git_runs: Path) -> None:
    assert capture_lineage(repo)["git_dirty"] is False
    (repo / "train.py").write_text("print(9)\n")  # as long as "print(0)\n": only the times and content differ
    settle()  # past the racy window: the stat data alone must show the edit
    assert capture_lineage(repo)["git_dirty"] is True
    assert runs(git_runs) == 2


def test_an_edit_that_restores_the_old_mtime_is_still_seen(repo: Path, git_runs: Path) -> None:
    before = (repo / "src" / "model.py").stat()
    assert capture_lineage(repo)["git_dirty"] is False
    (repo / "src" / "model.py").write_text("A = 2\n")
    os.utime(repo / "src" / "model.py", ns=(before.st_atime_ns, before.st_mtime_ns))  # ctime still moves
    settle()
    assert capture_lineage(repo)["git_dirty"] is True


def test_a_commit_records_the_new_commit_and_a_clean_tree(repo: Path, git_runs: Path) -> None:
    first = head(repo)
    (repo / "train.py").write_text("print('next')\n")
    settle()
    assert capture_lineage(repo)["git_dirty"] is True
    assert capture_lineage(repo)["git_dirty"] is True
    assert runs(git_runs) == 1  # a dirty answer is reused too
    git(repo, "commit", "-q", "-am", "next")
    found = capture_lineage(repo)
    assert found["git_commit"] == head(repo) != first
    assert found["git_dirty"] is False


def test_a_touched_file_asks_git_again_and_stays_clean(repo: Path, git_runs: Path) -> None:
    assert capture_lineage(repo)["git_dirty"] is False
    later = time.time() + 5
    os.utime(repo / "train.py", (later, later))
    assert capture_lineage(repo)["git_dirty"] is False
    assert runs(git_runs) == 2


def test_new_untracked_files_neither_dirty_nor_ask_again(repo: Path, git_runs: Path) -> None:
    assert capture_lineage(repo)["git_dirty"] is False
    (repo / "notes.txt").write_text("not tracked\n")
    (repo / "src" / "scratch.py").write_text("x = 1\n")
    assert capture_lineage(repo)["git_dirty"] is False
    assert runs(git_runs) == 1


def test_staging_a_new_file_is_dirty(repo: Path, git_runs: Path) -> None:
    assert capture_lineage(repo)["git_dirty"] is False
    (repo / "new.py").write_text("x = 1\n")
    git(repo, "add", "new.py")
    assert capture_lineage(repo)["git_dirty"] is True


def test_unstaging_with_the_work_tree_untouched_is_seen(repo: Path, git_runs: Path) -> None:
    """Only the index changes: the staged edit is undone and the file on disk is as HEAD has it."""
    (repo / "train.py").write_text("print('staged')\n")
    git(repo, "add", "train.py")
    (repo / "train.py").write_text("print(0)\n")  # HEAD's content again; the index still holds the edit
    settle()
    assert capture_lineage(repo)["git_dirty"] is True
    git(repo, "reset", "-q", "--", "train.py")
    settle()
    assert capture_lineage(repo)["git_dirty"] is False


def test_a_replace_ref_for_head_is_seen(tmp_path: Path, git_runs: Path) -> None:
    """`git replace` makes HEAD's commit stand for another tree; no tracked file and not the index change."""
    repo = make_repo(tmp_path / "repo", commits=2)
    settle()
    assert capture_lineage(repo)["git_dirty"] is False
    git(repo, "replace", "HEAD", "HEAD~1")
    settle()
    assert capture_lineage(repo)["git_dirty"] is True


def test_a_deleted_tracked_file_is_dirty(repo: Path, git_runs: Path) -> None:
    assert capture_lineage(repo)["git_dirty"] is False
    (repo / "src" / "model.py").unlink()
    assert capture_lineage(repo)["git_dirty"] is True


@pytest.mark.skipif(not hasattr(os, "symlink"), reason="needs symlinks")
def test_a_directory_replaced_by_a_link_to_the_same_files_is_dirty(repo: Path, git_runs: Path) -> None:
    """lstat of src/model.py through the link still finds the very same file; git sees src is a link."""
    assert capture_lineage(repo)["git_dirty"] is False
    (repo / "src").rename(repo / "moved")
    (repo / "src").symlink_to("moved", target_is_directory=True)
    assert capture_lineage(repo)["git_dirty"] is True


@pytest.mark.skipif(os.name == "nt", reason="no executable bit")
def test_a_configuration_change_is_seen(repo: Path, git_runs: Path) -> None:
    mode = (repo / "train.py").stat().st_mode
    (repo / "train.py").chmod(mode | stat.S_IXUSR)
    settle()
    assert capture_lineage(repo)["git_dirty"] is True
    git(repo, "config", "core.fileMode", "false")  # no tracked file changes: only .git/config does
    settle()
    assert capture_lineage(repo)["git_dirty"] is False


@pytest.mark.skipif(os.name == "nt", reason="no executable bit")
def test_a_file_included_by_the_configuration_is_watched(repo: Path, tmp_path: Path, git_runs: Path) -> None:
    extra = tmp_path / "extra.gitconfig"
    extra.write_text("[core]\n")
    with (repo / ".git" / "config").open("a") as config:
        config.write(f'[includeIf "gitdir:{repo}/"]\n\tpath = {extra}\n')
    (repo / "train.py").chmod((repo / "train.py").stat().st_mode | stat.S_IXUSR)
    settle()
    assert capture_lineage(repo)["git_dirty"] is True
    assert capture_lineage(repo)["git_dirty"] is True
    assert runs(git_runs) == 1
    extra.write_text("[core]\n\tfileMode = false\n")
    settle()
    assert capture_lineage(repo)["git_dirty"] is False


@pytest.mark.skipif(os.name == "nt", reason="no executable bit")
def test_the_global_configuration_is_watched(repo: Path, git_runs: Path) -> None:
    git(repo, "config", "--unset", "core.fileMode")  # the repository's own setting would win over the global one
    (repo / "train.py").chmod((repo / "train.py").stat().st_mode | stat.S_IXUSR)
    settle()
    assert capture_lineage(repo)["git_dirty"] is True
    (Path(os.environ["HOME"]) / ".gitconfig").write_text("[core]\n\tfileMode = false\n")
    settle()
    assert capture_lineage(repo)["git_dirty"] is False


def test_a_recent_change_is_not_trusted_to_show_the_next_one(repo: Path, git_runs: Path, monkeypatch) -> None:
    """Two writes within one timestamp tick keep the same stat data: git runs while any watched file is that new."""
    monkeypatch.setattr(gitwatch, "RACY_SECONDS", 3600.0)
    assert capture_lineage(repo)["git_dirty"] is False
    assert capture_lineage(repo)["git_dirty"] is False
    assert runs(git_runs) == 2


def test_a_file_dated_in_the_future_makes_git_run_every_time(repo: Path, git_runs: Path) -> None:
    """A clock ahead of this one (a network disk) could stamp the next write with the same time."""
    ahead = time.time() + 3600
    os.utime(repo / "src" / "model.py", (ahead, ahead))
    settle()
    assert capture_lineage(repo)["git_dirty"] is False
    assert capture_lineage(repo)["git_dirty"] is False
    assert runs(git_runs) == 2


@pytest.mark.skipif(os.name == "nt", reason="no executable bit")
def test_switching_branch_at_the_same_commit_is_seen(repo: Path, tmp_path: Path, git_runs: Path) -> None:
    """HEAD's commit stays the same, but an ``includeIf "onbranch:"`` now applies."""
    extra = tmp_path / "other-branch.gitconfig"
    extra.write_text("[core]\n\tfileMode = false\n")
    with (repo / ".git" / "config").open("a") as config:
        config.write(f'[includeIf "onbranch:other"]\n\tpath = {extra}\n')
    (repo / "train.py").chmod((repo / "train.py").stat().st_mode | stat.S_IXUSR)
    settle()
    assert capture_lineage(repo)["git_dirty"] is True
    git(repo, "branch", "other")
    git(repo, "symbolic-ref", "HEAD", "refs/heads/other")  # what `switch` does, minus rewriting the index
    settle()
    found = capture_lineage(repo)
    assert found["git_commit"] == head(repo)
    assert found["git_dirty"] is False


def test_a_submodule_makes_git_run_every_time(tmp_path: Path, git_runs: Path) -> None:
    library = make_repo(tmp_path / "library")
    outer = make_repo(tmp_path / "outer")
    git(outer, "-c", "protocol.file.allow=always", "submodule", "add", "-q", str(library), "lib")
    git(outer, "commit", "-q", "-m", "lib")
    settle()
    assert capture_lineage(outer)["git_dirty"] is False
    (outer / "lib" / "train.py").write_text("print('inside')\n")  # moves nothing the outer tree's own index stats
    assert capture_lineage(outer)["git_dirty"] is True
    assert runs(git_runs) == 2


@pytest.mark.parametrize("version", ["2", "3", "4"])
def test_every_index_version_is_read_as_git_lists_it(tmp_path: Path, version: str) -> None:
    repo = make_repo(tmp_path / "repo")
    names = [
        "a.py",
        "dir/b.py",
        "dir/deeper/c.py",
        "dir/deeper/ç-non-ascii.py",
        "z" * 200,
        "dir/" + "long" * 50 + "/" + "x" * 200,
    ]
    for name in names:
        (repo / name).parent.mkdir(parents=True, exist_ok=True)
        (repo / name).write_text(name)
    git(repo, "add", *names)
    (repo / "later.py").write_text("x = 1\n")
    git(repo, "add", "-N", "later.py")  # intent to add: an entry with extended flags (version 3 and up)
    git(repo, "update-index", "--index-version", version)
    listed = git(repo, "-c", "core.quotePath=false", "ls-files").splitlines()
    parsed = gitwatch._index_paths((repo / ".git" / "index").read_bytes(), 20)
    assert parsed is not None
    assert [p.decode() for p in parsed] == listed


def test_an_index_git_has_not_written_is_not_watched(repo: Path) -> None:
    data = (repo / ".git" / "index").read_bytes()
    assert gitwatch._index_paths(data, 20) is not None
    assert gitwatch._index_paths(b"DIRC" + (5).to_bytes(4, "big") + data[8:], 20) is None  # unknown version
    assert gitwatch._index_paths(data[:-30], 20) is None  # cut short
    assert gitwatch._index_paths(b"XXXX" + data[4:], 20) is None


def test_start_capture_uses_what_git_said_of_the_same_tree(repo: Path, git_runs: Path) -> None:
    assert start_capture(repo)()["git_dirty"] is False
    assert start_capture(repo)()["git_dirty"] is False
    assert runs(git_runs) == 1
    (repo / "train.py").write_text("print(8)\n")
    finish = start_capture(repo)
    assert finish()["git_dirty"] is True
    assert runs(git_runs) == 2


def test_a_failed_git_is_not_remembered(repo: Path, git_runs: Path) -> None:
    failing = Path(f"{git_runs}.fail")
    failing.touch()
    assert capture_lineage(repo)["git_dirty"] is None
    failing.unlink()
    assert capture_lineage(repo)["git_dirty"] is False
    assert capture_lineage(repo)["git_dirty"] is False
    assert runs(git_runs) == 2


def test_the_record_keys_on_the_git_found_on_path(repo: Path, git_runs: Path, monkeypatch) -> None:
    assert capture_lineage(repo)["git_dirty"] is False
    monkeypatch.setenv("PATH", os.environ["PATH"] + os.pathsep + "/elsewhere")
    assert capture_lineage(repo)["git_dirty"] is False
    assert runs(git_runs) == 2


def test_registrations_in_an_unchanged_repository_run_git_once(
    repo: Path, git_runs: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from registry import Registry

    # Lineage searches from the running script first, and pytest's may lie inside a repository (a virtualenv in
    # the checkout, as under .ci/run): make the script one of this repository's, as a training script would be.
    monkeypatch.setattr(sys.modules["__main__"], "__file__", str(repo / "train.py"))
    with Registry(tmp_path / "registry") as reg:
        first = reg.register("m", {"a": 1}, format="pickle")
        second = reg.register("m", {"a": 2}, format="pickle")
        (repo / "train.py").write_text("print(7)\n")
        third = reg.register("m", {"a": 3}, format="pickle")
    dirty = [mv.lineage.git_dirty if mv.lineage else None for mv in (first, second, third)]
    assert dirty == [False, False, True]
    assert {mv.lineage.git_commit if mv.lineage else None for mv in (first, second, third)} == {head(repo)}
    assert runs(git_runs) == 2
