"""Lineage captured from real git repositories, and training-data fingerprints.

The repositories are made in ``tmp_path`` with the real ``git`` binary, and
``HOME`` points at an empty directory so no global git configuration (a
default branch name, hooks, ``safe.directory``) changes what is tested.
"""

from __future__ import annotations

import getpass
import hashlib
import json
import os
import shutil
import socket
import subprocess
import sys
import time
import tracemalloc
import types
from importlib import metadata
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import scipy.sparse as sp

from registry.provenance import fingerprint, lineage
from registry.provenance.fingerprint import DataFingerprint, fingerprint_data
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


# --- data fingerprints -----------------------------------------------------------------------------------------------


def test_fingerprint_shape_and_format() -> None:
    fp = fingerprint_data(np.zeros((3, 4)))
    assert isinstance(fp, DataFingerprint)
    assert fp.digest.startswith("sha256:") and len(fp.digest) == 7 + 64
    assert int(fp.digest[7:], 16) >= 0
    assert fp.shape == (3, 4) and fp.columns is None


def test_the_array_encoding_is_the_documented_one() -> None:
    # Changing it would make old versions unfindable by their data: change the format tag with it.
    def field(text: str) -> bytes:
        return len(text.encode()).to_bytes(8, "little") + text.encode()

    values = np.arange(4, dtype="<i8")
    expected = hashlib.sha256(field("modelshelf-data-fingerprint/1") + field("ndarray <i8 (4,)") + values.tobytes())
    assert fingerprint_data(values).digest == "sha256:" + expected.hexdigest()
    assert expected.hexdigest() == "11b99d6bb3d758c7f4a7b8eaf55bbdda9cbf52550b69cda60c4ee0b8df58d108"


FRAME_SCRIPT = """
import json, numpy as np, pandas as pd
from registry.provenance.fingerprint import fingerprint_data
frame = pd.DataFrame({"x": np.arange(5.0), "s": ["a", "b", None, "d", "é"], "k": pd.Categorical(list("xyxzx"))})
objects = np.array([1, "two", 3.5, None, b"x", (1, 2)], dtype=object)
print(json.dumps([fingerprint_data(d).digest for d in (frame, objects, (frame, frame["x"]))]))
"""


def test_fingerprints_are_the_same_in_another_process() -> None:
    frame = pd.DataFrame({"x": np.arange(5.0), "s": ["a", "b", None, "d", "é"], "k": pd.Categorical(list("xyxzx"))})
    objects = np.array([1, "two", 3.5, None, b"x", (1, 2)], dtype=object)
    here = [fingerprint_data(d).digest for d in (frame, objects, (frame, frame["x"]))]
    env = {**os.environ, "PYTHONPATH": str(ROOT), "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", FRAME_SCRIPT], env=env, capture_output=True, text=True, check=True)
    assert json.loads(out.stdout) == here


def test_memory_layout_does_not_matter() -> None:
    a = np.arange(60.0).reshape(3, 4, 5)
    expected = fingerprint_data(a)
    assert fingerprint_data(np.asfortranarray(a)) == expected
    assert fingerprint_data(a.transpose(2, 1, 0).copy().transpose(2, 1, 0)) == expected
    wide = np.arange(40.0).reshape(4, 10)
    assert fingerprint_data(wide[:, ::2]) == fingerprint_data(np.ascontiguousarray(wide[:, ::2]))


def test_large_non_contiguous_arrays_are_chunked(monkeypatch) -> None:
    monkeypatch.setattr(fingerprint, "CHUNK_BYTES", 64)  # rows of 80 bytes: forces the row-by-row path too
    a = np.arange(3000.0).reshape(30, 10, 10)
    expected = fingerprint_data(a)
    assert fingerprint_data(np.asfortranarray(a)) == expected
    assert fingerprint_data(a[:, ::2]).digest == fingerprint_data(a[:, ::2].copy()).digest


def test_dtype_and_values_matter() -> None:
    a = np.arange(12).reshape(3, 4)
    assert fingerprint_data(a).digest != fingerprint_data(a.astype(np.float64)).digest
    assert fingerprint_data(a).digest != fingerprint_data(a.reshape(4, 3)).digest
    changed = a.copy()
    changed[2, 3] += 1
    assert fingerprint_data(a).digest != fingerprint_data(changed).digest


