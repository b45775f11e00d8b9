"""The pickle and joblib formats: dumping with a record of imports, loading with an optional allow-list.

At dump time both pickle streams are watched for the globals they will
import on load (classes, functions, reconstructors), so ``mv.imports`` lets
someone audit a version before loading it, without unpickling anything.
At load time ``safe=True`` routes every global through
:func:`~registry.formats.allowlist.safe_find_class`; for joblib that includes
the nested pickle stream joblib writes for arrays of Python objects, which
this module reads itself rather than trusting the installed joblib to
restrict it.
"""

from __future__ import annotations

import pickle
import types
from collections.abc import Collection
from functools import cache
from typing import IO, Any

from registry.formats.allowlist import safe_find_class
from registry.formats.joblib_fast import load_joblib_unsafe as _load_joblib_unsafe


def _global_name(obj: Any, name: str | None = None) -> str | None:
    qualname = name or getattr(obj, "__qualname__", None)
    module = getattr(obj, "__module__", None) or (pickle.whichmodule(obj, qualname) if qualname else None)
    return f"{module}.{qualname}" if module and qualname else None


class _TracingPickler(pickle.Pickler):
    """The C pickler, noting every class and function it saves (they are saved by reference)."""

    def __init__(self, file: IO[bytes]) -> None:
        super().__init__(file, protocol=pickle.HIGHEST_PROTOCOL)
        self.imports: set[str] = set()

    def reducer_override(self, obj: Any) -> Any:
        if isinstance(obj, type) or (callable(obj) and hasattr(obj, "__qualname__")):
            name = _global_name(obj)
            if name:
                self.imports.add(name)
        return NotImplemented


class _SafeUnpickler(pickle.Unpickler):
    def __init__(self, file: IO[bytes], trusted: Collection[str]) -> None:
        super().__init__(file)
        self._trusted = trusted

    def find_class(self, module: str, name: str) -> Any:
        return safe_find_class(module, name, self._trusted)


class PickleFormat:
    """Plain pickle, highest protocol."""

    name = "pickle"

    def dump(self, obj: Any, file: IO[bytes]) -> tuple[str, ...]:
        pickler = _TracingPickler(file)
        pickler.dump(obj)
        return tuple(sorted(pickler.imports))

    def load(self, file: IO[bytes], *, safe: bool, trusted: Collection[str]) -> Any:
        if safe:
            return _SafeUnpickler(file, trusted).load()
        return pickle.load(file)


@cache
def _joblib_pickler() -> type:
    """joblib's pickler, noting the globals it saves (it is the pure-Python pickler underneath)."""
    from joblib.numpy_pickle import NumpyPickler

    class TracingNumpyPickler(NumpyPickler):  # type: ignore[misc]
        dispatch = NumpyPickler.dispatch.copy()

        def __init__(self, file: IO[bytes]) -> None:
            super().__init__(file, protocol=None)
            self.imports: set[str] = set()

        def save_global(self, obj: Any, name: str | None = None) -> None:
            qualified = _global_name(obj, name)
            if qualified:
                self.imports.add(qualified)
            super().save_global(obj, name)

        # The dispatch table holds the base class's save_global for functions; route them here too.
        dispatch[types.FunctionType] = save_global

    return TracingNumpyPickler


@cache
def _joblib_safe_unpickler() -> type:
    """joblib's unpickler with the allow-list, reading object arrays' nested streams itself."""
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class SafeNumpyUnpickler(NumpyUnpickler):  # type: ignore[misc]
        dispatch = NumpyUnpickler.dispatch.copy()

        def __init__(self, file: IO[bytes], trusted: Collection[str]) -> None:
            super().__init__("", file, ensure_native_byte_order=True)
            self.trusted = trusted

        def find_class(self, module: str, name: str) -> Any:
            return safe_find_class(module, name, self.trusted)

        def load_build(self) -> None:
            pickle._Unpickler.load_build(self)  # type: ignore[attr-defined]
            wrapper = self.stack[-1]
            if not isinstance(wrapper, NumpyArrayWrapper):
                return
            self.stack.pop()
            if wrapper.dtype.hasobject:  # a nested pickle stream: read it with this same restricted class
                self.stack.append(SafeNumpyUnpickler(self.file_handle, self.trusted).load())
            else:  # raw array bytes, nothing to unpickle
                self.stack.append(wrapper.read(self, self.ensure_native_byte_order))

        dispatch[pickle.BUILD[0]] = load_build

    return SafeNumpyUnpickler


class JoblibFormat:
    """joblib's uncompressed format: numpy arrays written raw after their wrapper."""

    name = "joblib"

    def dump(self, obj: Any, file: IO[bytes]) -> tuple[str, ...]:
        pickler = _joblib_pickler()(file)
        pickler.dump(obj)
        return tuple(sorted(pickler.imports))

    def load(self, file: IO[bytes], *, safe: bool, trusted: Collection[str]) -> Any:
        if safe:
            return _joblib_safe_unpickler()(file, trusted).load()
        return _load_joblib_unsafe(file)
