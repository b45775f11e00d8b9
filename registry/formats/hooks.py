"""The seams of the restricted interpreter: its budget, its refusals, and the hooks that decide.

:class:`Hooks` is everything :class:`~registry.formats.unpickler.Interpreter`
does not decide itself (which globals, calls, instantiations and state
stores are acceptable); the restricted loader and the import scanner
implement it. :class:`Budget` bounds what one load may allocate by the size
of the artifact, and :class:`ArraySpec` is a joblib array's description
after its wrapper's BUILD.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from registry.errors import ArtifactTooLarge, SerializationError

#: What a safe load may allocate: this many times the artifact's size ...
SIZE_MULTIPLE = 16
#: ... plus this many bytes, whatever the size.
SIZE_CONSTANT = 64 * 2**20


class Malformed(SerializationError):
    """The bytes are not a pickle this interpreter will read (truncated, inconsistent, straddling a frame)."""


class NotAPickle(Malformed):
    """The bytes do not even begin as a pickle: CPython's unpickler stops at the first byte too, importing nothing.

    Every other :class:`Malformed` stream may still be run in part by
    CPython (which reads on to the bad spot and does not insist on frames),
    so only this one can honestly be said to import nothing.
    """


class Budget:
    """The bytes a load may still allocate; refuses with :class:`ArtifactTooLarge` when spent."""

    def __init__(self, input_size: int) -> None:
        self.limit = SIZE_MULTIPLE * input_size + SIZE_CONSTANT
        self.spent = 0

    def charge(self, nbytes: int, what: str) -> None:
        """Account ``nbytes`` for ``what`` before (or as) it is allocated."""
        self.spent += nbytes
        if self.spent > self.limit:
            raise ArtifactTooLarge(
                f"refused to load: {what} would bring the allocations of this load to {self.spent} bytes, "
                f"more than the {self.limit} bytes allowed for an artifact of this size "
                f"({SIZE_MULTIPLE} x its size + {SIZE_CONSTANT >> 20} MiB); the artifact is built to amplify. "
                "If you trust it, load it with safe=False",
                what,
                self.spent,
                self.limit,
            )


@dataclass(frozen=True)
class ArraySpec:
    """A joblib ``NumpyArrayWrapper`` after BUILD: which array bytes follow in the file."""

    shape: tuple[int, ...]
    order: str
    dtype: Any
    aligned: bool


class Hooks:
    """Everything the interpreter does not decide itself. Subclasses refuse by raising."""

    def find_class(self, module: str, name: str) -> Any:
        raise NotImplementedError

    def call(self, func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
        raise NotImplementedError

    def new(self, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any], budget: Budget) -> Any:
        raise NotImplementedError

    def build(self, obj: Any, state: Any, budget: Budget) -> Any:
        """Set ``state`` on ``obj``; return what replaces it on the stack (``obj`` or an :class:`ArraySpec`)."""
        raise NotImplementedError

    def setitems(self, target: Any, pairs: list[tuple[Any, Any]]) -> None:
        raise NotImplementedError

    def extend(self, target: Any, items: list[Any]) -> None:
        raise NotImplementedError

    def add(self, target: Any, items: list[Any]) -> None:
        raise NotImplementedError

    def array(self, data: memoryview, spec: ArraySpec, budget: Budget) -> Any:
        """The array of ``spec`` over ``data`` (exactly its bytes)."""
        raise NotImplementedError

    def finish(self, value: Any) -> None:
        """The stream is done and ``value`` is what the caller gets: check what only the whole can show."""

    def payload(self, data: memoryview, kind: type) -> Any:
        """A BINBYTES/BYTEARRAY8 payload as ``kind``; a scan may stand in a placeholder (it reads no payload)."""
        return kind(data)