def test_x_y_pairs() -> None:
    X, y = np.arange(12.0).reshape(6, 2), np.array([0, 1, 0, 1, 0, 1])
    pair = fingerprint_data((X, y))
    assert pair.digest != fingerprint_data(X).digest
    assert pair.shape == (6, 2)
    assert fingerprint_data([X, y]) == pair
    assert fingerprint_data((X, 1 - y)).digest != pair.digest
    assert fingerprint_data((y, X)).digest != pair.digest
    assert fingerprint_data((X, list(y))) == pair  # one array makes it a pair; the list is made an array
    assert fingerprint_data([[1, 2], [3, 4]]).shape == (2, 2)  # two plain lists are one matrix


def test_dataframe_columns() -> None:
    frame = pd.DataFrame({"sepal": [1.0, 2.0, 3.0], "petal": [4, 5, 6]})
    fp = fingerprint_data(frame)
    assert fp.columns == ("sepal", "petal") and fp.shape == (3, 2)
    assert fingerprint_data(frame.rename(columns={"petal": "leaf"})).digest != fp.digest
    assert fingerprint_data(frame.set_axis([10, 11, 12])).digest == fp.digest  # the index is not training data
    assert fingerprint_data(frame.astype(float)).digest != fp.digest
    pair = fingerprint_data((frame, pd.Series([0, 1, 0], name="target")))
    assert pair.columns == ("sepal", "petal") and pair.shape == (3, 2)


def test_frame_from_a_c_ordered_array_equals_one_built_by_columns() -> None:
    values = np.arange(20.0).reshape(10, 2)
    by_array = pd.DataFrame(values, columns=["a", "b"])
    by_columns = pd.DataFrame({"a": values[:, 0].copy(), "b": values[:, 1].copy()})
    assert fingerprint_data(by_array) == fingerprint_data(by_columns)


def test_series_name() -> None:
    s = pd.Series([1.0, 2.0], name="y")
    assert fingerprint_data(s).columns == ("y",) and fingerprint_data(s).shape == (2,)
    assert fingerprint_data(s.rename("z")).digest != fingerprint_data(s).digest
    assert fingerprint_data(s.rename(None)).columns is None


def test_object_columns_are_hashed_by_value() -> None:
    def digest(values: list) -> str:
        return fingerprint_data(pd.DataFrame({"c": pd.Series(values, dtype=object)})).digest

    base = digest(["a", "b", None])
    assert digest(["a", "b", None]) == base
    assert digest(["a", "c", None]) != base
    assert digest(["a", "b", "None"]) != base
    assert digest([1, 2]) != digest(["1", "2"]) != digest([1.0, 2.0])
    assert digest([True]) != digest([1])
    assert digest(["ab", "c"]) != digest(["a", "bc"])  # strings are length-prefixed
    assert fingerprint_data(np.array(["x", "y"], dtype=object)).digest != fingerprint_data(np.array(["x", "y"])).digest


@pytest.mark.skipif(not hasattr(np.dtypes, "StringDType"), reason="numpy 2 strings")
def test_numpy_strings_are_hashed_by_value_not_by_pointer() -> None:
    values = [f"value {i}" * 3 for i in range(100)]  # too long to be stored inline: they live in an arena
    first = np.array(values, dtype=np.dtypes.StringDType())
    second = np.array(["a longer placeholder, so the arena is laid out differently"] * 100, dtype=first.dtype)
    second[:] = values
    assert first.tobytes() != second.tobytes() and (first == second).all()
    assert fingerprint_data(first) == fingerprint_data(second)
    second[7] = "other"
    assert fingerprint_data(first).digest != fingerprint_data(second).digest


def test_unstable_objects_are_refused() -> None:
    with pytest.raises(ValueError, match="memory address"):
        fingerprint_data(np.array([object(), object()], dtype=object))
    with pytest.raises(ValueError, match="memory address"):
        fingerprint_data(pd.DataFrame({"f": [lambda: 1, lambda: 2]}))
    sets = np.empty(1, dtype=object)
    sets[0] = {"a", "b"}
    with pytest.raises(ValueError, match="no stable order"):
        fingerprint_data(sets)


