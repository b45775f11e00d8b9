"""The edges a new user hits on the command line: paths, one-line errors, and the small things (issue 14).

Each test drives the real ``modelshelf`` group in-process against a real
registry directory; the ones that need a subprocess, a signal or a mount
live in ``test_cli_processes.py`` (slow lane).
"""

from __future__ import annotations

import gzip
import json
import re
from pathlib import Path
from typing import Any

import pytest

from registry import Registry
from tests.cli_helpers import run_cli_strict as run

CLI_SOURCES = Path(__file__).resolve().parents[1] / "registry" / "cli"


@pytest.fixture
def small(home: Path) -> Path:
    """Two versions of ``m`` (``production`` → 1) and a bundle of ``m:1`` beside the registry."""
    with Registry(home) as reg:
        reg.register("m", {"w": 1}, format="pickle", metrics={"acc": 0.5, "loss": 0.7}, params={"k": None})
        reg.register("m", {"w": 2}, format="pickle", metrics={"acc": 0.75})
        reg.set_alias("m", "production", 1)
        reg.export_bundle(["m:1"], home.parent / "bundle.tar")
    return home


def _one_error_line(result: Any) -> str:
    """The single line a failed command printed on stderr (nothing on stdout, no traceback)."""
    assert result.stdout == "", result.stdout
    lines = result.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("error: "), result.stderr
    return str(lines[0])


# -- item 2: paths ---------------------------------------------------------


