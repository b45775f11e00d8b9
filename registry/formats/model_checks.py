"""Checks for the state of scikit-learn and scipy objects whose compiled code trusts it.

Cython and C++ routines index arrays without bounds checks: a tree whose
child points outside its nodes, a sparse matrix whose index exceeds its
shape, a metric narrower than the data read or write outside their
buffers. These checks hold each such state to what the library itself
would have built before the object is handed its state.
"""

from __future__ import annotations

import copy
from typing import Any

from registry.formats.checks import qualified_name, refuse
from registry.formats.hooks import Budget

_SLOT = 16


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
    _check_tree_depth(nodes["left_child"], nodes["right_child"], state.get("max_depth"))
    internal = nodes["left_child"] != -1
    features = nodes["feature"][internal]
    if features.size and (features.min() < 0 or features.max() >= obj.n_features):
        raise refuse("sklearn Tree state", f"a split names a feature outside 0..{obj.n_features - 1}")
    budget.charge(nodes.nbytes + values.nbytes, "sklearn Tree state")
    obj.__setstate__(state)
    return obj


def _check_tree_depth(left: Any, right: Any, max_depth: Any) -> None:
    """``max_depth`` sizes the buffers ``decision_path`` fills, one entry per level: it must not understate.

    Each node has at most one parent (it is a tree), so walking level by
    level from the root visits every node once.
    """
    import numpy

    if left.shape[0] == 0:
        return
    internal = left != -1
    children = numpy.concatenate([left[internal], right[internal]])
    if numpy.unique(children).shape[0] != children.shape[0]:
        raise refuse("sklearn Tree state", "a node has two parents (a tree's nodes form a tree)")
    depth, frontier = -1, numpy.zeros(1, dtype=numpy.intp)
    while frontier.size:
        depth += 1
        inner = frontier[internal[frontier]]
        frontier = numpy.concatenate([left[inner], right[inner]]).astype(numpy.intp)
    if type(max_depth) is not int or max_depth < depth:
        given = max_depth if type(max_depth) is int else type(max_depth).__name__
        raise refuse("sklearn Tree state", f"its max_depth {given} understates its depth {depth}")


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
    if type(state) is not dict or not all(type(key) is str for key in state):
        raise refuse("TreePredictor state", "it is not a dict of names")
    check_predictor_nodes(state, "TreePredictor state")
    budget.charge(256, "TreePredictor state")
    obj.__dict__.update(state)
    return obj


_BITSET_WORDS = 8  # a category bitset is 256 bits: the compiled walk reads word value // 32 of its row


def check_predictor_nodes(state: Any, what: str) -> None:
    """A ``TreePredictor``'s own arrays: a root, children inside the nodes, bitset rows that exist and are whole."""
    import numpy

    nodes = state.get("nodes")
    if type(nodes) is not numpy.ndarray or nodes.ndim != 1 or nodes.dtype.names is None or nodes.shape[0] < 1:
        raise refuse(what, "it has no node array")
    if not {"is_leaf", "left", "right", "is_categorical", "bitset_idx", "feature_idx"} <= set(nodes.dtype.names):
        raise refuse(what, "its node array is not a TreePredictor's")
    leaf = nodes["is_leaf"].astype(bool)
    internal = ~leaf
    left, right = nodes["left"].astype(numpy.int64), nodes["right"].astype(numpy.int64)
    _check_children(numpy.where(internal, left, -1), numpy.where(internal, right, -1), -1, what)
    categorical = internal & nodes["is_categorical"].astype(bool)
    for key in ("binned_left_cat_bitsets", "raw_left_cat_bitsets"):
        bitsets = state.get(key)
        if type(bitsets) is not numpy.ndarray or bitsets.ndim != 2 or bitsets.shape[1] != _BITSET_WORDS:
            raise refuse(what, f"{key} is not a 2-d array of {_BITSET_WORDS}-word bitsets")
        if categorical.any() and nodes["bitset_idx"][categorical].max() >= bitsets.shape[0]:
            raise refuse(what, "a categorical split points outside its bitsets")


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
        elif obj.format == "lil":
            _check_lil(obj)
        elif obj.format == "dok":
            _check_dok(obj)
    except (ValueError, TypeError, AttributeError, IndexError) as exc:
        raise refuse(f"{type(obj).__name__} state", f"scipy's format check fails: {exc}") from None
    return obj


