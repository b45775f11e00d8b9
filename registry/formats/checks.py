"""Argument and state checks for the callables and classes the safe-load policy admits.

A name on the policy says *what* may run; these checks say *with what*.
Each one refuses arguments that could amplify (an integer where a
container was expected, a shape larger than the bytes that follow, a
``Tree`` with a billion outputs) or reach outside the artifact, charges
what the call will allocate to the load's budget, and only then calls.
They all have the signature ``(target, args_or_state, budget) -> object``.
"""

from __future__ import annotations

import importlib
import re
from collections.abc import Callable
from typing import Any

from registry.errors import UnsafeArtifact
from registry.formats.hooks import ArraySpec, Budget

Call = Callable[[Any, tuple[Any, ...], Budget], Any]
State = Callable[[Any, Any, Budget], Any]

_SLOT = 16
_SIZED = (list, tuple, dict, set, frozenset)


def refuse(what: str, why: str) -> UnsafeArtifact:
    return UnsafeArtifact(
        f"refused {what}: {why}; nothing was run. If you trust this artifact, load it with safe=False", what
    )


def qualified_name(obj: Any) -> str:
    """``module.qualname`` of ``obj`` for messages."""
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if type(values) is not tuple or not all(type(v) is int and v >= 0 for v in values):
        raise refuse(what, f"a shape must be a tuple of non-negative integers, not a {type(values).__name__}")
    return values


def _count(shape: tuple[int, ...]) -> int:
    count = 1
    for extent in shape:
        count *= extent
    return count


# -- builtins -----------------------------------------------------------------------------


