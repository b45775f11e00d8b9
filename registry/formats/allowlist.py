"""The allow-list behind ``load(..., safe=True)``: which globals a pickle may import.

Unpickling can call any importable callable the pickle names. In safe mode
the unpickler resolves a global only if it is on this list, and the check
happens on the *names*, before the module is imported: importing an
arbitrary module already runs its code.

Allowed, because a fitted scikit-learn model needs them and they only build
data:

* plain containers and scalars from ``builtins`` and ``collections``,
  ``copyreg._reconstructor`` and ``_codecs.encode`` (used by older protocols);
* numpy array, dtype and scalar classes, and numpy's own reconstructor
  functions; random generator state; never ``numpy.memmap`` (it opens files);
* scipy.sparse matrix and array classes;
* scikit-learn classes, and the Cython-generated reconstructors
  (``__pyx_unpickle_*``, ``newObj``) that its extension types pickle with;
  never from ``sklearn.utils._testing``, ``sklearn.externals`` or ``sklearn.datasets``;
* joblib's ``NumpyArrayWrapper``, the placeholder of an array in its files.

Everything else — ``os.system``, ``subprocess.Popen``, ``builtins.eval``,
``builtins.getattr``, ``importlib.import_module``, ``runpy``,
``functools.partial``… — is refused with :class:`UnsafeArtifact` naming it.
``trusted`` adds exact ``module.name`` entries for a user's own classes.
"""

from __future__ import annotations

import importlib
from collections.abc import Collection
from typing import Any

from registry.errors import UnsafeArtifact

_EXACT = frozenset(
    [
        f"builtins.{name}"
        for name in (
            "bool",
            "bytearray",
            "bytes",
            "complex",
            "dict",
            "float",
            "frozenset",
            "int",
            "list",
            "object",
            "range",
            "set",
            "slice",
            "str",
            "tuple",
        )
    ]
    + [f"collections.{name}" for name in ("OrderedDict", "defaultdict", "deque", "Counter")]
    + [f"datetime.{name}" for name in ("date", "datetime", "time", "timedelta", "timezone")]
    + ["copyreg._reconstructor", "_codecs.encode", "joblib.numpy_pickle.NumpyArrayWrapper"]
    + [
        f"{module}.{name}"
        for module, names in (
            ("numpy._core.multiarray", ("_reconstruct", "scalar")),
            ("numpy.core.multiarray", ("_reconstruct", "scalar")),
            ("numpy._core.numeric", ("_frombuffer",)),
            ("numpy.core.numeric", ("_frombuffer",)),
            ("numpy.random._pickle", ("__bit_generator_ctor", "__generator_ctor", "__randomstate_ctor")),
            ("numpy.random.bit_generator", ("__pyx_unpickle_SeedSequence",)),
        )
        for name in names
    ]
)

_DENIED_SKLEARN = ("sklearn.utils._testing", "sklearn.externals", "sklearn.datasets")


def _in_package(module: str, package: str) -> bool:
    return module == package or module.startswith(package + ".")


def _resolve(module: str, name: str) -> Any:
    obj: Any = importlib.import_module(module)
    for part in name.split("."):
        obj = getattr(obj, part)
    return obj


def _allowed_class(module: str, obj: Any) -> bool:
    if not isinstance(obj, type):
        return False
    if _in_package(module, "numpy"):
        import numpy as np

        if issubclass(obj, np.memmap):
            return False
        random_state = (np.random.RandomState, np.random.Generator, np.random.BitGenerator, np.random.SeedSequence)
        return issubclass(obj, (np.generic, np.ndarray, np.dtype, *random_state))
    if _in_package(module, "scipy.sparse"):
        import scipy.sparse

        bases = tuple(getattr(scipy.sparse, base) for base in ("spmatrix", "sparray") if hasattr(scipy.sparse, base))
        return issubclass(obj, bases)
    return _in_package(module, "sklearn")


def _refuse(qualified: str) -> UnsafeArtifact:
    return UnsafeArtifact(
        f"refused to load the global {qualified!r}: safe loading only imports numpy, scipy.sparse and "
        "scikit-learn types; if you trust this artifact, load it with safe=False or pass "
        f"trusted=[{qualified!r}]",
        qualified,
    )


def safe_find_class(module: str, name: str, trusted: Collection[str] = ()) -> Any:
    """Resolve ``module.name`` for an unpickler if the allow-list (or ``trusted``) permits it."""
    qualified = f"{module}.{name}"
    if qualified in _EXACT or qualified in trusted:
        return _resolve(module, name)
    leaf = name.rsplit(".", 1)[-1]
    if _in_package(module, "sklearn"):
        if any(_in_package(module, denied) for denied in _DENIED_SKLEARN):
            raise _refuse(qualified)
        if leaf == "newObj" or leaf.startswith("__pyx_unpickle_"):
            return _resolve(module, name)
    elif not any(_in_package(module, root) for root in ("numpy", "scipy.sparse")):
        raise _refuse(qualified)  # decided on the name alone: the module is never imported
    try:
        obj = _resolve(module, name)
    except (ImportError, AttributeError):
        raise _refuse(qualified) from None
    if not _allowed_class(module, obj):
        raise _refuse(qualified)
    return obj
