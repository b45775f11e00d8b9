"""The two ways to run the interpreter: a restricted load, and an import scan that runs nothing.

:class:`LoadHooks` admits a global only by exact name on the policy (or in
``trusted``), and, when the version's recorded import inventory is given,
only if the inventory lists it too; it decides on the name before
importing anything, then checks the resolved object's identity. State goes
onto instances only: BUILD and item stores accept only objects this load
created itself, never a class, module, function or builtin.

:class:`ScanHooks` resolves nothing: each global becomes an inert
placeholder, except the two names needed to walk joblib's container
(``numpy.dtype`` and joblib's ``NumpyArrayWrapper``), which go through the
same checks as in a load, so both parse the same bytes the same way.
"""

from __future__ import annotations

import collections
import importlib
import inspect
import sys
import types
from collections.abc import Collection
from typing import Any, cast

from registry.errors import UnsafeArtifact
from registry.formats import checks
from registry.formats.estimator_checks import check_estimator
from registry.formats.hooks import ArraySpec, Budget, Hooks, Malformed
from registry.formats.policy import POLICY, Entry
from registry.formats.portability import missing_here, safe_load_advice
from registry.formats.unpickler import Interpreter

_DICTS = (dict, collections.OrderedDict, collections.defaultdict, collections.Counter)
_WRAPPER = "joblib.numpy_pickle.NumpyArrayWrapper"
_SMALL_PAYLOAD = 4096
#: Never a target of BUILD or item stores, even should an allowed call ever hand one back.
_CODE = (type, types.ModuleType, types.FunctionType, types.BuiltinFunctionType, types.MethodType)
_STRUCTURAL = frozenset({"numpy.dtype", "numpy.ndarray", _WRAPPER})


def _refuse_global(qualified: str, reason: str) -> UnsafeArtifact:
    if missing_here((qualified,)):  # a class of the registering script: trusting its name cannot make it importable
        return UnsafeArtifact(
            f"refused to load the global {qualified!r}: {reason}; nothing it names was imported or run. "
            f"{safe_load_advice(qualified)}",
            qualified,
        )
    return UnsafeArtifact(
        f"refused to load the global {qualified!r}: {reason}; nothing it names was imported or run. "
        f"If you trust this artifact, load it with safe=False, or pass trusted=[{qualified!r}] "
        "(see `modelshelf policy` for what safe loading admits)",
        qualified,
    )


def _resolve(qualified: str, module: str, name: str, identity: str) -> Any:
    """Import ``module`` and read exactly ``name`` (dotted only as listed), then check who it is."""
    try:
        obj: Any = importlib.import_module(module)
        for part in name.split("."):
            obj = getattr(obj, part)
    except (ImportError, AttributeError) as exc:
        raise _refuse_global(qualified, f"it cannot be imported here ({type(exc).__name__}: {exc})") from None
    found = f"{getattr(obj, '__module__', None)}.{getattr(obj, '__qualname__', None)}"
    if found != identity:
        raise _refuse_global(qualified, f"it resolves to {found}, not to {identity} (a re-export)")
    return obj


def _entry_of(cls: type) -> Entry | None:
    """The policy entry of ``cls`` or of its nearest listed base (numpy's dtype instances are subclasses)."""
    for klass in cls.__mro__[:-1]:
        entry = POLICY.get(f"{klass.__module__}.{klass.__qualname__}")
        if entry is not None:
            return entry
    return None


def _numpy_dtype() -> type:
    import numpy

    return numpy.dtype


class _Wrapper:
    """A joblib array wrapper under construction: BUILD turns it into an :class:`ArraySpec`."""

    __slots__ = ()