def container(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``list``/``tuple``/``set``/``frozenset``/``dict`` of nothing or of an existing container only.

    An iterable such as ``range(10**8)`` would let 45 bytes allocate gigabytes.
    """
    if len(args) > 1 or (args and type(args[0]) not in _SIZED):
        kinds = ", ".join(type(a).__name__ for a in args)
        raise refuse(f"builtins.{func.__name__}({kinds})", "only a container is copied")
    budget.charge(64 + 3 * _SLOT * (len(args[0]) if args else 0), f"builtins.{func.__name__}")
    if args and func in (set, frozenset, dict):
        _refuse_colliding_keys(args[0] if func is not dict else _pair_keys(args[0]), f"builtins.{func.__name__}")
    return func(*args)


#: ``hash(k) == hash(k + n * (2**61 - 1))``: from this size on, integer keys can be made to share one hash.
_COLLIDING_INT = 1 << 61


def _pair_keys(pairs: Any) -> Any:
    if type(pairs) is dict:
        return ()  # its keys were stored by the stream, which refuses colliding ones
    return (pair[0] for pair in pairs if type(pair) in (tuple, list) and pair)


def _refuse_colliding_keys(keys: Any, what: str) -> None:
    """Keys chosen to share a hash make building a set or dict quadratic (150 000 keys: minutes)."""
    for key in keys:
        parts = key if type(key) is tuple else (key,)
        if any(type(part) is int and abs(part) >= _COLLIDING_INT for part in parts):
            raise refuse(what, "an integer key of 61 bits or more (such keys can be chosen to share one hash)")


def scalar_type(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``int``/``float``/``complex``/``bool``/``str``/``slice``/``range`` of small scalars only."""
    allowed = (int, float, bool, type(None)) if func in (slice, range, complex) else (int, float, bool, str)
    if (
        len(args) > 3
        or not all(type(a) in allowed for a in args)
        or any(type(a) is str and len(a) > 4096 for a in args)
    ):
        raise refuse(f"builtins.{func.__name__} with these arguments", "only small scalar arguments are accepted")
    budget.charge(64, f"builtins.{func.__name__}")
    return func(*args)


def byte_string(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``bytes``/``bytearray`` of existing bytes or a latin-1 string; never of an integer (a length)."""
    ok = (
        not args
        or (len(args) == 1 and type(args[0]) in (bytes, bytearray))
        or (len(args) == 2 and type(args[0]) is str and args[1] in ("latin1", "latin-1"))
    )
    if not ok:
        raise refuse(
            f"builtins.{func.__name__}({', '.join(type(a).__name__ for a in args)})",
            "an integer argument is a length to allocate",
        )
    budget.charge(64 + (len(args[0]) if args else 0), f"builtins.{func.__name__}")
    return func(*args)


def codecs_encode(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``_codecs.encode(text, 'latin1')``: how protocols 0-2 write bytes; no other codec."""
    if len(args) != 2 or type(args[0]) is not str or args[1] not in ("latin1", "latin-1"):
        raise refuse("_codecs.encode with these arguments", "only latin-1 text is decoded")
    budget.charge(64 + len(args[0]), "_codecs.encode")
    return func(*args)


def ordered_dict(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    if args and not (len(args) == 1 and type(args[0]) in (list, tuple, dict)):
        raise refuse("collections.OrderedDict with these arguments", "only a container of pairs is copied")
    budget.charge(64 + 6 * _SLOT * (len(args[0]) if args else 0), "collections.OrderedDict")
    if args:
        _refuse_colliding_keys(_pair_keys(args[0]), "collections.OrderedDict")
    return func(*args)


_FACTORIES = (list, dict, set, int, float, str, tuple, type(None))


def default_dict(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``defaultdict(factory)`` only with a plain container or number type as factory (called on a miss)."""
    if len(args) > 1 or (args and not (args[0] is None or args[0] in _FACTORIES)):
        raise refuse("collections.defaultdict with this factory", "its factory would run on every missing key")
    budget.charge(64, "collections.defaultdict")
    return func(*args)


def deque(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    if (
        len(args) > 2
        or (args and type(args[0]) not in (list, tuple))
        or (len(args) == 2 and type(args[1]) not in (int, type(None)))
    ):
        raise refuse("collections.deque with these arguments", "only a list and a maximum length are accepted")
    budget.charge(64 + _SLOT * (len(args[0]) if args else 0), "collections.deque")
    return func(*args)


def counter(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    if args and not (len(args) == 1 and type(args[0]) is dict):
        raise refuse("collections.Counter with these arguments", "only a dict of counts is copied")
    budget.charge(64 + 3 * _SLOT * (len(args[0]) if args else 0), "collections.Counter")
    return func(*args)


def datetime_type(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``datetime``/``date``/``time``/``timedelta``/``timezone`` from their own short pickled state."""
    allowed = (bytes, int, float, str, type(None))
    if (
        len(args) > 8
        or any(type(a) not in allowed and not _is_tz(a) for a in args)
        or any(type(a) in (bytes, str) and len(a) > 64 for a in args)
    ):
        raise refuse(f"datetime.{func.__name__} with these arguments", "only its own short pickled state is accepted")
    budget.charge(128, f"datetime.{func.__name__}")
    return func(*args)


def _is_tz(value: Any) -> bool:
    import datetime

    return type(value) in (datetime.timezone, datetime.timedelta)


# -- numpy -------------------------------------------------------------------------------------

_DTYPE_SPEC = re.compile(r"[<>|=]?[a-zA-Z]{1,2}[0-9]{0,10}")


def dtype(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``numpy.dtype('f8', align, copy)``: a short type code only (fields arrive by BUILD)."""
    if not args or len(args) > 3 or type(args[0]) is not str or not _DTYPE_SPEC.fullmatch(args[0]):
        raise refuse("numpy.dtype with these arguments", "only a short type code such as 'f8' is accepted")
    if any(type(a) not in (bool, int) or a not in (0, 1) for a in args[1:]):  # old pickles write 0 and 1
        raise refuse("numpy.dtype with these arguments", "align and copy must be booleans")
    budget.charge(256, "numpy.dtype")
    result = func(*args)
    if result.itemsize > 2**31:
        raise refuse(f"numpy.dtype({args[0]!r})", "its item size is absurdly large")
    return result


def dtype_state(obj: Any, state: Any, budget: Budget) -> Any:
    """A dtype's own ``__setstate__`` with the tuple numpy writes (byte order, fields, sizes)."""
    if type(state) is not tuple or not 8 <= len(state) <= 9 or type(state[0]) is not int:
        raise refuse("numpy.dtype state", "it is not the tuple numpy writes")
    fields = state[4]
    if fields is not None and (type(fields) is not dict or len(fields) > 100_000):
        raise refuse("numpy.dtype state", "its fields are not a dict")
    budget.charge(256 + 256 * (len(fields) if fields else 0), "numpy.dtype fields")
    _check_kind_state(obj, state)
    obj.__setstate__(state)
    if obj.kind == "U" and obj.itemsize % 4:
        raise refuse("numpy.dtype state", "a unicode item size must be a whole number of 4-byte characters")
    if obj.itemsize > 2**31:
        raise refuse("numpy.dtype state", "its item size is absurdly large")
    _check_layout(obj)
    return obj


_DATETIME_UNITS = frozenset(
    {b"generic", b"Y", b"M", b"W", b"D", b"h", b"m", b"s", b"ms", b"us", b"ns", b"ps", b"fs", b"as"}
)


def _check_kind_state(obj: Any, state: tuple[Any, ...]) -> None:
    """What numpy's C ``__setstate__`` dereferences without looking: a datetime's unit, a unicode size.

    A datetime dtype given state without its ``(unit, num, den, events)``
    metadata crashes the interpreter inside ``__setstate__``.
    """
    if obj.kind in ("M", "m"):
        meta = state[8] if len(state) == 9 else None
        unit = meta[1] if type(meta) is tuple and len(meta) == 2 else None
        if (
            type(unit) is not tuple
            or len(unit) != 4
            or unit[0] not in _DATETIME_UNITS
            or not all(type(v) is int for v in unit[1:])
            or not 1 <= unit[1] < 2**31
            or unit[2:] != (1, 1)
        ):
            raise refuse("numpy.dtype state", "a datetime dtype needs its unit metadata as numpy writes it")
    if obj.kind == "U" and (type(state[5]) is not int or state[5] % 4):
        raise refuse("numpy.dtype state", "a unicode item size must be a whole number of 4-byte characters")


def _holds_objects(descr: Any) -> bool:
    if descr.subdtype is not None:
        return _holds_objects(descr.subdtype[0])
    if descr.fields:
        return any(_holds_objects(field[0]) for field in descr.fields.values())
    return bool(descr.kind == "O")


def _check_layout(descr: Any) -> None:
    """numpy's dtype ``__setstate__`` trusts its input: object fields must be flagged, in bounds, apart.

    Unflagged, an object field lets raw artifact bytes become pointers; out of
    bounds or overlapping, filling it from a list writes outside the item.
    """
    import numpy

    if _holds_objects(descr) != descr.hasobject:
        raise refuse("numpy.dtype state", "its flags hide object fields (raw bytes would become pointers)")
    if descr.subdtype is not None:
        base, shape = descr.subdtype
        _check_layout(base)
        if base.itemsize * _count(tuple(shape)) != descr.itemsize:
            raise refuse("numpy.dtype state", "its subarray does not fill its item size")
        return
    if not descr.fields:
        return
    spans = []
    for field in descr.fields.values():
        sub, offset = field[0], field[1]
        _check_layout(sub)
        if offset < 0 or offset + sub.itemsize > descr.itemsize:
            raise refuse("numpy.dtype state", "a field lies outside the item")
        spans.append((offset, offset + sub.itemsize, _holds_objects(sub)))
    pointer = numpy.dtype("O").alignment
    for start, stop, objects in spans:
        if not objects:
            continue
        if start % pointer:
            raise refuse("numpy.dtype state", "an object field is misaligned")
        for other_start, other_stop, _ in spans:
            if (other_start, other_stop) != (start, stop) and other_start < stop and start < other_stop:
                raise refuse("numpy.dtype state", "an object field overlaps another field")


def _ndarray_class() -> Any:
    import numpy

    return numpy.ndarray


def reconstruct(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``_reconstruct(ndarray, (0,), b'b')``: the empty array numpy's pickles fill by BUILD."""
    if len(args) != 3 or args[0] is not _ndarray_class() or args[1] != (0,) or args[2] not in (b"b", "b"):
        raise refuse("numpy _reconstruct with these arguments", "only an empty numpy.ndarray is reconstructed")
    budget.charge(128, "numpy _reconstruct")
    return func(*args)


def ndarray_state(obj: Any, state: Any, budget: Budget) -> Any:
    """``ndarray.__setstate__`` only with data exactly as long as the shape and dtype say."""
    import numpy

    if type(state) is not tuple or len(state) not in (4, 5):
        raise refuse("numpy.ndarray state", "it is not the tuple numpy writes")
    shape, descr, fortran, data = state[-4:]
    shape = _ints(shape, "numpy.ndarray state")
    if not isinstance(descr, numpy.dtype) or type(fortran) is not bool:
        raise refuse("numpy.ndarray state", "its dtype or order is not what numpy writes")
    count = _count(shape)
    if descr.hasobject:
        if type(data) is not list or len(data) != count:
            raise refuse(f"numpy.ndarray of shape {shape}", f"an object array needs {count} items")
        budget.charge(64 + 8 * count, f"numpy.ndarray of shape {shape}")
    else:
        if type(data) not in (bytes, bytearray) or len(data) != count * descr.itemsize:
            have = len(data) if type(data) in (bytes, bytearray) else type(data).__name__
            raise refuse(
                f"numpy.ndarray of shape {shape} and dtype {descr}",
                f"it needs {count * descr.itemsize} bytes of data, the artifact holds {have}",
            )
        budget.charge(128 + count * descr.itemsize, f"numpy.ndarray of shape {shape}")
    obj.__setstate__(state)
    return obj


def frombuffer(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``_frombuffer(buffer, dtype, shape, order)`` (protocol 5) with a buffer exactly that long."""
    import numpy

    if len(args) != 4 or type(args[0]) not in (bytes, bytearray) or not isinstance(args[1], numpy.dtype):
        raise refuse("numpy _frombuffer with these arguments", "only in-band bytes and a dtype are accepted")
    shape = _ints(args[2], "numpy _frombuffer")
    if args[1].hasobject or args[3] not in ("C", "F") or len(args[0]) != _count(shape) * args[1].itemsize:
        raise refuse(f"numpy _frombuffer of shape {shape}", "the buffer's length does not match the shape")
    budget.charge(128, "numpy _frombuffer")
    return func(*args)


def numpy_scalar(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``scalar(dtype, data)`` with exactly one item's bytes (or one object for object dtype)."""
    import numpy

    if len(args) not in (1, 2) or not isinstance(args[0], numpy.dtype):
        raise refuse("numpy scalar with these arguments", "it needs a dtype and one item")
    descr = args[0]
    if descr.hasobject and (descr.kind != "O" or descr.fields is not None or descr.subdtype is not None):
        raise refuse(f"numpy scalar of dtype {descr}", "only a plain object dtype may hold an object")
    if not descr.hasobject:
        data = args[1] if len(args) == 2 else b""
        if type(data) is str:
            data = data.encode("latin-1")
        if type(data) is not bytes or len(data) != descr.itemsize:
            raise refuse(f"numpy scalar of dtype {descr}", f"it needs exactly {descr.itemsize} bytes")
        args = (descr, data)
    budget.charge(128 + descr.itemsize, "numpy scalar")
    return func(*args)


def array_wrapper_state(obj: Any, state: Any, budget: Budget) -> ArraySpec:
    """A joblib ``NumpyArrayWrapper``'s state becomes the spec of the array bytes that follow."""
    import numpy

    if type(state) is not dict or not all(type(key) is str for key in state):
        # A key the import scan cannot read (a call's result) could name 'shape': scan and load would diverge.
        raise refuse("joblib NumpyArrayWrapper state", "it is not a dict of plain names")
    shape = _ints(state.get("shape"), "joblib NumpyArrayWrapper")
    descr, order = state.get("dtype"), state.get("order", "C")
    alignment = state.get("numpy_array_alignment_bytes")
    if state.get("subclass") is not numpy.ndarray:
        raise refuse("joblib NumpyArrayWrapper", "only plain numpy.ndarray arrays are accepted")
    if not isinstance(descr, numpy.dtype) or order not in ("C", "F") or alignment not in (None, 16):
        raise refuse("joblib NumpyArrayWrapper", "its dtype, order or alignment is not what joblib writes")
    budget.charge(128, "joblib NumpyArrayWrapper")
    return ArraySpec(shape=shape, order=order, dtype=descr, aligned=alignment is not None)


# -- numpy.random --------------------------------------------------------------------------------

_BIT_GENERATORS = ("MT19937", "PCG64", "PCG64DXSM", "Philox", "SFC64")


def random_ctor(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """numpy.random's pickle constructors: a bit generator by name or class, or an instance, nothing else."""
    import numpy.random

    def acceptable(arg: Any) -> bool:
        if type(arg) is str:
            return arg in _BIT_GENERATORS
        if isinstance(arg, type):
            return arg.__name__ in _BIT_GENERATORS and getattr(numpy.random, arg.__name__, None) is arg
        if isinstance(arg, numpy.random.BitGenerator):
            return type(arg).__name__ in _BIT_GENERATORS
        return getattr(arg, "__module__", None) == "numpy.random._pickle" and arg is getattr(
            importlib.import_module("numpy.random._pickle"), "__bit_generator_ctor", None
        )

    if len(args) > 2 or not all(acceptable(a) for a in args):
        raise refuse(f"{qualified_name(func)} with these arguments", "only a numpy bit generator is accepted")
    budget.charge(8192, qualified_name(func))
    return func(*args)


def cython_unpickle(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """Cython's ``__pyx_unpickle_Name(Name, checksum, state)``: only for the class it is named after."""
    cls_name = func.__name__.removeprefix("__pyx_unpickle_")
    cls = args[0] if args else None
    module = getattr(func, "__module__", None)
    if (
        len(args) != 3
        or not isinstance(cls, type)
        or cls.__name__ != cls_name
        or cls.__module__ != module
        or type(args[1]) is not int
        or type(args[2]) not in (tuple, type(None))
    ):
        raise refuse(f"{qualified_name(func)} with these arguments", f"it only rebuilds {module}.{cls_name}")
    budget.charge(256 + _SLOT * (len(args[2]) if args[2] else 0), qualified_name(func))
    return func(*args)


def new_object(func: Any, args: tuple[Any, ...], budget: Budget, *, allowed: Callable[[Any], bool]) -> Any:
    """scikit-learn's ``newObj(cls)`` (``cls.__new__(cls)``) for a class the policy lets be instantiated."""
    if len(args) != 1 or not isinstance(args[0], type) or not allowed(args[0]):
        raise refuse(f"{qualified_name(func)} with these arguments", "it only creates classes on the policy")
    budget.charge(256, qualified_name(func))
    return func(*args)
