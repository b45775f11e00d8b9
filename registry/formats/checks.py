"""Argument and state checks for the callables and classes the safe-load policy admits.

A name on the policy says *what* may run; these checks say *with what*.
Each one refuses arguments that could amplify (an integer where a
container was expected, a shape larger than the bytes that follow, a
``Tree`` with a billion outputs) or reach outside the artifact, charges
what the call will allocate to the load's budget, and only then calls.
They all have the signature ``(target, args_or_state, budget) -> object``.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from registry.errors import UnsafeArtifact
from registry.formats.unpickler import ArraySpec, Budget

Call = Callable[[Any, tuple[Any, ...], Budget], Any]
State = Callable[[Any, Any, Budget], Any]

_SLOT = 16
_SIZED = (list, tuple, dict, set, frozenset)


def refuse(what: str, why: str) -> UnsafeArtifact:
    return UnsafeArtifact(
        f"refused {what}: {why}; nothing was run. If you trust this artifact, load it with safe=False", what
    )


def _name(obj: Any) -> str:
    return f"{getattr(obj, '__module__', '?')}.{getattr(obj, '__qualname__', type(obj).__name__)}"


def _ints(values: Any, what: str) -> tuple[int, ...]:
    if type(values) is not tuple or not all(type(v) is int and v >= 0 for v in values):
        raise refuse(what, f"a shape must be a tuple of non-negative integers, not {values!r:.80}")
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
    return func(*args)


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
    if any(type(a) is not bool for a in args[1:]):
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
    obj.__setstate__(state)
    if obj.itemsize > 2**31:
        raise refuse("numpy.dtype state", "its item size is absurdly large")
    _check_layout(obj)
    return obj


def _holds_objects(descr: Any) -> bool:
    if descr.subdtype is not None:
        return _holds_objects(descr.subdtype[0])
    if descr.fields:
        return any(_holds_objects(field[0]) for field in descr.fields.values())
    return descr.kind == "O"


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

    if type(state) is not dict:
        raise refuse("joblib NumpyArrayWrapper state", "it is not a dict")
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
            numpy.random._pickle, "__bit_generator_ctor", None
        )

    if len(args) > 2 or not all(acceptable(a) for a in args):
        raise refuse(f"{_name(func)} with these arguments", "only a numpy bit generator is accepted")
    budget.charge(8192, _name(func))
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
        raise refuse(f"{_name(func)} with these arguments", f"it only rebuilds {module}.{cls_name}")
    budget.charge(256 + _SLOT * (len(args[2]) if args[2] else 0), _name(func))
    return func(*args)


def new_object(func: Any, args: tuple[Any, ...], budget: Budget, *, allowed: Callable[[Any], bool]) -> Any:
    """scikit-learn's ``newObj(cls)`` (``cls.__new__(cls)``) for a class the policy lets be instantiated."""
    if len(args) != 1 or not isinstance(args[0], type) or not allowed(args[0]):
        raise refuse(f"{_name(func)} with these arguments", "it only creates classes on the policy")
    budget.charge(256, _name(func))
    return func(*args)


# -- scikit-learn ------------------------------------------------------------------------------------