class LoadHooks(Hooks):
    """The restricted loader's decisions."""

    def __init__(self, trusted: Collection[str] = (), inventory: Collection[str] | None = None) -> None:
        self.trusted = frozenset(trusted)
        self.inventory = None if inventory is None else frozenset(inventory)
        self.entries: dict[int, tuple[Any, Entry | None]] = {}  # id(resolved global) -> (object, its entry)
        self.created: dict[int, Any] = {}  # id -> object, for every object this load created by call/new
        self.stated: set[int] = set()  # ids of the objects BUILD has given state (once each)
        self.used: set[int] = set()  # ids of created objects already handed to a call, a BUILD or a container
        self.held: list[Any] = []  # the plain containers walked by _use

    # -- globals ----------------------------------------------------------------

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if self.inventory is not None and qualified not in self.inventory:
            raise _refuse_global(
                qualified,
                "the version's recorded import inventory does not list it (the catalog or the bytes may have "
                "been edited since registration)",
            )
        if qualified in self.trusted:
            obj = _resolve(qualified, module, name, qualified)
            self.entries[id(obj)] = (obj, None)
            return obj
        entry = POLICY.get(qualified)
        if entry is None:
            raise _refuse_global(qualified, "it is not on the safe-load policy")
        obj = _resolve(qualified, module, name, entry.canonical)
        self.entries[id(obj)] = (obj, entry)
        return obj

    def _entry(self, obj: Any) -> tuple[bool, Entry | None]:
        known = self.entries.get(id(obj))
        if known is None or known[0] is not obj:
            return False, None
        return True, known[1]

    def _keep(self, obj: Any) -> Any:
        self.created[id(obj)] = obj
        return obj

    # -- calls and instantiation --------------------------------------------------

    def _use(self, values: Any) -> None:
        """Mark created objects as held, through the tuples, lists and dicts that hold them.

        Each container is walked once: a tuple cannot change, and items added
        to a list or dict later pass through here on their own.
        """
        pending = list(values)
        while pending:
            value = pending.pop()
            if id(value) in self.used:
                continue
            kind = type(value)
            if self.created.get(id(value)) is value:
                self.used.add(id(value))
            elif kind in (tuple, list, dict, set, frozenset):
                if not value:  # nothing to mark; items added later are marked as they are added
                    continue
                self.used.add(id(value))
                self.held.append(value)  # keeps its id from being reused while it is recorded
            else:
                continue
            if kind in (tuple, list, set, frozenset):
                pending.extend(value)
            elif kind is dict:
                pending.extend(value.keys())
                pending.extend(value.values())

    def _use_state(self, state: Any) -> None:
        self._use((state,))

    def _unused(self, obj: Any, entry: Entry, state: Any) -> None:
        """Checked state goes on before anything holds the object: a later BUILD would undo what was checked.

        numpy's shared builtin dtypes may be handed the very state they have again: that changes nothing.
        """
        if id(obj) in self.used and not (isinstance(obj, _numpy_dtype()) and obj.__reduce__()[2] == state):
            raise checks.refuse(
                f"setting state on a {entry.name} already in use",
                "pickle gives an object its state before handing it to anything; another object "
                "(an array, a sparse matrix) was already built on this one and checked against its old state",
            )

    def call(self, func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
        self._use(args)
        known, entry = self._entry(func)
        if known and entry is None:  # trusted by the caller
            return self._keep(func(*args))
        if entry is None or entry.call is None:
            raise checks.refuse(f"calling {checks.qualified_name(func)}", "the policy does not let it be called")
        return self._keep(entry.call(func, args, budget))

    def new(self, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any], budget: Budget) -> Any:
        self._use(args)
        self._use(kwargs.values())
        known, entry = self._entry(cls)
        if known and entry is None and isinstance(cls, type):
            return self._keep(cls.__new__(cls, *args, **kwargs))
        if entry is None or entry.role != "class" or not isinstance(cls, type):
            raise checks.refuse(f"creating {checks.qualified_name(cls)}", "the policy does not let it be instantiated")
        if args or kwargs:
            raise checks.refuse(f"creating {entry.name} with arguments", "classes are created empty, then given state")
        budget.charge(256, entry.name)
        if entry.name == _WRAPPER:
            return self._keep(_Wrapper())
        # typed Any: mypy reads ``cls.__new__`` on a ``type`` as the metaclass's ``type.__new__``
        return self._keep(cast(Any, cls).__new__(cls))

    # -- state onto instances only ---------------------------------------------------------

    def _own(self, obj: Any, what: str) -> None:
        if self.created.get(id(obj)) is not obj or isinstance(obj, _CODE):
            raise checks.refuse(
                f"{what} on {checks.qualified_name(obj) if isinstance(obj, type) else type(obj).__name__}",
                "state goes only onto objects this load created, never onto a class, module or function",
            )

    def build(self, obj: Any, state: Any, budget: Budget) -> Any:
        if isinstance(obj, _Wrapper) and self.created.get(id(obj)) is obj:
            return checks.array_wrapper_state(obj, state, budget)
        self._own(obj, "setting state")
        self._once(obj)
        self._use_state(state)
        cls = type(obj)
        qualified = f"{cls.__module__}.{cls.__qualname__}"
        entry = _entry_of(cls)
        if entry is not None and entry.state is not None:
            self._unused(obj, entry, state)
            return entry.state(obj, state, budget)
        if (entry is None or entry.role != "class") and qualified not in self.trusted:
            raise checks.refuse(f"setting state on a {qualified}", "the policy gives its class no state to set")
        setstate = getattr(cls, "__setstate__", None)
        if setstate is not None:
            setstate(obj, state)
            return obj
        slots: Any = None
        if type(state) is tuple and len(state) == 2:
            state, slots = state
        if state is not None:
            if type(state) is not dict or not all(type(key) is str for key in state):
                raise checks.refuse(f"setting state on a {qualified}", "instance state must be a dict of names")
            obj.__dict__.update(state)
        if slots is not None:
            self._set_slots(obj, slots, qualified)
        return obj

    def _once(self, obj: Any) -> None:
        """An object gets its state once, as pickle writes it, so no check can be undone by a later BUILD."""
        if id(obj) in self.stated:
            if isinstance(obj, _numpy_dtype()):  # numpy hands out one shared instance per builtin dtype
                return
            raise checks.refuse(
                f"setting state twice on a {type(obj).__name__}",
                "pickle gives each object its state once; a second BUILD would replace state already checked",
            )
        self.stated.add(id(obj))

    def finish(self, value: Any) -> None:
        for obj in self.created.values():
            check_estimator(obj)

    @staticmethod
    def _set_slots(obj: Any, slots: Any, qualified: str) -> None:
        declared = {name for klass in type(obj).__mro__ for name in getattr(klass, "__slots__", ())}
        if type(slots) is not dict or not set(slots) <= declared:
            raise checks.refuse(f"setting slots on a {qualified}", "only the class's declared slots may be set")
        for key, value in slots.items():
            object.__setattr__(obj, key, value)

    def setitems(self, target: Any, pairs: list[tuple[Any, Any]]) -> None:
        self._use(value for pair in pairs for value in pair)
        if type(target) in _DICTS:
            for key, value in pairs:
                target[key] = value
            return
        if isinstance(target, dict) and not isinstance(target, type):
            self._own(target, "storing items")
            for key, value in pairs:
                dict.__setitem__(target, key, value)
            return
        raise checks.refuse(f"storing items into a {type(target).__name__}", "only dicts take items")

    def extend(self, target: Any, items: list[Any]) -> None:
        self._use(items)
        if type(target) is list:
            target.extend(items)
        elif type(target) is collections.deque:
            target.extend(items)
        elif isinstance(target, list):
            self._own(target, "appending items")
            list.extend(target, items)
        else:
            raise checks.refuse(f"appending to a {type(target).__name__}", "only lists take appended items")

    def add(self, target: Any, items: list[Any]) -> None:
        if type(target) is not set:
            raise checks.refuse(f"adding items to a {type(target).__name__}", "only sets take added items")
        self._use(items)
        target.update(items)

    def array(self, data: memoryview, spec: ArraySpec, budget: Budget) -> Any:
        import numpy

        count = len(data) // spec.dtype.itemsize if spec.dtype.itemsize else 0
        budget.charge(256, "a joblib array")
        flat = numpy.frombuffer(data, dtype=spec.dtype, count=count) if count else numpy.empty(0, spec.dtype)
        array = flat.reshape(spec.shape[::-1]).T if spec.order == "F" else flat.reshape(spec.shape)
        if spec.dtype.byteorder not in ("=", "|") and not spec.dtype.isnative:
            budget.charge(array.nbytes, "a byte-swapped joblib array")
            array = array.byteswap().view(array.dtype.newbyteorder("="))
        return array


