"""Hostile pickle and joblib streams, written opcode by opcode, for the attack tests.

An attacker does not use ``pickle.dumps``: they write the bytes of the
pickle virtual machine directly, in any order the unpickler accepts. These
helpers do the same, from the opcode constants of the :mod:`pickle` module,
so each test can say in a few lines which instruction it abuses. Nothing
here imports the thing it names: a global is only ever spelled as text.

The building blocks compose into *expressions* (bytes that leave one value
on the unpickler's stack); :func:`program` wraps an expression into a whole
stream. Plain data (ints, strings, bytes, tuples, lists, dicts) is written
by :func:`data` with opcodes that import nothing, so the only globals in a
payload are the ones its test spells out.
"""

from __future__ import annotations

import pickle
import struct
from collections.abc import Sequence
from typing import Any

Expr = bytes
"""Pickle opcodes that push exactly one value onto the stack."""


def text(value: str) -> Expr:
    """A string with the protocol-4 opcodes; the length prefix (not a newline) ends it."""
    encoded = value.encode("utf-8", "surrogatepass")
    if len(encoded) < 256:
        return pickle.SHORT_BINUNICODE + bytes([len(encoded)]) + encoded
    return pickle.BINUNICODE + struct.pack("<I", len(encoded)) + encoded


def data(value: Any) -> Expr:
    """Plain data, written without a single global (no ``_codecs``, no ``copyreg``)."""
    if value is None:
        return pickle.NONE
    if value is True:
        return pickle.NEWTRUE
    if value is False:
        return pickle.NEWFALSE
    if isinstance(value, int):
        if 0 <= value < 256:
            return pickle.BININT1 + bytes([value])
        if -(2**31) <= value < 2**31:
            return pickle.BININT + struct.pack("<i", value)
        encoded = value.to_bytes((value.bit_length() + 8) // 8, "little", signed=True)
        return pickle.LONG1 + bytes([len(encoded)]) + encoded
    if isinstance(value, float):
        return pickle.BINFLOAT + struct.pack(">d", value)
    if isinstance(value, str):
        return text(value)
    if isinstance(value, bytes):
        if len(value) < 256:
            return pickle.SHORT_BINBYTES + bytes([len(value)]) + value
        return pickle.BINBYTES + struct.pack("<I", len(value)) + value
    if isinstance(value, tuple):
        return tuple_of([data(item) for item in value])
    if isinstance(value, list):
        return pickle.EMPTY_LIST + (pickle.MARK + b"".join(data(v) for v in value) + pickle.APPENDS if value else b"")
    if isinstance(value, dict):
        items = b"".join(data(k) + data(v) for k, v in value.items())
        return pickle.EMPTY_DICT + (pickle.MARK + items + pickle.SETITEMS if value else b"")
    raise TypeError(f"data() writes plain data only, not {type(value).__name__}")


def tuple_of(items: Sequence[Expr]) -> Expr:
    """A tuple of already-written expressions (which may themselves call things)."""
    return pickle.MARK + b"".join(items) + pickle.TUPLE


def dict_of(pairs: Sequence[tuple[Expr, Expr]]) -> Expr:
    """A dict whose keys and values are already-written expressions."""
    return pickle.EMPTY_DICT + pickle.MARK + b"".join(k + v for k, v in pairs) + pickle.SETITEMS


def global_(module: str, name: str) -> Expr:
    """The protocol-0 ``GLOBAL`` opcode: module and name as newline-ended text."""
    return pickle.GLOBAL + module.encode() + b"\n" + name.encode() + b"\n"


def stack_global(module: str, name: str) -> Expr:
    """Protocol 4's ``STACK_GLOBAL``: module and name taken from the stack, so any string is possible."""
    return text(module) + text(name) + pickle.STACK_GLOBAL


def call(func: Expr, *args: Any) -> Expr:
    """``func(*args)`` through ``REDUCE``, the arguments written as plain data."""
    return func + data(tuple(args)) + pickle.REDUCE


def call_with(func: Expr, *args: Expr) -> Expr:
    """``func(*args)`` through ``REDUCE``, the arguments being expressions of their own."""
    return func + tuple_of(args) + pickle.REDUCE


def memoize(expr: Expr, index: int) -> Expr:
    """Evaluate ``expr`` and keep it in the memo at ``index`` (``BINPUT``), leaving it on the stack."""
    return expr + pickle.BINPUT + bytes([index])


def recall(index: int) -> Expr:
    """The memo entry at ``index`` (``BINGET``)."""
    return pickle.BINGET + bytes([index])


def program(expr: Expr, protocol: int = 4) -> bytes:
    """A whole stream: protocol header, the expression, ``STOP``. No frames (a frame is only a hint)."""
    return pickle.PROTO + bytes([protocol]) + expr + pickle.STOP


def then(side_effect: Expr, result: Expr) -> Expr:
    """Run ``side_effect``, drop its value, leave ``result``: the payload hides behind a normal object."""
    return side_effect + pickle.POP + result


def embedded(obj: Any) -> Expr:
    """An ordinary object as ``pickle`` would write it (protocol 2, so no frames), as an expression.

    Its memo indices start at 0: payloads that embed it use no memo of their own before it.
    """
    stream = pickle.dumps(obj, protocol=2)
    assert stream[:2] == pickle.PROTO + b"\x02" and stream[-1:] == pickle.STOP
    return stream[2:-1]


# --- side effects an attacker wants, spelled as data ---------------------------------------------


def python_writing(path: str, content: str = "ran") -> str:
    """Python source that leaves a file behind: what an attacker runs once they reach ``exec``."""
    return f"open({path!r}, 'w').write({content!r})"


# --- joblib's container ----------------------------------------------------------------------------


def numpy_dtype(descr: str) -> Expr:
    """A ``numpy.dtype`` as numpy pickles it (``dtype(descr, False, True)`` then its state)."""
    object_flags = 63 if descr.startswith("O") else 0
    byteorder = "|" if descr.startswith(("O", "u1", "i1", "b1")) else "<"
    state = (3, byteorder, None, None, None, -1, -1, object_flags)
    return call(global_("numpy", "dtype"), descr, False, True) + data(state) + pickle.BUILD


def array_wrapper(shape: tuple[int, ...], descr: str, *, extra_state: dict[str, Any] | None = None) -> Expr:
    """joblib's ``NumpyArrayWrapper`` placeholder; the array's bytes (or nested pickle) follow ``BUILD``."""
    pairs = [
        (text("subclass"), global_("numpy", "ndarray")),
        (text("shape"), data(shape)),
        (text("order"), text("C")),
        (text("dtype"), numpy_dtype(descr)),
        (text("allow_mmap"), data(False)),
    ]
    pairs += [(text(k), data(v)) for k, v in (extra_state or {}).items()]
    wrapper = stack_global("joblib.numpy_pickle", "NumpyArrayWrapper") + pickle.EMPTY_TUPLE + pickle.NEWOBJ
    return wrapper + dict_of(pairs) + pickle.BUILD


def joblib_with_object_array(nested_stream: bytes) -> bytes:
    """A joblib file whose only array holds Python objects: joblib stores those as a nested pickle.

    The nested stream is read from the file right after the wrapper's
    ``BUILD``, by a second unpickler, and its result replaces the wrapper —
    an import that a tracer of the outer stream never sees.
    """
    outer = pickle.PROTO + b"\x04" + dict_of([(text("labels"), array_wrapper((1,), "O8"))])
    return _outer_then(outer, nested_stream)


def _outer_then(outer: bytes, nested_stream: bytes) -> bytes:
    # The dict's SETITEMS must come after the wrapper's value, which is the nested stream's result.
    assert outer.endswith(pickle.BUILD + pickle.SETITEMS)
    return outer[: -len(pickle.SETITEMS)] + nested_stream + pickle.SETITEMS + pickle.STOP


def joblib_with_raw_array(shape: tuple[int, ...], descr: str, raw: bytes) -> bytes:
    """A joblib file with one numeric array whose wrapper claims ``shape`` and is followed by ``raw``."""
    outer = pickle.PROTO + b"\x04" + dict_of([(text("weights"), array_wrapper(shape, descr))])
    return _outer_then(outer, raw)