def tree(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``Tree(n_features, n_classes, n_outputs)`` with ``n_classes`` of length ``n_outputs``, values bounded."""
    import numpy

    if len(args) != 3 or type(args[0]) is not int or type(args[2]) is not int or type(args[1]) is not numpy.ndarray:
        raise refuse("sklearn Tree with these arguments", "it needs (n_features, n_classes array, n_outputs)")
    n_features, n_classes, n_outputs = args
    if not 0 <= n_features <= 2**31 or n_classes.ndim != 1 or n_classes.shape[0] != n_outputs or n_outputs < 1:
        raise refuse(
            f"sklearn Tree({n_features}, n_classes of shape {n_classes.shape}, {n_outputs})",
            "n_classes must have one entry per output",
        )
    largest = int(n_classes.max())
    if largest < 0 or largest * n_outputs > 2**28:
        raise refuse(f"sklearn Tree with {largest} classes x {n_outputs} outputs", "each node would be absurdly large")
    budget.charge(1024 + 16 * n_outputs, "sklearn Tree")
    return func(*args)


def tree_state(obj: Any, state: Any, budget: Budget) -> Any:
    """A Tree's state only if its node count and value shape agree with its node array."""
    import numpy

    if type(state) is not dict:
        raise refuse("sklearn Tree state", "it is not a dict")
    nodes, values, node_count = state.get("nodes"), state.get("values"), state.get("node_count")
    if type(nodes) is not numpy.ndarray or type(values) is not numpy.ndarray or type(node_count) is not int:
        raise refuse("sklearn Tree state", "it needs node and value arrays and a node count")
    if nodes.ndim != 1 or node_count != nodes.shape[0] or values.ndim != 3 or values.shape[0] != node_count:
        raise refuse(
            f"sklearn Tree state with node_count={node_count}",
            f"its arrays hold {nodes.shape[0] if nodes.ndim else 0} nodes",
        )
    if nodes.dtype.names is None or not {"left_child", "right_child", "feature"} <= set(nodes.dtype.names):
        raise refuse("sklearn Tree state", "its node array is not a tree's")
    _check_children(nodes["left_child"], nodes["right_child"], -1, "sklearn Tree")
    internal = nodes["left_child"] != -1
    features = nodes["feature"][internal]
    if features.size and (features.min() < 0 or features.max() >= obj.n_features):
        raise refuse("sklearn Tree state", f"a split names a feature outside 0..{obj.n_features - 1}")
    budget.charge(nodes.nbytes + values.nbytes, "sklearn Tree state")
    obj.__setstate__(state)
    return obj


def _check_children(left: Any, right: Any, leaf: int | None, what: str) -> None:
    """Every child comes after its parent and inside the array: prediction never reads outside it or loops."""
    import numpy

    index = numpy.arange(left.shape[0])
    internal = left != leaf if leaf is not None else numpy.ones(left.shape[0], bool)
    if leaf is not None and not numpy.array_equal(internal, right != leaf):
        raise refuse(f"{what} state", "a node has one child")
    for children in (left[internal], right[internal]):
        if children.size and ((children <= index[internal]).any() or children.max() >= left.shape[0]):
            raise refuse(f"{what} state", "a child index points backwards or outside the node array")


def predictor_state(obj: Any, state: Any, budget: Budget) -> Any:
    """A HistGradientBoosting ``TreePredictor``: its node links and bitset indexes stay inside its arrays."""
    import numpy

    if type(state) is not dict or not all(type(key) is str for key in state):
        raise refuse("TreePredictor state", "it is not a dict of names")
    nodes = state.get("nodes")
    if type(nodes) is not numpy.ndarray or nodes.ndim != 1 or nodes.dtype.names is None:
        raise refuse("TreePredictor state", "it has no node array")
    leaf = nodes["is_leaf"].astype(bool)
    internal = ~leaf
    left, right = nodes["left"].astype(numpy.int64), nodes["right"].astype(numpy.int64)
    _check_children(numpy.where(internal, left, -1), numpy.where(internal, right, -1), -1, "TreePredictor")
    categorical = internal & nodes["is_categorical"].astype(bool)
    for key in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bitsets = state.get(key)
        if type(bitsets) is not numpy.ndarray or bitsets.ndim != 2:
            raise refuse("TreePredictor state", f"{key} is not a 2-d array")
        if categorical.any() and nodes["bitset_idx"][categorical].max() >= bitsets.shape[0]:
            raise refuse("TreePredictor state", "a categorical split points outside its bitsets")
    budget.charge(256, "TreePredictor state")
    obj.__dict__.update(state)
    return obj


def sparse_state(obj: Any, state: Any, budget: Budget) -> Any:
    """A scipy.sparse matrix's attributes, then scipy's own full format check (its C code trusts indices)."""
    if type(state) is not dict or not all(type(key) is str for key in state):
        raise refuse(f"{type(obj).__name__} state", "it is not a dict of names")
    budget.charge(256, f"{type(obj).__name__} state")
    obj.__dict__.update(state)
    try:
        if hasattr(obj, "check_format"):
            obj.check_format(full_check=True)
        elif obj.format == "coo":
            obj._check()
        elif obj.format == "dia" and (obj.data.ndim != 2 or obj.offsets.shape != (obj.data.shape[0],)):
            raise ValueError("data and offsets disagree")
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise refuse(f"{type(obj).__name__} state", f"scipy's format check fails: {exc}") from None
    return obj


def scalar_arguments(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """A Cython type pickled as ``Type(1.0)``: a few numbers (a loss's threshold); state follows by BUILD."""
    if len(args) > 4 or not all(type(a) in (int, float, bool) for a in args):
        raise refuse(f"{_name(func)} with these arguments", "this type is rebuilt from a few numbers only")
    budget.charge(1024, _name(func))
    return func()


#: The only functions a ``functools.partial`` in a safe load may wrap (scikit-learn stores these).
PARTIAL_TARGETS = frozenset({"sklearn.utils.validation.check_array"})
_PLAIN = (int, float, bool, str, type(None), tuple)


def partial(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``functools.partial(f)`` only for a function in :data:`PARTIAL_TARGETS`; it would run at predict time."""
    if len(args) != 1 or _name(args[0]) not in PARTIAL_TARGETS:
        target = _name(args[0]) if args else "nothing"
        raise refuse(f"functools.partial of {target}", "a partial may only wrap a function scikit-learn itself stores")
    budget.charge(256, "functools.partial")
    return func(*args)


def partial_state(obj: Any, state: Any, budget: Budget) -> Any:
    """A partial's state may not swap its function, and its arguments are plain values."""
    import numpy

    def plain(value: Any) -> bool:
        if type(value) in (list, tuple):
            return len(value) <= 16 and all(plain(item) for item in value)
        return type(value) in _PLAIN or (isinstance(value, type) and issubclass(value, numpy.generic))

    if type(state) is not tuple or len(state) != 4 or state[0] is not obj.func:
        raise refuse("functools.partial state", "it would replace the wrapped function")
    _, args, kwds, extra = state
    if type(args) is not tuple or not all(plain(a) for a in args) or extra not in (None, {}):
        raise refuse("functools.partial state", "its arguments must be plain values")
    if kwds is not None and (type(kwds) is not dict or not all(type(k) is str and plain(v) for k, v in kwds.items())):
        raise refuse("functools.partial state", "its keyword arguments must be plain values")
    budget.charge(256, "functools.partial state")
    obj.__setstate__(state)
    return obj


def binary_tree_state(obj: Any, state: Any, budget: Budget) -> Any:
    """A ``KDTree``/``BallTree``: index array a range over the data, node ranges and bounds that fit it."""
    import numpy

    if type(state) is not tuple or len(state) != 13:
        raise refuse(f"{type(obj).__name__} state", "it is not the tuple scikit-learn writes")
    data, idx_array, node_data, node_bounds = state[:4]
    n_levels, n_nodes = state[5], state[6]
    arrays = (data, idx_array, node_data, node_bounds)
    if not all(type(a) is numpy.ndarray for a in arrays) or data.ndim != 2 or idx_array.ndim != 1:
        raise refuse(f"{type(obj).__name__} state", "its arrays are not a tree's")
    n_samples = data.shape[0]
    problems = [
        idx_array.shape[0] != n_samples,
        idx_array.size and (idx_array.min() < 0 or idx_array.max() >= n_samples),
        type(n_nodes) is not int or type(n_levels) is not int or node_data.shape != (n_nodes,),
        node_data.dtype.names is None or not {"idx_start", "idx_end", "is_leaf"} <= set(node_data.dtype.names or ()),
        node_bounds.ndim != 3 or node_bounds.shape[1:] != (n_nodes, data.shape[1]),
        state[12] is not None and (type(state[12]) is not numpy.ndarray or state[12].shape != (n_samples,)),
    ]
    if not any(problems):
        start, end = node_data["idx_start"], node_data["idx_end"]
        inner = numpy.flatnonzero(~node_data["is_leaf"].astype(bool))
        problems += [
            bool(start.size) and (start.min() < 0 or (end < start).any() or end.max() > n_samples),
            bool(inner.size) and 2 * int(inner.max()) + 2 >= n_nodes,
        ]
    if any(problems):
        raise refuse(f"{type(obj).__name__} state", "its index and node arrays do not fit its data")
    _check_metric(state[11], data.shape[1], type(obj).__name__)
    budget.charge(1024, f"{type(obj).__name__} state")
    obj.__setstate__(state)
    return obj


def _check_metric(metric: Any, features: int, what: str) -> None:
    """A tree's distance metric whose weights or matrix have the data's width (its loops trust them)."""
    from sklearn.metrics._dist_metrics import DistanceMetric

    if not isinstance(metric, DistanceMetric):
        raise refuse(f"{what} state", "its metric is not a scikit-learn DistanceMetric")
    _, vec, mat = metric.__getstate__()[:3]
    name = type(metric).__name__
    if (
        (name.startswith("Mahalanobis") and mat.shape != (features, features))
        or (name.startswith("SEuclidean") and vec.shape != (features,))
        or (name.startswith("Minkowski") and vec.shape[0] not in (0, features))
    ):
        raise refuse(f"{what} state", f"its {name} parameters do not have the data's {features} columns")
