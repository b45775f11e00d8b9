"""The import inventory against CPython's own parser: it must list every global CPython would import.

A scanner that parses a stream one way while the unpickler parses it
another (memo confusion, frames, protocol-0 text forms, extension codes)
reports a clean inventory for a hostile file. The ground truth here is
CPython's C unpickler itself, run with a ``find_class`` that records each
``module.name`` it is asked for and hands back an inert placeholder class,
so nothing the stream names is imported or run. The inventory modelshelf
records for the same bytes (``register_file(check=False)``, which runs
nothing either) must contain every recorded name.
"""

from __future__ import annotations

import copyreg
import functools
import io
import pickle
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from registry import Registry, SerializationError, UnsafeArtifact
from tests.pickle_payloads import (
    call,
    call_with,
    data,
    embedded,
    global_,
    memoize,
    program,
    recall,
    stack_global,
    text,
    then,
)

EXTENSION = ("sklearn.base", "np.f2py.subprocess.Popen", 0xF5)


class _InertMeta(type):
    def __setitem__(cls, key: Any, value: Any) -> None:
        pass


class _Inert(metaclass=_InertMeta):
    """Whatever the stream does to a global (call it, build it, append to it), nothing happens."""

    def __new__(cls, *args: Any, **kwargs: Any) -> Any:
        return object.__new__(cls)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        pass

    def __call__(*args: Any, **kwargs: Any) -> Any:
        return _Inert()

    def __setstate__(*args: Any) -> None:
        pass

    def __setitem__(*args: Any) -> None:
        pass

    def append(*args: Any) -> None:
        pass

    def extend(*args: Any) -> None:
        pass

    def add(*args: Any) -> None:
        pass


class _RecordingUnpickler(pickle.Unpickler):
    """CPython's C unpickler, asked for globals by CPython's own parse, answering with inert classes."""

    def __init__(self, file: io.BytesIO) -> None:
        super().__init__(file)
        self.imports: list[str] = []

    def find_class(self, module: str, name: str) -> Any:
        self.imports.append(f"{module}.{name}")
        return type("Inert", (_Inert,), {})

    def persistent_load(self, pid: Any) -> Any:
        raise pickle.UnpicklingError("no persistent ids")


def cpython_imports(stream: bytes) -> set[str]:
    """Every global CPython resolves while reading ``stream``, up to where it stops (or fails)."""
    unpickler = _RecordingUnpickler(io.BytesIO(stream))
    try:
        unpickler.load()
    except Exception:  # a stream built to fail after its payload: the names asked for so far still count
        pass
    return set(unpickler.imports)


@functools.cache  # built once (it fits a forest): every test reads the same immutable bytes
def _corpus() -> dict[str, bytes]:
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.linear_model import LogisticRegression

    popen = "np.f2py.subprocess.Popen"
    argv = ["touch", "/nonexistent"]
    memo_confusion = (
        memoize(text("posix"), 0)
        + pickle.POP
        + memoize(text("system"), 1)
        + pickle.POP
        + text("sklearn.linear_model")
        + pickle.MEMOIZE
        + pickle.POP
        + text("LogisticRegression")
        + pickle.MEMOIZE
        + pickle.POP
        + recall(0)
        + recall(1)
        + pickle.STACK_GLOBAL
    )
    decoy = pickle.NONE + pickle.STOP
    straddle = (
        pickle.PROTO
        + b"\x04"
        + pickle.FRAME
        + (2).to_bytes(8, "little")
        + pickle.SHORT_BINUNICODE
        + bytes([len(decoy)])
        + decoy
        + pickle.POP
        + call(global_("posix", "system"), "true")
        + pickle.STOP
    )
    getter = global_("sklearn.feature_selection._base", "attrgetter")
    return {
        "GLOBAL chain": program(call(global_("sklearn.base", popen), argv)),
        "STACK_GLOBAL memo confusion": program(call(memo_confusion, "true")),
        "INST": (pickle.MARK + data(argv) + pickle.INST + b"sklearn.base\n" + popen.encode() + b"\n" + pickle.STOP),
        "OBJ": program(pickle.MARK + global_("sklearn.base", popen) + data(argv) + pickle.OBJ, protocol=1),
        "EXT1": program(call(pickle.EXT1 + bytes([EXTENSION[2]]), argv), protocol=2),
        "protocol 0 text": b"cposix\nsystem\np0\n0g0\n(S'true'\ntR.",
        "frame straddling": straddle,
        "behind a real estimator": program(
            then(call(global_("posix", "system"), "true"), embedded(LogisticRegression()))
        ),
        "broken after the payload": program(then(call(global_("posix", "system"), "true"), recall(250))),
        "re-export chain": program(
            call_with(call(getter, "system"), call(global_("importlib", "import_module"), "os"))
        ),
        "unicode look-alike": program(call(stack_global("\u0455klearn.base", "BaseEstimator"), 1)),
        "BUILD on a class": program(global_("scipy.sparse", "csr_matrix") + data((None, {"x": 1})) + pickle.BUILD),
        "legitimate logistic regression": pickle.dumps(LogisticRegression(), protocol=5),
        "legitimate forest": pickle.dumps(
            RandomForestClassifier(n_estimators=2, random_state=0).fit([[0.0], [1.0]], [0, 1]), protocol=5
        ),
    }


CORPUS = sorted(_corpus())


@pytest.fixture
def extension() -> Iterator[None]:
    copyreg.add_extension(*EXTENSION)
    yield
    copyreg.remove_extension(*EXTENSION)


def test_the_recorder_sees_what_the_payloads_name(extension: None) -> None:
    """Guard the ground truth: the recorder finds the hidden names, and runs none of them."""
    corpus = _corpus()
    assert cpython_imports(corpus["STACK_GLOBAL memo confusion"]) == {"posix.system"}
    assert cpython_imports(corpus["EXT1"]) == {"sklearn.base.np.f2py.subprocess.Popen"}
    assert "posix.system" in cpython_imports(corpus["frame straddling"])
    assert "posix.system" in cpython_imports(corpus["broken after the payload"])


@pytest.mark.parametrize("name", CORPUS)
def test_the_recorded_inventory_lists_every_global_cpython_would_import(
    reg: Registry, tmp_path: Path, extension: None, name: str
) -> None:
    stream = _corpus()[name]
    expected = cpython_imports(stream)
    assert expected, "the corpus entry names no global at all"
    path = tmp_path / "artifact.pkl"
    path.write_bytes(stream)
    try:
        mv = reg.register_file("scanned", path, format="pickle", check=False)
    except (SerializationError, UnsafeArtifact):  # refusing bytes it cannot read is fine; a short inventory is not
        assert not name.startswith("legitimate"), "an ordinary pickle was refused at registration"
        assert reg.models() == []
        return
    assert mv.imports is not None, "register_file(check=False) recorded no inventory"
    missing = expected - set(mv.imports)
    assert not missing, f"{name}: the inventory misses {sorted(missing)}"