@pytest.mark.parametrize("kind", ["not a tar", "empty", "truncated", "gzip"])
def test_import_of_a_file_that_is_not_a_bundle_is_one_line_and_exit_3(small: Path, tmp_path: Path, kind: str) -> None:
    whole = (small.parent / "bundle.tar").read_bytes()
    contents = {
        "not a tar": b"just some text, not a tar at all\n" * 40,
        "empty": b"",
        "truncated": whole[: len(whole) // 3],
        "gzip": gzip.compress(whole),
    }
    path = tmp_path / ("bundle.tar.gz" if kind == "gzip" else "bundle.tar")
    path.write_bytes(contents[kind])
    result = run(small, "import", str(path), "--allow-unsigned")
    assert result.exit_code == 3
    assert "is not a modelshelf bundle" in _one_error_line(result)
    with Registry(small) as reg:
        assert [mv.version for mv in reg.versions("m")] == [1, 2]  # nothing was imported


def test_export_into_a_missing_directory_names_it(small: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "dir" / "x.tar"
    result = run(small, "export", "m:1", "-o", str(target))
    assert result.exit_code == 2  # a usage error, as for `history --plot` into the same path
    assert _one_error_line(result) == (
        f"error: cannot write the bundle to {target}: No such file or directory; "
        "give a file in an existing directory you can write"
    )
    assert not target.parent.exists()


def test_fetch_into_a_missing_directory_names_it(small: Path, tmp_path: Path) -> None:
    target = tmp_path / "no" / "such" / "m.pkl"
    result = run(small, "fetch", "m:1", "-o", str(target))
    assert result.exit_code == 2
    assert _one_error_line(result) == (
        f"error: cannot write the artifact to {target}: No such file or directory; "
        "give a file in an existing directory you can write"
    )


def test_a_driver_message_of_several_lines_is_printed_on_one(tmp_path: Path) -> None:
    # libpq's own message for a refused connection spans lines ("\n\tIs the server running…"); nothing listens on 1
    result = run(None, "--catalog", "postgresql+psycopg://nobody@127.0.0.1:1/x", "--store", str(tmp_path), "models")
    assert result.exit_code == 1
    line = _one_error_line(result)
    assert "cannot open the catalog" in line and "Connection refused" in line


def test_one_line_keeps_every_line_of_the_text() -> None:
    from registry.cli.app import one_line

    assert one_line("first\n\tsecond  part\n\nthird\n") == "first second  part third"


# -- item 8: the small things ----------------------------------------------


def test_history_of_a_metric_that_does_not_exist_says_so_and_lists_the_others(small: Path) -> None:
    result = run(small, "history", "m", "accuracy")
    assert result.exit_code == 1
    assert _one_error_line(result) == "error: m has no metric 'accuracy'; its metrics are acc, loss"
    assert run(small, "history", "m", "acc", "--json").exit_code == 0


def test_tag_without_a_version_says_which_it_chose_and_that_it_is_deprecated(small: Path) -> None:
    """A bare NAME used to tag the latest silently: it still does (scripts rely on it), and says so on stderr."""
    result = run(small, "tag", "m", "reviewed=yes")
    assert result.exit_code == 0 and result.stdout.strip() == "m:2: reviewed=yes"
    assert "names no version, so this tagged m:2, the latest" in result.stderr
    assert "NAME:latest" in result.stderr and "future release" in result.stderr
    with Registry(small) as reg:
        assert reg.get("m:2").tags == {"reviewed": "yes"}
    chosen = run(small, "tag", "m:latest", "reviewed=yes")
    assert chosen.exit_code == 0 and chosen.output.strip() == "m:2: reviewed=yes"
    assert run(small, "tag", "m@production", "x=y").output.strip() == "m:1: x=y"


def test_search_o_still_orders_with_a_warning_and_order_by_does_not_warn(small: Path) -> None:
    old = run(small, "search", "-o", "metrics.acc desc", "--json")
    assert old.exit_code == 0 and [v["ref"] for v in json.loads(old.stdout)] == ["m:2", "m:1"]
    assert "`search -o` is deprecated" in old.stderr and "--order-by" in old.stderr
    new = run(small, "search", "--order-by", "metrics.acc", "--json")
    assert [v["ref"] for v in json.loads(new.stdout)] == ["m:1", "m:2"] and new.stderr == ""
    both = run(small, "search", "-o", "version", "--order-by", "version")
    assert both.exit_code == 2


def test_counts_are_singular_for_one(small: Path, tmp_path: Path) -> None:
    exported = run(small, "export", "m:1", "-o", str(tmp_path / "one.tar"))
    assert exported.output.startswith("wrote 1 version to ")
    assert run(small, "verify", "--quick").output.startswith("ok: 2 versions intact")
    (small / "tmp" / "left-behind.tmp").write_bytes(b"x" * 28)  # what a crashed write leaves
    assert run(small, "gc", "--min-age", "0").output.strip().endswith("1 file, freed 28 bytes")


def test_no_cli_message_counts_with_a_fixed_plural() -> None:
    """A count printed as ``{len(x)} things`` reads "1 things": every count goes through ``plural``."""
    fixed = re.compile(r"\{(?:len\([^}]*\)|count|[a-z_.]*(?:count|checked|bytes))\} [a-z]+s\b")
    offenders = [
        f"{path.name}:{number}: {line.strip()}"
        for path in sorted(CLI_SOURCES.glob("*.py"))
        for number, line in enumerate(path.read_text().splitlines(), 1)
        if fixed.search(line)
    ]
    assert offenders == []


def test_show_of_a_pipeline_folds_nested_params_and_long_values(home: Path, iris: Any) -> None:
    from sklearn.compose import ColumnTransformer
    from sklearn.decomposition import PCA
    from sklearn.impute import SimpleImputer
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = iris
    columns = ColumnTransformer(
        [("scaled", make_pipeline(SimpleImputer(), StandardScaler()), [0, 1]), ("pca", PCA(1), [2, 3])]
    )
    model = make_pipeline(columns, LogisticRegression(max_iter=500)).fit(X, y)
    with Registry(home) as reg:
        mv = reg.register("pipe", model)
    nested = [key for key in mv.params if "__" in key]
    assert len(nested) > 40  # scikit-learn reports every parameter of every step

    folded = run(home, "show", "pipe").output.splitlines()
    params = [line.split("\t") for line in folded if line.startswith("params\t")]
    assert not any("__" in key for _, key, _ in params)
    assert all(len(value) <= 140 for _, _, value in params), [v for *_, v in params if len(v) > 140]
    step = next(value for _, key, value in params if key == "columntransformer")
    assert re.search(r"\(\+\d+ nested params: --full\)$", step)

    full = run(home, "show", "pipe", "--full").output.splitlines()
    full_keys = {line.split("\t")[1] for line in full if line.startswith("params\t")}
    assert set(nested) <= full_keys
    assert len(full) - len(folded) >= len(nested)
    assert all("\n" not in line and "  " not in line.split("\t")[-1] for line in full)  # one line, spaces collapsed


def test_diff_tells_a_none_param_from_a_missing_one(small: Path) -> None:
    rows = [line.split("\t") for line in run(small, "diff", "m:1", "m:2", "--changed-only").output.splitlines()[1:]]
    assert ["*", "params", "k", "null", "(absent)"] in rows
    assert ["*", "metrics", "loss", "0.7", "(absent)"] in rows
    data = json.loads(run(small, "--json", "diff", "m:1", "m:2").stdout)
    k = next(d for d in data["differences"] if d["key"] == "k")
    assert k == {"section": "params", "key": "k", "left": None, "right": None, "in_left": True, "in_right": False}
