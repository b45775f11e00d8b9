"""The ``__main__`` trap: a model whose artifact names a class of the running script loads nowhere else.

pickle records a class or function by module and name. One defined in the
script being run is ``__main__.Foo``, which another process (a server, the
``modelshelf`` command) cannot import, and one defined inside a function or
a lambda has no importable name at all. Registering such a model warns
(``ModelPortabilityWarning``) or, with ``strict=True``, raises
``NotPortable``; a load that fails on it says to move the class into an
importable module, not to install packages, and a safe load does not
suggest ``trusted=[...]``, which cannot help.

The in-process tests put a real class and function into this process's own
``__main__`` module (pytest's), so that pickle records them as
``__main__.…`` exactly as it would for a script, and take them out again
to play the other process; the slow test runs a real script and a second
interpreter.
"""

from __future__ import annotations

import subprocess
import sys
import warnings
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry import (
    InvalidInput,
    ModelNotFound,
    ModelPortabilityWarning,
    NotPortable,
    Registry,
    SerializationError,
    UnsafeArtifact,
)
from registry.formats.portability import missing_here, unportable
from tests.conftest import blob_files, temp_files


def _double(X: Any) -> Any:
    return np.asarray(X) * 2.0


class _Doubler:
    """A tiny model with its own class, as a script would define it."""

    def predict(self, X: Any) -> Any:
        return np.asarray(X) * 2.0


@pytest.fixture
def script_names(monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[type, Any]]:
    """A class and a function that pickle records as ``__main__.Doubler`` and ``__main__.double``."""
    main = sys.modules["__main__"]
    cls = type("Doubler", (_Doubler,), {"__module__": "__main__", "__qualname__": "Doubler"})

    def double(X: Any) -> Any:
        return _double(X)

    double.__module__, double.__qualname__ = "__main__", "double"
    monkeypatch.setattr(main, "Doubler", cls, raising=False)
    monkeypatch.setattr(main, "double", double, raising=False)
    yield cls, double


def _leave_the_script(monkeypatch: pytest.MonkeyPatch) -> None:
    """Be "another process": this ``__main__`` no longer defines the script's names."""
    main = sys.modules["__main__"]
    monkeypatch.delattr(main, "Doubler")
    monkeypatch.delattr(main, "double")


def _pipeline_with(func: Any, iris: tuple[Any, Any]) -> Any:
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import FunctionTransformer

    X, y = iris
    return make_pipeline(FunctionTransformer(func), KNeighborsClassifier(n_neighbors=3)).fit(X, y)


def test_a_script_function_in_a_pipeline_registers_with_a_warning_that_says_to_move_it(
    reg: Registry, script_names: tuple[type, Any], iris: tuple[Any, Any]
) -> None:
    _, double = script_names
    with pytest.warns(ModelPortabilityWarning) as caught:
        mv = reg.register("iris-pipe", _pipeline_with(double, iris))
    (warning,) = [w for w in caught if issubclass(w.category, ModelPortabilityWarning)]
    message = str(warning.message)
    assert "model 'iris-pipe': the artifact imports __main__.double" in message
    assert "__main__ module of the script" in message and "module of its own" in message
    assert "strict=True" in message
    assert warning.message.names == ("__main__.double",)  # type: ignore[union-attr]
    assert warning.filename == __file__  # points at the register call, not into modelshelf
    assert "__main__.double" in mv.imports and reg.get("iris-pipe:1").version == 1  # registered all the same
    assert issubclass(ModelPortabilityWarning, UserWarning)


def test_strict_refuses_a_script_class_and_writes_nothing(
    reg: Registry, home: Path, script_names: tuple[type, Any]
) -> None:
    cls, _ = script_names
    with pytest.raises(NotPortable) as info:
        reg.register("doubler", cls(), format="pickle", strict=True)
    assert isinstance(info.value, InvalidInput) and isinstance(info.value, ValueError)
    assert info.value.names == ("__main__.Doubler",)
    assert "__main__.Doubler" in str(info.value) and "Nothing was written" in str(info.value)
    with pytest.raises(ModelNotFound):
        reg.get("doubler")
    assert blob_files(home) == [] and temp_files(home) == []


def test_warnings_as_errors_leave_nothing_behind_either(
    reg: Registry, home: Path, script_names: tuple[type, Any]
) -> None:
    cls, _ = script_names
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelPortabilityWarning)
        with pytest.raises(ModelPortabilityWarning):
            reg.register("doubler", cls())
    assert reg.models() == [] and blob_files(home) == [] and temp_files(home) == []