def lil_rows(obj: Any) -> None:
    """The LIL check again once the load is built: its rows are lists, which later APPENDS could still grow."""
    try:
        _check_lil(obj)
    except (ValueError, TypeError, AttributeError) as exc:
        raise refuse(f"{type(obj).__name__} state", f"its rows do not fit it: {exc}") from None


def _check_lil(obj: Any) -> None:
    """A LIL matrix's rows: sorted column lists inside its width, each as long as its data (``tocsr`` trusts both).

    scipy has no format check for LIL; its Cython flattening writes each
    row's data where the rows' lengths said it would fit.
    """
    import numpy

    rows, data = obj.rows, obj.data
    height, width = obj.shape
    for array in (rows, data):
        if type(array) is not numpy.ndarray or array.dtype != object or array.shape != (height,):
            raise ValueError("rows and data must be object arrays of one list per row")
    for columns, values in zip(rows.tolist(), data.tolist(), strict=True):
        if type(columns) is not list or type(values) is not list or len(columns) != len(values):
            raise ValueError("a row's column list and data list differ")
        previous = -1
        for column in columns:
            if type(column) is bool or not isinstance(column, (int, numpy.integer)) or not previous < column < width:
                raise ValueError(f"a row's column indices are not sorted inside 0..{width - 1}")
            previous = int(column)


def dok_keys(obj: Any) -> None:
    """The DOK check again once the load is built: its key dicts are containers a later SETITEMS could grow."""
    try:
        _check_dok(obj)
    except (ValueError, TypeError, AttributeError) as exc:
        raise refuse(f"{type(obj).__name__} state", f"its keys do not fit it: {exc}") from None


def _check_dok(obj: Any) -> None:
    """A DOK matrix's keys (in its ``_dict`` and in itself, a dict) are indices inside its shape.

    scipy has no format check for DOK; its conversions trust the keys it stores.
    """
    import numpy

    shape = obj.shape
    if type(obj._dict) is not dict:
        raise ValueError("its _dict is not a dict")
    own = dict.keys(obj) if isinstance(obj, dict) else ()
    for keys in (obj._dict.keys(), own):
        for key in keys:
            index = (key,) if len(shape) == 1 and type(key) is not tuple else key
            if type(index) is not tuple or len(index) != len(shape):
                raise ValueError(f"a key is not an index of {len(shape)} integers")
            for value, extent in zip(index, shape, strict=True):
                if type(value) is bool or not isinstance(value, (int, numpy.integer)) or not 0 <= value < extent:
                    raise ValueError(f"a key lies outside the shape {shape}")


def scalar_arguments(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """A Cython type pickled as ``Type(1.0)``: a few numbers (a loss's threshold); state follows by BUILD."""
    if len(args) > 4 or not all(type(a) in (int, float, bool) for a in args):
        raise refuse(f"{qualified_name(func)} with these arguments", "this type is rebuilt from a few numbers only")
    budget.charge(1024, qualified_name(func))
    return func(*args)


#: The only functions a ``functools.partial`` in a safe load may wrap (scikit-learn stores these).
PARTIAL_TARGETS = frozenset({"sklearn.utils.validation.check_array"})
_PLAIN = (int, float, bool, str, type(None), tuple)


def partial(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    """``functools.partial(f)`` only for a function in :data:`PARTIAL_TARGETS`; it would run at predict time."""
    if len(args) != 1 or qualified_name(args[0]) not in PARTIAL_TARGETS:
        target = qualified_name(args[0]) if args else "nothing"
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
    # The partial keeps the very dict (and lists) it is given: copies of these plain values, so a later SETITEMS
    # or APPENDS on the memo's containers cannot change what was checked.
    args, kwds = copy.deepcopy((args, kwds))
    obj.__setstate__((state[0], args, kwds, extra))
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