def test_categorical_columns() -> None:
    a = pd.DataFrame({"k": pd.Categorical(["x", "y", "x"])})
    same_codes = pd.DataFrame({"k": pd.Categorical(["p", "q", "p"])})
    as_strings = pd.DataFrame({"k": ["x", "y", "x"]})
    ordered = pd.DataFrame({"k": pd.Categorical(["x", "y", "x"], ordered=True)})
    digests = {fingerprint_data(f).digest for f in (a, same_codes, as_strings, ordered)}
    assert len(digests) == 4
    assert fingerprint_data(pd.DataFrame({"k": pd.Categorical(["x", "y", "x"])})) == fingerprint_data(a)


def test_nullable_integers_keep_exact_values() -> None:
    big = 2**53
    a = pd.DataFrame({"n": pd.array([big, None], dtype="Int64")})
    b = pd.DataFrame({"n": pd.array([big + 1, None], dtype="Int64")})
    assert fingerprint_data(a).digest != fingerprint_data(b).digest
    assert fingerprint_data(a).digest != fingerprint_data(pd.DataFrame({"n": pd.array([big, 0], dtype="Int64")})).digest


def test_sparse_matrices() -> None:
    dense = np.array([[0, 1.5, 0], [2.0, 0, 0], [0, 0, 3.0]])
    csr = sp.csr_matrix(dense)
    fp = fingerprint_data(csr)
    assert fp.shape == (3, 3) and fp.columns is None
    assert fingerprint_data(sp.csc_matrix(dense)) == fp
    assert fingerprint_data(sp.coo_array(dense)) == fp
    wide = sp.csr_matrix((csr.data, csr.indices.astype(np.int64), csr.indptr.astype(np.int64)), shape=(3, 3))
    assert fingerprint_data(wide) == fp
    duplicated = sp.coo_matrix(([1.0, 0.5, 2.0, 3.0], ([0, 0, 1, 2], [1, 1, 0, 2])), shape=(3, 3)).tocsr()
    assert fingerprint_data(duplicated) == fp
    unsorted = sp.csr_matrix(([2.0, 1.0], [2, 0], [0, 2]), shape=(1, 3))  # row 0 lists column 2 before column 0
    assert not unsorted.has_canonical_format
    assert fingerprint_data(unsorted) == fingerprint_data(sp.csr_matrix(np.array([[1.0, 0, 2.0]])))
    assert unsorted.indices.tolist() == [2, 0]  # the caller's matrix is left as it was
    changed = csr.copy()
    changed.data[0] = 9.0
    assert fingerprint_data(changed).digest != fp.digest
    assert fingerprint_data(dense).digest != fp.digest
    assert fingerprint_data((csr, np.array([0, 1, 0]))).shape == (3, 3)


def test_lists_of_numbers_are_arrays() -> None:
    assert fingerprint_data([[1.0, 2.0], [3.0, 4.0]]) == fingerprint_data(np.array([[1.0, 2.0], [3.0, 4.0]]))
    assert fingerprint_data((1, 2, 3)) == fingerprint_data(np.array([1, 2, 3]))


class LooksSparse:
    def tocsr(self) -> None:  # duck-types as a sparse matrix, but numpy can only wrap it as one object
        raise AssertionError("not called")


@pytest.mark.parametrize("data", [None, {"x": [1, 2]}, "a string", 3.5, np.float64(1.0), object(), LooksSparse()])
def test_unsupported_input_is_refused(data: object) -> None:
    with pytest.raises(ValueError, match=r"data= takes a numpy array, a pandas DataFrame .* or an \(X, y\) pair"):
        fingerprint_data(data)


def test_ragged_lists_are_refused_clearly() -> None:
    with pytest.raises(ValueError, match="numpy cannot make an array of this list"):
        fingerprint_data([[1, 2], [3]])


def peak_bytes(work) -> int:
    tracemalloc.start()
    try:
        work()
        return tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()


def test_memory_stays_bounded() -> None:
    big = np.random.default_rng(0).random((6_250, 1_000))  # 50 MB
    fortran = np.asfortranarray(big)
    expected = fingerprint_data(big)
    assert peak_bytes(lambda: fingerprint_data(big)) < 1_000_000  # hashed in place
    assert peak_bytes(lambda: fingerprint_data(fortran)) < 20_000_000  # copied a chunk at a time
    assert fingerprint_data(fortran) == expected