class _Inert:
    """What a global becomes in a scan: a name that does nothing."""

    __slots__ = ("name",)

    def __init__(self, name: str) -> None:
        self.name = name


def _may_be_the_wrapper(module: str, name: str) -> bool:
    """Whether joblib could resolve ``module.name`` to its array wrapper (``sklearn.utils.parallel.joblib...``).

    joblib reads raw array bytes after BUILD of anything that *is* its
    wrapper, whatever name reached it, while the scan treats only the
    canonical name so. Without importing or running anything, a name whose
    last part is the wrapper's, or that static lookups in modules already
    imported here lead to it, is refused.
    """
    if name.rpartition(".")[2] == "NumpyArrayWrapper":
        return True
    wrapper = getattr(sys.modules.get("joblib.numpy_pickle"), "NumpyArrayWrapper", None)
    obj: Any = sys.modules.get(module)
    if wrapper is None or obj is None:
        return False
    for part in name.split("."):
        obj = inspect.getattr_static(obj, part, None)
        if obj is None:
            return False
    return obj is wrapper


class ScanHooks(LoadHooks):
    """The import scanner's decisions: placeholders for everything but joblib's container structure."""

    def __init__(self) -> None:
        super().__init__()

    def find_class(self, module: str, name: str) -> Any:
        qualified = f"{module}.{name}"
        if qualified in _STRUCTURAL:
            return super().find_class(module, name)
        if _may_be_the_wrapper(module, name):
            raise Malformed(
                f"malformed joblib file: the global {qualified!r} names joblib's NumpyArrayWrapper another way; "
                "joblib would read array bytes after it that this scan would read as opcodes"
            )
        return _Inert(qualified)

    def call(self, func: Any, args: tuple[Any, ...], budget: Budget) -> Any:
        if isinstance(func, _Inert) or any(isinstance(arg, _Inert) for arg in args):
            return _Inert(f"{getattr(func, 'name', '?')}()")
        return super().call(func, args, budget)

    def new(self, cls: Any, args: tuple[Any, ...], kwargs: dict[str, Any], budget: Budget) -> Any:
        if isinstance(cls, _Inert):
            return _Inert(cls.name)
        return super().new(cls, args, kwargs, budget)

    def build(self, obj: Any, state: Any, budget: Budget) -> Any:
        if isinstance(obj, _Wrapper) or type(obj).__module__.startswith("numpy"):
            return super().build(obj, state, budget)
        return obj

    def finish(self, value: Any) -> None:
        """A scan builds no estimators: nothing to check as a whole."""

    def setitems(self, target: Any, pairs: list[tuple[Any, Any]]) -> None:
        if type(target) is dict:
            target.update(pairs)

    def extend(self, target: Any, items: list[Any]) -> None:
        if type(target) is list:
            target.extend(items)

    def add(self, target: Any, items: list[Any]) -> None:
        if type(target) is set:
            target.update(items)

    def array(self, data: memoryview, spec: ArraySpec, budget: Budget) -> Any:
        return _Inert("array")

    def payload(self, data: memoryview, kind: type) -> Any:
        # Large payloads are array data; nothing the container walk needs is in bytes, so none is copied.
        return kind(data) if len(data) <= _SMALL_PAYLOAD else _Inert(kind.__name__)


def run(
    data: memoryview, hooks: Hooks, *, container: bool, budget_size: int | None = None
) -> tuple[Any, set[str], int]:
    """Run one stream; return the object, the globals it named, and where it ended.

    ``budget_size`` is the artifact's size when ``data`` was inflated from it:
    the budget, and the inflated bytes themselves, count against the artifact.
    """
    budget = Budget(len(data) if budget_size is None else budget_size)
    if budget_size is not None and budget_size != len(data):
        budget.charge(len(data), "the decompressed stream")
    interpreter = Interpreter(data, 0, hooks, budget, container=container)
    value = interpreter.run()
    hooks.finish(value)
    return value, interpreter.imports, interpreter.pos