def test_the_same_script_still_loads_it(reg: Registry, script_names: tuple[type, Any]) -> None:
    cls, _ = script_names
    with pytest.warns(ModelPortabilityWarning):
        reg.register("doubler", cls())
    assert reg.load("doubler").predict([1.0]).tolist() == [2.0]


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
def test_another_process_is_told_to_move_the_class_not_to_install_packages(
    reg: Registry, script_names: tuple[type, Any], monkeypatch: pytest.MonkeyPatch, fmt: str
) -> None:
    cls, _ = script_names
    with pytest.warns(ModelPortabilityWarning):
        reg.register("doubler", cls(), format=fmt)
    _leave_the_script(monkeypatch)
    with pytest.raises(SerializationError) as info:
        reg.load("doubler")
    message = str(info.value)
    assert message.startswith("doubler:1: the artifact is intact")
    assert "it needs __main__.Doubler, defined in the __main__ module of the script that registered" in message
    assert "module of its own" in message and "register the model from there again" in message
    assert "install the packages" not in message and "installing packages cannot help" in message
    assert "Can't get attribute 'Doubler'" in message  # pickle's own words are kept, at the end


def test_a_safe_load_does_not_suggest_trusting_a_name_that_cannot_be_imported(
    reg: Registry, script_names: tuple[type, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    cls, _ = script_names
    with pytest.warns(ModelPortabilityWarning):
        reg.register("doubler", cls())
    _leave_the_script(monkeypatch)
    for trusted in (None, ["__main__.Doubler"]):
        with pytest.raises(UnsafeArtifact) as info:
            reg.load("doubler", safe=True, trusted=trusted)
        message = str(info.value)
        assert info.value.global_name == "__main__.Doubler"
        assert "trusted=[" not in message and "trusting it cannot help" in message
        assert "module of its own" in message


def test_a_safe_load_in_the_script_itself_still_suggests_trusted(reg: Registry, script_names: tuple[type, Any]) -> None:
    cls, _ = script_names
    with pytest.warns(ModelPortabilityWarning):
        reg.register("doubler", cls())
    with pytest.raises(UnsafeArtifact, match=r"pass trusted=\['__main__.Doubler'\]"):
        reg.load("doubler", safe=True)  # here the name does resolve: trusting it works
    assert reg.load("doubler", safe=True, trusted=["__main__.Doubler"]).predict([2.0]).tolist() == [4.0]


class _Tripwire:
    """A host object whose property, descriptor and ``__getattr__`` record that they ran."""

    ran: list[str] = []

    @property
    def prop(self) -> str:
        _Tripwire.ran.append("property")
        return "ran"

    def __getattr__(self, name: str) -> str:
        _Tripwire.ran.append(f"__getattr__({name})")
        return "ran"


@pytest.mark.parametrize("dotted", ["tripwire.prop", "tripwire.anything", "tripwire.prop.deeper"])
@pytest.mark.parametrize("fmt", ["pickle", "joblib"])
def test_a_safe_load_refusing_a_main_name_runs_nothing_of_the_host_script(
    reg: Registry, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, dotted: str, fmt: str
) -> None:
    """The attacker names ``__main__.tripwire.prop``: choosing the refusal's words must not read it with getattr.

    The host's ``__main__`` (a server's script) has an object whose property
    and ``__getattr__`` have side effects; a crafted pickle names them. The
    safe loader refuses the global, and deciding whether to suggest
    ``trusted=`` used to walk the name with ``getattr``, running the host's
    code in the middle of a load that promises nothing ran.
    """
    _Tripwire.ran.clear()
    monkeypatch.setattr(sys.modules["__main__"], "tripwire", _Tripwire(), raising=False)
    module, name = b"__main__", dotted.encode()
    payload = (  # protocol 4: SHORT_BINUNICODE module, SHORT_BINUNICODE name, STACK_GLOBAL, STOP
        b"\x80\x04\x8c" + bytes([len(module)]) + module + b"\x8c" + bytes([len(name)]) + name + b"\x93."
    )
    path = tmp_path / f"payload.{fmt}"
    path.write_bytes(payload)
    mv = reg.register_file("hostile", path, format=fmt, check=False)
    with pytest.raises(UnsafeArtifact) as info:
        reg.load(mv.ref, safe=True)
    assert _Tripwire.ran == []
    assert "trusted=[" not in str(info.value)
    with pytest.raises(UnsafeArtifact):
        reg.register_file("hostile", path, format=fmt, check="safe")  # the safe check of a file
    assert _Tripwire.ran == []


def _local_class() -> Any:
    class Local:
        pass

    return Local()


@pytest.mark.parametrize("fmt", ["joblib", "pickle"])
@pytest.mark.parametrize("make", [_local_class, lambda: lambda x: x], ids=["local-class", "lambda"])
def test_local_classes_and_lambdas_are_refused_saying_where_to_define_them(
    reg: Registry, home: Path, fmt: str, make: Any
) -> None:
    with pytest.raises(SerializationError) as info:
        reg.register("local", make(), format=fmt, strict=True)
    message = str(info.value)
    assert "defined inside a function, or a lambda" in message
    assert "top level of a module the loading side can import" in message
    assert reg.models() == [] and blob_files(home) == []


def test_an_importable_model_registers_without_a_warning(reg: Registry, knn: Any, iris: tuple[Any, Any]) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("error", ModelPortabilityWarning)
        reg.register("iris-knn", knn, strict=True)
        reg.register("iris-pipe", _pipeline_with(_double, iris), strict=True)  # a function of an importable module


def test_which_names_are_unportable() -> None:
    names = [
        "numpy.dtype",
        "__main__.Foo",
        "__mp_main__.Foo",
        "mylib.make.<locals>.Bar",
        "mylib.<lambda>",
        "main.Foo",
        "mylib.__main__",
    ]
    assert unportable(names) == ("__main__.Foo", "__mp_main__.Foo", "mylib.make.<locals>.Bar", "mylib.<lambda>")
    assert missing_here(["mylib.make.<locals>.Bar"]) == ("mylib.make.<locals>.Bar",)  # never importable
    assert missing_here(["__main__.no_such_name_here"]) == ("__main__.no_such_name_here",)


SCRIPT = """\
import sys

from registry import NotPortable, Registry


class Doubler:
    def predict(self, X):
        return [2 * x for x in X]


with Registry(sys.argv[1]) as reg:
    mv = reg.register("doubler", Doubler())
    print("registered:", mv.ref, list(mv.imports))
    try:
        reg.register("doubler", Doubler(), strict=True)
    except NotPortable as error:
        print("strict:", list(error.names))
    print("versions:", [v.version for v in reg.versions("doubler")])
    print("here:", reg.load("doubler").predict([1, 2]))
"""

LOADER = """\
import sys

from registry import Registry, SerializationError, UnsafeArtifact

with Registry(sys.argv[1]) as reg:
    for options in ({}, {"safe": True}, {"safe": True, "trusted": ["__main__.Doubler"]}):
        try:
            reg.load("doubler", **options)
        except (SerializationError, UnsafeArtifact) as error:
            print(type(error).__name__, error)
"""


def test_a_script_registers_with_a_warning_and_another_process_is_told_to_move_the_class(tmp_path: Path) -> None:
    (tmp_path / "train.py").write_text(SCRIPT)
    home = str(tmp_path / "models")
    run = subprocess.run([sys.executable, "train.py", home], cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    line = SCRIPT.splitlines().index('    mv = reg.register("doubler", Doubler())') + 1
    assert f"train.py:{line}: ModelPortabilityWarning: model 'doubler': the artifact imports __main__.Doubler" in (
        run.stderr
    )
    assert "module of its own" in run.stderr
    assert "registered: doubler:1 ['__main__.Doubler']" in run.stdout
    assert "strict: ['__main__.Doubler']" in run.stdout and "versions: [1]" in run.stdout
    assert "here: [2, 4]" in run.stdout  # the script itself can load it back: the trap is silent there

    load = subprocess.run(
        [sys.executable, "-c", LOADER, home], cwd=tmp_path, capture_output=True, text=True, timeout=120
    )
    assert load.returncode == 0, load.stderr
    unsafe, safe, trusted = load.stdout.splitlines()
    assert unsafe.startswith("SerializationError doubler:1: the artifact is intact")
    assert "it needs __main__.Doubler, defined in the __main__ module of the script that registered" in unsafe
    assert "module of its own" in unsafe and "install the packages" not in unsafe
    for refusal in (safe, trusted):
        assert refusal.startswith("UnsafeArtifact refused to load the global '__main__.Doubler'")
        assert "trusted=[" not in refusal and "trusting it cannot help" in refusal
        assert "module of its own" in refusal


def test_a_skops_artifact_of_a_script_class_is_explained_the_same_way(
    reg: Registry, script_names: tuple[type, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("skops")
    from registry import UntrustedTypes

    cls, _ = script_names
    with pytest.warns(ModelPortabilityWarning, match="__main__.Doubler"):
        reg.register("doubler", cls(), format="skops")
    _leave_the_script(monkeypatch)
    with pytest.raises(UntrustedTypes) as info:
        reg.load("doubler")
    assert "pass trusted=" not in str(info.value) and "trusting it cannot help" in str(info.value)
    with pytest.raises(SerializationError, match="module of its own"):
        reg.load("doubler", trusted=["__main__.Doubler"])


def test_a_file_saved_by_a_script_is_refused_saying_to_move_the_class(
    reg: Registry, script_names: tuple[type, Any], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    import joblib

    cls, _ = script_names
    path = tmp_path / "doubler.joblib"
    joblib.dump(cls(), path)  # what `python train.py` leaves behind for `modelshelf register`
    _leave_the_script(monkeypatch)
    with pytest.raises(UnsafeArtifact) as info:
        reg.register_file("doubler", path, check="safe")
    assert "trusting it cannot help" in str(info.value) and "--unsafe-check" not in str(info.value)
    with pytest.raises(SerializationError) as unsafe:
        reg.register_file("doubler", path, check="unsafe")
    assert "module of its own" in str(unsafe.value) and "check the format" not in str(unsafe.value)
    assert reg.models() == []
