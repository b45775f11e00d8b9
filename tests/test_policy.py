"""The safe-load policy is data: every entry names itself exactly, nothing dangerous is on it, it prints."""

from __future__ import annotations

import importlib
import json
import warnings

import pytest
from click.testing import CliRunner

from registry.cli import cli
from registry.formats import POLICY_VERSION, describe_policy
from registry.formats.policy import POLICY

DENIED = ("sklearn.utils._testing", "sklearn.externals", "sklearn.datasets", "sklearn.tests")


def _resolve(name: str) -> object:
    module, _, qualname = name.rpartition(".")
    for split in range(name.count("."), 0, -1):  # the longest importable module prefix
        module, qualname = ".".join(name.split(".")[:split]), ".".join(name.split(".")[split:])
        try:
            obj: object = importlib.import_module(module)
        except ImportError:
            continue
        for part in qualname.split("."):
            obj = getattr(obj, part)
        return obj
    raise ImportError(name)


def test_every_entry_resolves_to_exactly_the_object_it_names() -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # numpy.core's aliases warn
        for entry in POLICY.values():
            obj = _resolve(entry.name)
            assert f"{obj.__module__}.{obj.__qualname__}" == entry.canonical, entry.name


def test_aliases_are_few_and_explicit() -> None:
    aliases = sorted(entry.name for entry in POLICY.values() if entry.identity)
    assert aliases == sorted(
        [f"numpy.core.multiarray.{n}" for n in ("_reconstruct", "scalar")]
        + ["numpy.bool_", "numpy.core.numeric._frombuffer"]
    )


def test_nothing_dangerous_is_on_the_policy() -> None:
    names = set(POLICY)
    warnings.simplefilter("ignore", DeprecationWarning)
    assert not [name for name in names if name.startswith(DENIED)]
    for forbidden in (
        "builtins.getattr",
        "builtins.eval",
        "builtins.exec",
        "builtins.__import__",
        "os.system",
        "numpy.memmap",
        "numpy.load",
        "operator.attrgetter",
        "sklearn.metrics._dist_metrics.PyFuncDistance64",
    ):
        assert forbidden not in names
    for entry in POLICY.values():
        obj = _resolve(entry.name)
        if isinstance(obj, type) and entry.name.startswith("sklearn"):
            for method in ("__del__", "__enter__", "__exit__"):
                assert getattr(obj, method, None) is getattr(object, method, None), (entry.name, method)  # fmt: skip


def test_callables_all_have_an_argument_check() -> None:
    for entry in POLICY.values():
        if entry.role == "callable":
            assert entry.call is not None, entry.name
        if entry.role == "reference":
            assert entry.call is None, entry.name


def test_the_policy_prints_as_json_and_as_a_table() -> None:
    runner = CliRunner()
    result = runner.invoke(cli, ["policy", "--json"])
    assert result.exit_code == 0, result.output
    printed = json.loads(result.output)
    assert printed == describe_policy() and printed["version"] == POLICY_VERSION
    assert {"name": "numpy.dtype", "role": "class", "callable": True}.items() <= next(
        e for e in printed["entries"] if e["name"] == "numpy.dtype"
    ).items()
    table = runner.invoke(cli, ["policy", "--role", "callable"])
    assert table.exit_code == 0 and "builtins.list" in table.output and "sklearn.tree._tree.Tree" not in table.output
    assert "16 x the artifact's size" in table.output


@pytest.mark.parametrize("name", ["sklearn.ensemble._forest.RandomForestClassifier", "sklearn.tree._tree.Tree"])
def test_what_fitted_models_need_is_listed(name: str) -> None:
    assert name in POLICY
