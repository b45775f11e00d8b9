"""Globals no other process can import: classes and functions of a script's ``__main__``, or local ones.

pickle, joblib and skops record a class or function by its module and
qualified name, and the loading process imports it again by that name. A
class defined in the script being run is ``__main__.Foo``: in any other
process ``__main__`` is another script (or the ``modelshelf`` command),
which has no ``Foo``, so the version registers without complaint and then
loads nowhere else. Classes and functions defined inside a function
(``make.<locals>.Foo``) and lambdas have no importable name at all.

This module reads names only (the import inventory of a version): it
imports nothing, and looks a ``__main__`` name up in this process's own
``__main__`` module statically, without running anything (the name may come
from a hostile artifact). It says what to do in the
three places a user meets the problem: registering (a warning, or an
error with ``strict=True``), loading, and a safe load's refusal.

>>> unportable(["numpy.dtype", "__main__.Foo", "mylib.make.<locals>.Bar"])
('__main__.Foo', 'mylib.make.<locals>.Bar')
"""

from __future__ import annotations

import inspect
import sys
import types
from collections.abc import Iterable

#: The module name a script run as ``python script.py`` (or a notebook) defines its names in; the second is
#: what multiprocessing's spawned children call the parent's script.
MAIN_MODULES = ("__main__", "__mp_main__")
_SHOWN = 5


def _is_main(name: str) -> bool:
    return any(name.startswith(f"{module}.") for module in MAIN_MODULES)


def _is_local(name: str) -> bool:
    return "<locals>" in name or "<lambda>" in name


def unportable(names: Iterable[str]) -> tuple[str, ...]:
    """The ``module.qualname`` entries of ``names`` that no other process can import, in the order given.

    A name of the running script (``__main__.Foo``), or of a class or
    function defined inside a function, or a lambda.
    """
    return tuple(name for name in names if isinstance(name, str) and (_is_main(name) or _is_local(name)))


def _defined_here(name: str) -> bool:
    """Whether this process's own ``__main__`` defines ``name`` (a ``__main__.``-name), read without running code.

    The name comes from an artifact that may be hostile and is asked about
    while a safe load refuses it, so the lookup must run nothing: each step
    is read from a module's or class's own ``__dict__``
    (``inspect.getattr_static``), never through ``getattr``, which would
    call a property, a descriptor or a module ``__getattr__`` of the host
    script the artifact chose.
    """
    module_name, _, qualname = name.partition(".")
    obj: object = sys.modules.get(module_name)
    if obj is None or _is_local(name) or not qualname:
        return False
    for part in qualname.split("."):
        if not isinstance(obj, (types.ModuleType, type)):
            return False  # only modules and classes hold importable names
        try:
            obj = inspect.getattr_static(obj, part)
        except AttributeError:
            return False
    return isinstance(obj, (type, types.FunctionType, types.BuiltinFunctionType))


def missing_here(names: Iterable[str]) -> tuple[str, ...]:
    """The unportable entries of ``names`` this process cannot resolve (so a load of them fails here)."""
    return tuple(name for name in unportable(names) if not _defined_here(name))


def _listed(names: tuple[str, ...]) -> str:
    shown = ", ".join(names[:_SHOWN])
    return shown + (f" and {len(names) - _SHOWN} more" if len(names) > _SHOWN else "")


def _where(names: tuple[str, ...], registers: str) -> str:
    """Where the names were defined, in words: in a script's ``__main__``, inside a function, or both."""
    main, local = any(_is_main(n) for n in names), any(_is_local(n) for n in names)
    parts = [
        f"in the __main__ module of the script that {registers} the model" if main else "",
        "inside a function (or as a lambda), which leaves no importable name" if local else "",
    ]
    return "defined " + " or ".join(part for part in parts if part)


_MOVE = (
    "move the class or function into a module of its own (for example mymodels.py, imported in the script with "
    "`from mymodels import ...`) that the loading side can import too, and register the model from there"
)


def registration_advice(model: str, names: tuple[str, ...], *, strict: bool) -> str:
    """The warning (``strict``: the error) for registering ``model`` with ``names`` (from :func:`unportable`)."""
    tail = "Nothing was written" if strict else "With register(..., strict=True) this is an error"
    return (
        f"model {model!r}: the artifact imports {_listed(names)}, {_where(names, 'registers')}. An artifact "
        "records classes and functions by module and name, so a process running anything else (a server, a "
        f"notebook, the modelshelf command) could not load this version; {_MOVE}. {tail}"
    )


def load_advice(ref: str, names: tuple[str, ...], cause: str) -> str:
    """The error for a load that failed where ``names`` (from :func:`missing_here`) cannot be imported."""
    return (
        f"{ref}: the artifact is intact (its checksum matches) but cannot be loaded in this process: it needs "
        f"{_listed(names)}, {_where(names, 'registered')}, which this process does not define; installing "
        f"packages cannot help. To fix it, {_MOVE} again ({cause})"
    )


def safe_load_advice(qualified: str) -> str:
    """What a safe load's refusal of ``qualified`` (an unportable name) says instead of suggesting ``trusted=``."""
    return (
        f"It is {_where((qualified,), 'registered')}, which this process does not define, so trusting it "
        f"cannot help; {_MOVE} again"
    )
