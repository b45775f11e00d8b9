"""The safe-load policy: the exact globals ``load(..., safe=True)`` may import, and what each may do.

This is data, versioned by :data:`POLICY_VERSION` and printed by
``modelshelf policy``. A pickle's global is admitted only if its exact
``module.qualname`` is a key here (no attribute chains: a nested name is
admitted only if it is listed as such), and the object that import
resolves to carries that same ``__module__`` and ``__qualname__`` — or,
for the few compatibility aliases old numpy pickles use, the ``identity``
listed. Re-exports are refused: ``sklearn.base.attrgetter`` is not
``operator.attrgetter``'s name.

Each entry has a role:

* ``class``: may be created without running ``__init__`` (NEWOBJ,
  ``copyreg._reconstructor``) and receive state by BUILD — through its own
  ``__setstate__`` or, lacking one, onto the instance's ``__dict__``;
* ``callable``: may be called by REDUCE/INST/OBJ, always through an
  argument check (:mod:`registry.formats.checks`) that refuses
  amplification;
* ``reference``: may only appear as a value (a dtype's scalar type, a
  scoring function an estimator keeps); never called during the load.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from registry.formats import checks, model_checks
from registry.formats.hooks import Budget
from registry.formats.policy_sklearn import SKLEARN_CLASSES, SKLEARN_CYTHON, SKLEARN_REFERENCES

#: Bump when an entry is added, removed or changes role; recorded nowhere else.
POLICY_VERSION = "2026.12.2"


@dataclass(frozen=True)
class Entry:
    """One admitted global. ``state`` handles BUILD on instances of a class (``None``: the generic path)."""

    name: str
    role: str
    why: str
    identity: str = ""
    call: checks.Call | None = None
    state: checks.State | None = None

    @property
    def canonical(self) -> str:
        """The ``module.qualname`` the resolved object must carry."""
        return self.identity or self.name


def _cls(
    name: str, why: str, *, state: checks.State | None = None, call: checks.Call | None = None, identity: str = ""
) -> Entry:
    return Entry(name, "class", why, identity, call, state)


def _fn(name: str, why: str, call: checks.Call, identity: str = "") -> Entry:
    return Entry(name, "callable", why, identity, call)


def _ref(name: str, why: str, identity: str = "", state: checks.State | None = None) -> Entry:
    return Entry(name, "reference", why, identity, None, state)


_NUMPY_SCALARS = (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64", "float16", "float32",
    "float64", "longdouble", "complex64", "complex128", "clongdouble", "str_", "bytes_", "void", "datetime64",
    "timedelta64", "object_",
)  # fmt: skip

_SPARSE = ("csr", "csc", "coo", "bsr", "dia", "lil", "dok")


def _builtins() -> list[Entry]:
    entries = [
        _fn(f"builtins.{name}", "a container copied from one the stream built", checks.container)
        for name in ("list", "tuple", "set", "frozenset", "dict")
    ]
    entries += [
        _fn(f"builtins.{name}", "a scalar from small literal arguments", checks.scalar_type)
        for name in ("int", "float", "complex", "bool", "str", "slice", "range")
    ]
    entries += [
        _fn(f"builtins.{name}", "bytes as protocols 0-4 write them; never from a length", checks.byte_string)
        for name in ("bytes", "bytearray")
    ]
    entries += [
        _ref("builtins.object", "the base named by copyreg._reconstructor"),
        _fn("_codecs.encode", "how protocols 0-2 spell bytes (latin-1 only)", checks.codecs_encode),
        _fn("copyreg._reconstructor", "protocol 0-1 instantiation of a class on this policy", _reconstructor),
        _fn("collections.OrderedDict", "an ordered dict of pickled pairs", checks.ordered_dict),
        _fn("collections.defaultdict", "a dict whose factory is a plain type", checks.default_dict),
        _fn("collections.deque", "a deque of pickled items", checks.deque),
        _fn("collections.Counter", "a dict of counts", checks.counter),
    ]
    entries += [
        _fn(f"datetime.{name}", "a date or time from its own short state", checks.datetime_type)
        for name in ("date", "datetime", "time", "timedelta", "timezone")
    ]
    return entries


def _numpy() -> list[Entry]:
    entries = [
        _ref("numpy.ndarray", "the array type; state only with data matching its shape", state=checks.ndarray_state),
        _cls("numpy.dtype", "an array's dtype from a short type code", call=checks.dtype, state=checks.dtype_state),
    ]
    for module in ("numpy._core", "numpy.core"):
        alias = module != "numpy._core"
        entries += [
            _fn(f"{module}.multiarray._reconstruct", "numpy's array reconstructor (an empty array)", checks.reconstruct,
                "numpy._core.multiarray._reconstruct" if alias else ""),
            _fn(f"{module}.multiarray.scalar", "a numpy scalar from exactly one item's bytes", checks.numpy_scalar,
                "numpy._core.multiarray.scalar" if alias else ""),
            _fn(f"{module}.numeric._frombuffer", "a protocol-5 array over in-band bytes of matching length",
                checks.frombuffer, "numpy._core.numeric._frombuffer" if alias else ""),
        ]  # fmt: skip
    entries += [
        _ref(f"numpy.{name}", "a numpy scalar type, kept as a value (e.g. an estimator's dtype)")
        for name in _NUMPY_SCALARS
    ]
    entries.append(_ref("numpy.bool_", "numpy 1.x's name of numpy.bool", identity="numpy.bool"))
    random = "numpy.random"
    entries += [
        _fn(
            f"{random}._pickle.{ctor}",
            "numpy's random generator constructors (a bit generator only)",
            checks.random_ctor,
        )
        for ctor in ("__bit_generator_ctor", "__generator_ctor", "__randomstate_ctor")
    ]
    entries += [
        _ref(f"{random}.{module}.{name}", "a numpy bit generator; state by its own __setstate__", state=_own_setstate)
        for module, name in (("_mt19937", "MT19937"), ("_pcg64", "PCG64"), ("_pcg64", "PCG64DXSM"),
                             ("_philox", "Philox"), ("_sfc64", "SFC64"), ("_generator", "Generator"),
                             ("mtrand", "RandomState"))
    ]  # fmt: skip
    entries += [
        _ref(
            f"{random}.bit_generator.SeedSequence",
            "numpy's seed sequence; state by its own __setstate__",
            state=_own_setstate,
        ),
        _fn(
            f"{random}.bit_generator.__pyx_unpickle_SeedSequence",
            "Cython's rebuild of a SeedSequence",
            checks.cython_unpickle,
        ),
        _cls(
            "joblib.numpy_pickle.NumpyArrayWrapper",
            "joblib's placeholder: the array's bytes follow it, bounds-checked",
            state=checks.array_wrapper_state,
        ),
    ]
    return entries


def _scipy() -> list[Entry]:
    return [
        _cls(
            f"scipy.sparse._{kind}.{kind}_{flavour}",
            "a scipy.sparse matrix or array; state onto the instance, then scipy's full format check",
            state=model_checks.sparse_state,
        )
        for kind in _SPARSE
        for flavour in ("matrix", "array")
    ]


def _sklearn() -> list[Entry]:
    entries = [
        _cls(name, "a HistGradientBoosting tree; node links checked", state=model_checks.predictor_state)
        if name.endswith(".predictor.TreePredictor")
        else _cls(name, "a scikit-learn class its fitted models pickle")
        for name in SKLEARN_CLASSES
    ]
    entries += [_ref(name, "a scikit-learn function an estimator keeps as a parameter") for name in SKLEARN_REFERENCES]
    for name in SKLEARN_CYTHON:
        leaf = name.rsplit(".", 1)[1]
        if leaf == "Tree":
            entries.append(
                _cls(
                    name,
                    "a fitted decision tree; arguments and node counts checked",
                    call=model_checks.tree,
                    state=model_checks.tree_state,
                )
            )
        elif leaf.startswith("__pyx_unpickle_"):
            entries.append(
                _fn(name, "Cython's rebuild of the scikit-learn type it is named after", checks.cython_unpickle)
            )
        elif leaf == "newObj":
            entries.append(
                _fn(name, "scikit-learn's cls.__new__(cls) for its Cython types on this policy", _new_object)
            )
        elif leaf in ("KDTree", "BallTree"):
            entries.append(
                _cls(name, "a neighbours tree; its index and node arrays checked", state=model_checks.binary_tree_state)
            )
        else:
            entries.append(
                _cls(name, "a scikit-learn Cython type, rebuilt from a few numbers", call=model_checks.scalar_arguments)
            )
    return entries  # fmt: skip


def _partial() -> Entry:
    return Entry(
        "functools.partial", "callable", "only around check_array, as scikit-learn stores it (plain arguments)",
        call=model_checks.partial, state=model_checks.partial_state,
    )  # fmt: skip


def _own_setstate(obj: Any, state: Any, budget: Budget) -> Any:
    budget.charge(8192, f"{type(obj).__name__} state")
    obj.__setstate__(state)
    return obj


def _instantiable(cls: type) -> bool:
    entry = POLICY.get(f"{cls.__module__}.{cls.__qualname__}")
    return entry is not None and entry.role == "class"


def _new_object(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    return checks.new_object(func, args, budget, allowed=_instantiable)


def _reconstructor(func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
    if len(args) != 3 or not isinstance(args[0], type) or not _instantiable(args[0]):
        raise checks.refuse("copyreg._reconstructor with these arguments", "it only creates classes on the policy")
    cls, base, state = args
    if base is dict and issubclass(cls, dict) and type(state) is dict:  # scipy's dok_matrix is a dict
        budget.charge(256 + 48 * len(state), "copyreg._reconstructor")
        obj = dict.__new__(cls)
        dict.update(obj, state)
        return obj
    if base is not object or state is not None:
        raise checks.refuse("copyreg._reconstructor with this base", "only the object and dict bases are accepted")
    budget.charge(256, "copyreg._reconstructor")
    return object.__new__(cls)


POLICY: Mapping[str, Entry] = {
    entry.name: entry for entry in (*_builtins(), _partial(), *_numpy(), *_scipy(), *_sklearn())
}


def describe_policy() -> dict[str, Any]:
    """The policy as plain data — version, size limits and every entry — for ``modelshelf policy``."""
    from registry.formats.hooks import SIZE_CONSTANT, SIZE_MULTIPLE

    return {
        "version": POLICY_VERSION,
        "size_limit": {"multiple_of_artifact": SIZE_MULTIPLE, "constant_bytes": SIZE_CONSTANT},
        "entries": [
            {
                "name": e.name,
                "role": e.role,
                "why": e.why,
                "callable": e.call is not None,
                **({"identity": e.identity} if e.identity else {}),
            }
            for e in sorted(POLICY.values(), key=lambda e: e.name)
        ],
    }


__all__ = ["POLICY", "POLICY_VERSION", "Entry", "describe_policy"]
