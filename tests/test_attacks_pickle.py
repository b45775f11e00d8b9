"""The attacker's corpus: hand-written pickle and joblib streams against ``load(..., safe=True)``.

Every test plays someone who can put bytes into the registry (a shared
store, a model downloaded from a hub, a colleague's file) and wants
``safe=True`` to run their code, patch the process, or smuggle an import
past the inventory. The bytes go in unexamined with
``register_file(check=False)``, exactly as an attacker's would, and the test
asserts two things: the load is refused with :class:`UnsafeArtifact` (a
malformed stream may instead be a :class:`SerializationError`), and the side
effect the payload was built for — a file written, an environment variable
set, a class patched — did not happen.

The tricks come from published bypasses of pickle scanners and restricted
unpicklers (picklescan, fickling, modelscan, PyTorch's ``weights_only``),
and from issue 11's own list; each test names its source. A refusal at
registration time is as good as one at load time, so the helpers accept
either.
"""

from __future__ import annotations

import copyreg
import os
import pickle
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from registry import Registry, SerializationError, UnsafeArtifact
from registry.errors import RegistryError
from tests.pickle_payloads import (
    Expr,
    call,
    call_with,
    data,
    embedded,
    global_,
    joblib_with_object_array,
    memoize,
    program,
    python_writing,
    recall,
    stack_global,
    text,
    then,
)

FORMATS = ["pickle", "joblib"]
MALFORMED = (SerializationError,)

# Foreign callables that scikit-learn modules re-export under plain names (found by walking their namespaces).
ATTRGETTER = ("sklearn.feature_selection._base", "attrgetter")
ITEMGETTER = ("sklearn.utils.discovery", "itemgetter")
PARTIAL = ("sklearn.linear_model._ridge", "partial")
THREAD = ("sklearn.callback._progressbar", "Thread")
PATH = ("sklearn.utils.discovery", "Path")


# --- the attacker's workflow --------------------------------------------------------------------


@pytest.fixture
def marker(tmp_path: Path) -> Path:
    """The file a payload tries to create; its absence is the proof that nothing ran."""
    return tmp_path / "ran"


def refused(
    reg: Registry, tmp_path: Path, stream: bytes, fmt: str, *, also: tuple[type[RegistryError], ...] = ()
) -> RegistryError:
    """Store ``stream`` unexamined, as an attacker would, and load it with ``safe=True``: it must be refused."""
    path = tmp_path / f"artifact.{fmt}"
    path.write_bytes(stream)
    with pytest.raises((UnsafeArtifact, *also)) as caught:
        mv = reg.register_file("attack", path, format=fmt, check=False)
        reg.load(f"attack:{mv.version}", safe=True)
    return caught.value


def assert_nothing_ran(marker: Path, *, spawned: bool = False) -> None:
    """The payload's mark is absent; a payload that starts a process gets a moment to have finished."""
    if spawned:
        time.sleep(0.1)  # Popen returns once the child has exec'd; touch needs a few milliseconds more
    assert not marker.exists(), f"the payload ran: {marker.name} was written"


def sklearn_chain(dotted_tail: str, module: str = "sklearn.base") -> Expr:
    """A global named under an allowed scikit-learn module, reaching a foreign object by attribute chain."""
    return global_(module, dotted_tail)


def reexported(where: tuple[str, str]) -> Expr:
    return global_(*where)


def exec_via_reexports() -> Expr:
    """``exec`` reached with no dotted name: ``attrgetter('get_params.__globals__')`` then two ``itemgetter``s."""
    module_globals = call_with(
        call(reexported(ATTRGETTER), "get_params.__globals__"), global_("sklearn.base", "BaseEstimator")
    )
    builtins_dict = call_with(call(reexported(ITEMGETTER), "__builtins__"), module_globals)
    return call_with(call(reexported(ITEMGETTER), "exec"), builtins_dict)


def touch(marker: Path) -> list[str]:
    return ["touch", str(marker)]


@pytest.mark.slow  # imports four scikit-learn subpackages the safe loader itself never needs
def test_the_reexports_used_below_are_really_foreign_objects_under_sklearn_names() -> None:
    """Guard the corpus itself: each name resolves, and to something scikit-learn did not define."""
    import functools
    import importlib
    import operator
    import pathlib
    import threading

    expected = {
        ATTRGETTER: operator.attrgetter,
        ITEMGETTER: operator.itemgetter,
        PARTIAL: functools.partial,
        THREAD: threading.Thread,
        PATH: pathlib.Path,
    }
    for (module, name), target in expected.items():
        assert getattr(importlib.import_module(module), name) is target
        assert not target.__module__.startswith("sklearn")


# --- issue 11, item 1: names decide nothing -------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_popen_reached_through_sklearn_base_is_refused(reg: Registry, tmp_path: Path, marker: Path, fmt: str) -> None:
    """Issue 11: ``GLOBAL 'sklearn.base' 'np.f2py.subprocess.Popen'`` ran a shell command in a safe load."""
    stream = program(call(sklearn_chain("np.f2py.subprocess.Popen"), touch(marker)))
    error = refused(reg, tmp_path, stream, fmt)
    assert isinstance(error, UnsafeArtifact) and "Popen" in error.global_name
    assert_nothing_ran(marker, spawned=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_payload_hidden_in_front_of_a_working_estimator_is_refused(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """Issue 11: the load 'still returned a working estimator' — the command runs first, then a real model follows."""
    from sklearn.linear_model import LogisticRegression

    stream = program(
        then(call(sklearn_chain("np.f2py.subprocess.Popen"), touch(marker)), embedded(LogisticRegression()))
    )
    refused(reg, tmp_path, stream, fmt)
    assert_nothing_ran(marker, spawned=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_code_and_function_types_reached_through_sklearn_base_inspect_are_refused(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """Issue 11: ``inspect.types.CodeType`` and ``FunctionType`` under ``sklearn.base`` built and ran any Python."""
    code = compile(python_writing(str(marker)), "<payload>", "exec")
    fields = (
        code.co_argcount,
        code.co_posonlyargcount,
        code.co_kwonlyargcount,
        code.co_nlocals,
        code.co_stacksize,
        code.co_flags,
        code.co_code,
        code.co_consts,
        code.co_names,
        code.co_varnames,
        code.co_filename,
        code.co_name,
        code.co_qualname,
        code.co_firstlineno,
        code.co_linetable,
        code.co_exceptiontable,
        code.co_freevars,
        code.co_cellvars,
    )
    code_object = call(sklearn_chain("inspect.types.CodeType"), *fields)
    function = call_with(sklearn_chain("inspect.types.FunctionType"), code_object, data({}))
    refused(reg, tmp_path, program(call(function)), fmt)
    assert_nothing_ran(marker)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("opcode", ["REDUCE", "NEWOBJ", "NEWOBJ_EX"])
def test_memmap_reached_through_sklearn_base_truncates_nothing(
    reg: Registry, tmp_path: Path, fmt: str, opcode: str
) -> None:
    """Issue 11: ``np.memmap`` via ``sklearn.base`` truncated a file, while ``numpy.memmap`` by name was refused.

    ``memmap`` does its work in ``__new__``, so ``NEWOBJ`` and ``NEWOBJ_EX``
    (which call only ``cls.__new__``) are as dangerous as ``REDUCE``.
    """
    precious = tmp_path / "precious.txt"
    precious.write_text("keep me whole")
    memmap = sklearn_chain("np.memmap")
    args = data((str(precious), "uint8", "w+", 0, (1,)))
    if opcode == "REDUCE":
        expr = memmap + args + pickle.REDUCE
    elif opcode == "NEWOBJ":
        expr = memmap + args + pickle.NEWOBJ
    else:
        expr = memmap + data((str(precious),)) + data({"mode": "w+", "shape": (1,)}) + pickle.NEWOBJ_EX
    refused(reg, tmp_path, program(expr), fmt)
    assert precious.read_text() == "keep me whole"


@pytest.mark.parametrize("fmt", FORMATS)
def test_logging_file_handler_reached_through_sklearn_is_refused(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """Issue 11: ``logging.FileHandler`` got through (it opens, so creates, the file it is given)."""
    refused(reg, tmp_path, program(call(sklearn_chain("logging.FileHandler", module="sklearn"), str(marker))), fmt)
    assert_nothing_ran(marker)


@pytest.mark.parametrize("fmt", FORMATS)
def test_builtins_dict_reached_through_sklearn_base_is_refused(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """modelscan #89: a module's ``__builtins__`` is a dict of every builtin; ``.get('exec')`` then runs code."""
    exec_ = call(sklearn_chain("__builtins__.get"), "exec")
    refused(reg, tmp_path, program(call(exec_, python_writing(str(marker)))), fmt)
    assert_nothing_ran(marker)


# --- issue 11, item 1: re-exports under plain names ------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_attrgetter_and_itemgetter_reach_exec_with_no_dotted_name(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """Issue 11 (and picklescan GHSA-m273-6v24-x4m4, GHSA-955r-x9j8-7rhh: ``operator`` getters).

    ``attrgetter('get_params.__globals__')`` on an allowed class gives a
    module's globals, ``itemgetter`` walks on to ``__builtins__['exec']``.
    Both getters are reached under scikit-learn module names.
    """
    refused(reg, tmp_path, program(call(exec_via_reexports(), python_writing(str(marker)))), fmt)
    assert_nothing_ran(marker)


@pytest.mark.parametrize("fmt", FORMATS)
def test_pathlib_path_reexported_by_sklearn_writes_nothing(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """Issue 11: ``pathlib.Path`` under ``sklearn.utils.discovery``; its ``write_text`` reached by ``attrgetter``."""
    path_object = call(reexported(PATH), str(marker))
    write_text = call_with(call(reexported(ATTRGETTER), "write_text"), path_object)
    refused(reg, tmp_path, program(call(write_text, "ran")), fmt)
    assert_nothing_ran(marker)


@pytest.mark.parametrize("fmt", FORMATS)
def test_functools_partial_reexported_by_sklearn_calls_nothing(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """Issue 11 and fickling's ``functools.partial`` wrapper bypass: ``partial(exec, code)()``."""
    bound = call_with(reexported(PARTIAL), exec_via_reexports(), data(python_writing(str(marker))))
    refused(reg, tmp_path, program(call(bound)), fmt)
    assert_nothing_ran(marker)


@pytest.mark.parametrize("fmt", FORMATS)
def test_threading_thread_reexported_by_sklearn_starts_nothing(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """Issue 11: ``threading.Thread(target=exec, args=(code,))``, then ``.start()``, ``.join()`` by ``attrgetter``."""
    thread = memoize(
        call_with(
            reexported(THREAD), data(None), exec_via_reexports(), data(None), data((python_writing(str(marker)),))
        ),
        200,
    )
    start = call(call_with(call(reexported(ATTRGETTER), "start"), thread))
    join = call(call_with(call(reexported(ATTRGETTER), "join"), recall(200)))
    refused(reg, tmp_path, program(then(start, join)), fmt)
    assert_nothing_ran(marker, spawned=True)


# --- published scanner bypasses: callables no deny-list thought of ---------------------------------


def _scanner_bypasses(marker: Path, script: Path) -> dict[str, Expr]:
    """One payload per advisory; each would leave ``marker`` behind if it ran."""
    shell = f"touch {marker}"
    code = python_writing(str(marker))
    inner = program(call(global_("posix", "system"), shell), protocol=2)
    return {
        # picklescan CVE-2025-1716: pip was not on the deny-list (pip.main installs and runs anything).
        "pip.main": call(global_("pip", "main"), ["--log", str(marker), "list"]),
        # picklescan PR #27 / fickling: runpy runs a file.
        "runpy.run_path": call(global_("runpy", "run_path"), str(script)),
        # picklescan GHSA-9w88-8rmg-7g2p (cProfile.runctx), GHSA-46h3-79wf-xr6c: profilers exec their argument.
        "cProfile.run": call(global_("cProfile", "run"), code),
        # picklescan GHSA-v7x6-rv5q-mhwc: timeit compiles and runs its statement.
        "timeit.main": call(global_("timeit", "main"), ["-n", "1", "-r", "1", code]),
        # picklescan GHSA-vvpj-8cmc-gx39: pkgutil.resolve_name reaches any callable.
        "pkgutil.resolve_name": call(call(global_("pkgutil", "resolve_name"), "posix:system"), shell),
        # fickling: pydoc.locate, the same universal resolver.
        "pydoc.locate": call(call(global_("pydoc", "locate"), "posix.system"), shell),
        # picklescan 1.0.4 (CVE-2026-56315): uuid's helper runs a command.
        "uuid._get_command_stdout": call(global_("uuid", "_get_command_stdout"), "touch", str(marker)),
        # picklescan GHSA-84r2-jw7c-4r5q, modelscan #267: a nested, unrestricted pickle.loads.
        "pickle.loads": call(global_("pickle", "loads"), inner),
        "_pickle.loads": call(global_("_pickle", "loads"), inner),
        # the classics every deny-list starts with, in their real module names.
        "posix.system": call(global_("posix", "system"), shell),
        "subprocess.getoutput": call(global_("subprocess", "getoutput"), shell),
        "builtins.exec": call(global_("builtins", "exec"), code),
        "builtins.eval": call(global_("builtins", "eval"), code),
        "importlib.import_module": call(
            call_with(
                global_("builtins", "getattr"), call(global_("importlib", "import_module"), "posix"), text("system")
            ),
            shell,
        ),
        # fickling GHSA-6ggj-6f2q-f7mx style: private stdlib modules (_posixsubprocess, _operator).
        "_operator.attrgetter": call(
            call_with(
                call(global_("_operator", "attrgetter"), "system"), call(global_("importlib", "import_module"), "posix")
            ),
            shell,
        ),
        # fickling: ctypes reaches libc's system().
        "ctypes.CDLL": call(
            call_with(call(reexported(ATTRGETTER), "system"), call(global_("ctypes", "CDLL"), None)), shell.encode()
        ),
        # numpy's own eval and exec helpers (fickling PR #210 lists numpy.f2py.crackfortran's eval users).
        "numpy.f2py.crackfortran.myeval": call(global_("numpy.f2py.crackfortran", "myeval"), code),
        "numpy.testing._private.utils.runstring": call(global_("numpy.testing._private.utils", "runstring"), code, {}),
        # modelscan #89: numpy's __builtins__ dict, then dict.get.
        "numpy.__builtins__": call(
            call_with(global_("builtins", "dict.get"), global_("numpy", "__builtins__"), text("exec")), code
        ),
    }


SCANNER_BYPASSES = sorted(_scanner_bypasses(Path("/nonexistent/ran"), Path("/nonexistent/script.py")))


@pytest.mark.parametrize("name", SCANNER_BYPASSES)
def test_callables_from_scanner_advisories_are_refused(reg: Registry, tmp_path: Path, marker: Path, name: str) -> None:
    """A deny-list misses what nobody listed; an allow-list by identity has nothing to miss."""
    script = tmp_path / "script.py"
    script.write_text(python_writing(str(marker)) + "\n")
    expr = _scanner_bypasses(marker, script)[name]
    for fmt in FORMATS:
        refused(reg, tmp_path, program(expr), fmt)
    assert_nothing_ran(marker)  # every one of these would have run synchronously


# --- every opcode that imports or calls ----------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_stack_global_with_names_from_the_memo_is_refused(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """picklescan GHSA (memo KeyError / type confusion), modelscan #85: the names come back from the memo.

    The strings are stored with ``BINPUT``, decoys with ``MEMOIZE`` (which
    numbers entries by the memo's size, not by a counter of its own), so a
    scanner that tracks only one of the two reads the wrong names.
    """
    expr = (
        memoize(text("posix"), 0)
        + pickle.POP
        + memoize(text("system"), 1)
        + pickle.POP
        + text("sklearn.linear_model")
        + pickle.MEMOIZE  # lands at index 2 in CPython; a naive counter thinks 0
        + pickle.POP
        + text("LogisticRegression")
        + pickle.MEMOIZE  # index 3 in CPython; a naive counter thinks 1
        + pickle.POP
        + recall(0)
        + recall(1)
        + pickle.STACK_GLOBAL
    )
    refused(reg, tmp_path, program(call(expr, f"touch {marker}")), fmt)
    assert_nothing_ran(marker)


@pytest.mark.parametrize("fmt", FORMATS)
def test_stack_global_with_a_sklearn_chain_from_the_memo_is_refused(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    expr = memoize(text("sklearn.base"), 7) + pickle.POP + memoize(text("np.f2py.subprocess.Popen"), 9) + pickle.POP
    expr += recall(7) + recall(9) + pickle.STACK_GLOBAL
    refused(reg, tmp_path, program(call(expr, touch(marker))), fmt)
    assert_nothing_ran(marker, spawned=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_inst_imports_and_calls_in_one_opcode_and_is_refused(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """Protocol 0's ``INST module\\nname\\n``: a global and a call, which scanners looking for ``GLOBAL`` miss."""
    expr = pickle.MARK + data(touch(marker)) + pickle.INST + b"sklearn.base\nnp.f2py.subprocess.Popen\n"
    refused(reg, tmp_path, program(expr, protocol=0)[2:], fmt)  # no PROTO header: pure protocol 0
    assert_nothing_ran(marker, spawned=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_obj_calls_a_class_from_the_stack_and_is_refused(reg: Registry, tmp_path: Path, marker: Path, fmt: str) -> None:
    expr = pickle.MARK + sklearn_chain("np.f2py.subprocess.Popen") + data(touch(marker)) + pickle.OBJ
    refused(reg, tmp_path, program(expr, protocol=1), fmt)
    assert_nothing_ran(marker, spawned=True)


@pytest.fixture
def extension_codes() -> Iterator[Callable[[str, str, int], None]]:
    """Register ``copyreg`` extension codes for one test, and remove them (and their cache entries) after it."""
    added: list[tuple[str, str, int]] = []

    def add(module: str, name: str, code: int) -> None:
        copyreg.add_extension(module, name, code)
        added.append((module, name, code))

    yield add
    for module, name, code in added:
        copyreg.remove_extension(module, name, code)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(("opcode", "code"), [("EXT1", 0xF1), ("EXT2", 0xF1F2), ("EXT4", 0x0AF1F2F3)])
def test_extension_codes_resolve_through_the_same_check(
    reg: Registry, tmp_path: Path, marker: Path, extension_codes, fmt: str, opcode: str, code: int
) -> None:
    """``EXT1/2/4`` name a global by a number from ``copyreg``'s registry instead of by text."""
    extension_codes("sklearn.base", "np.f2py.subprocess.Popen", code)
    width = {"EXT1": 1, "EXT2": 2, "EXT4": 4}[opcode]
    expr = getattr(pickle, opcode) + code.to_bytes(width, "little")
    refused(reg, tmp_path, program(call(expr, touch(marker)), protocol=2), fmt)
    assert_nothing_ran(marker, spawned=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_extension_cached_by_an_earlier_ordinary_load_is_not_served_from_the_cache(
    reg: Registry, tmp_path: Path, marker: Path, extension_codes, fmt: str
) -> None:
    """Both of CPython's unpicklers answer ``EXT`` from ``copyreg._extension_cache`` before calling ``find_class``.

    Once any ordinary load in the process has resolved the code, a safe
    unpickler that relies on ``find_class`` alone serves ``posix.system``
    from the cache without being asked.
    """
    extension_codes("posix", "system", 0xF3)
    ext = pickle.EXT1 + b"\xf3"
    assert pickle.loads(program(ext, protocol=2)) is os.system  # some trusted load earlier in the process
    refused(reg, tmp_path, program(call(ext, f"touch {marker}"), protocol=2), fmt)
    assert_nothing_ran(marker)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("opcode", ["PERSID", "BINPERSID", "NEXT_BUFFER", "READONLY_BUFFER"])
def test_persistent_ids_and_out_of_band_buffers_are_refused(
    reg: Registry, tmp_path: Path, fmt: str, opcode: str
) -> None:
    """Persistent ids and protocol 5's out-of-band buffers hand the stream a value from outside the artifact."""
    expr = {
        "PERSID": pickle.PERSID + b"posix.system\n",
        "BINPERSID": text("posix.system") + pickle.BINPERSID,
        "NEXT_BUFFER": pickle.NEXT_BUFFER,
        "READONLY_BUFFER": pickle.NEXT_BUFFER + pickle.READONLY_BUFFER,
    }[opcode]
    refused(reg, tmp_path, program(expr, protocol=5), fmt, also=MALFORMED)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_stream_that_breaks_after_its_payload_is_refused_before_the_payload(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """picklescan GHSA-9gvj-pp9x-gcfr, modelscan #348: a scanner that crashes on a bad memo reference reports nothing.

    CPython runs the call, then fails on ``BINGET`` of an index never put.
    The load must refuse at the global, and registration must not record a
    clean inventory for a stream it could not finish reading.
    """
    stream = program(then(call(sklearn_chain("np.f2py.subprocess.Popen"), touch(marker)), recall(250)))
    path = tmp_path / f"broken.{fmt}"
    path.write_bytes(stream)
    try:
        mv = reg.register_file("broken", path, format=fmt, check=False)
    except (UnsafeArtifact, SerializationError):
        assert reg.models() == []
    else:
        assert mv.imports is None or "sklearn.base.np.f2py.subprocess.Popen" in mv.imports
        with pytest.raises((UnsafeArtifact, SerializationError)):
            reg.load(f"broken:{mv.version}", safe=True)
    assert_nothing_ran(marker, spawned=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_protocol_0_text_forms_are_checked_like_the_binary_ones(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """No ``PROTO``, text opcodes only: ``GLOBAL``, ``MARK``, ``STRING``, ``LIST``, ``TUPLE``, ``PUT``, ``GET``."""
    stream = (
        b"csklearn.base\nnp.f2py.subprocess.Popen\np0\n0g0\n"
        + b"((S'touch'\n"
        + b"V"
        + str(marker).encode("raw_unicode_escape")
        + b"\nltR."
    )
    refused(reg, tmp_path, stream, fmt)
    assert_nothing_ran(marker, spawned=True)


@pytest.mark.parametrize("fmt", FORMATS)
def test_an_opcode_straddling_a_frame_boundary_never_runs(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str
) -> None:
    """Frame-straddling: CPython's C unpickler reads an argument across the end of a ``FRAME``.

    The frame claims two bytes; the string that starts inside it runs on
    past its end and swallows what a frame-respecting scanner would parse as
    a complete, harmless pickle (``N.``). CPython then goes on to the call.
    """
    decoy = pickle.NONE + pickle.STOP
    straddling = pickle.SHORT_BINUNICODE + bytes([len(decoy)]) + decoy
    frame = pickle.FRAME + (2).to_bytes(8, "little")
    payload = call(sklearn_chain("np.f2py.subprocess.Popen"), touch(marker))
    stream = pickle.PROTO + b"\x04" + frame + straddling + pickle.POP + payload + pickle.STOP
    refused(reg, tmp_path, stream, fmt, also=MALFORMED)
    assert_nothing_ran(marker, spawned=True)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    ("module", "name"),
    [
        ("\u0455klearn.base", "BaseEstimator"),  # Cyrillic dze for the s
        ("sklearn.base", "BaseEstimator\nnp.f2py.subprocess.Popen"),  # a newline inside STACK_GLOBAL's name
        ("sklearn.base ", "BaseEstimator"),  # trailing space
        ("sklearn", "base.np.f2py.subprocess.Popen"),  # the same chain, split at another dot
        ("sklearn.base.np.f2py", "subprocess.Popen"),  # a "module" that is an attribute path
    ],
)
def test_look_alike_and_split_names_are_refused(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str, module: str, name: str
) -> None:
    refused(reg, tmp_path, program(call(stack_global(module, name), touch(marker))), fmt)
    assert_nothing_ran(marker, spawned=True)


# --- issue 11, item 8: state goes onto instances only ----------------------------------------------


@pytest.fixture
def restore_class_dicts() -> Iterator[Callable[[type, str], None]]:
    """Remember attributes of classes and modules a payload tries to patch, and put them back afterwards.

    Against a vulnerable loader the patch would otherwise leak into every later test.
    """
    saved: list[tuple[object, str, object]] = []
    missing = object()

    def remember(owner: object, attribute: str) -> None:
        saved.append((owner, attribute, vars(owner).get(attribute, missing)))

    yield remember
    for owner, attribute, value in reversed(saved):
        if value is missing:
            if attribute in vars(owner):
                delattr(owner, attribute)
        else:
            setattr(owner, attribute, value)


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_cannot_replace_a_method_of_an_allowed_sparse_class(
    reg: Registry, tmp_path: Path, fmt: str, restore_class_dicts
) -> None:
    """Issue 11: ``BUILD`` on ``csr_matrix`` (no ``__setstate__``) with slot state replaced ``toarray`` for everyone."""
    import numpy as np
    from scipy.sparse import csr_matrix

    restore_class_dicts(csr_matrix, "toarray")
    original = vars(csr_matrix).get("toarray")
    stream = program(global_("scipy.sparse", "csr_matrix") + data((None, {"toarray": "patched"})) + pickle.BUILD)
    refused(reg, tmp_path, stream, fmt)
    assert vars(csr_matrix).get("toarray") is original
    assert (csr_matrix(np.eye(2)).toarray() == np.eye(2)).all()


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_on_a_class_fetched_back_from_the_memo_is_refused_too(
    reg: Registry, tmp_path: Path, fmt: str, restore_class_dicts
) -> None:
    """The class goes through the memo first, so a loader that only looks at the opcode before ``BUILD`` misses it."""
    from scipy.sparse import csr_matrix

    restore_class_dicts(csr_matrix, "toarray")
    original = vars(csr_matrix).get("toarray")
    expr = memoize(global_("scipy.sparse", "csr_matrix"), 3) + pickle.POP + data(1) + pickle.POP + recall(3)
    stream = program(expr + data((None, {"toarray": "patched"})) + pickle.BUILD)
    refused(reg, tmp_path, stream, fmt)
    assert vars(csr_matrix).get("toarray") is original


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_cannot_set_attributes_on_an_allowed_function(
    reg: Registry, tmp_path: Path, fmt: str, restore_class_dicts
) -> None:
    """modelscan #85: ``BUILD`` with a dict state on a function updates its ``__dict__`` (here ``_reconstructor``)."""
    restore_class_dicts(copyreg._reconstructor, "ms_attack")
    stream = program(global_("copyreg", "_reconstructor") + data({"ms_attack": "patched"}) + pickle.BUILD)
    refused(reg, tmp_path, stream, fmt)
    assert not hasattr(copyreg._reconstructor, "ms_attack")


@pytest.mark.parametrize("fmt", FORMATS)
def test_build_cannot_patch_a_module_reached_through_sklearn(
    reg: Registry, tmp_path: Path, fmt: str, restore_class_dicts
) -> None:
    """modelscan #85/#89: slot state on a module is ``setattr`` on the module (here: numpy, via ``sklearn.base.np``)."""
    import numpy as np

    restore_class_dicts(np, "ms_attack")
    stream = program(sklearn_chain("np") + data((None, {"ms_attack": "patched"})) + pickle.BUILD)
    refused(reg, tmp_path, stream, fmt)
    assert not hasattr(np, "ms_attack")


@pytest.mark.parametrize("fmt", FORMATS)
def test_setitem_on_a_module_level_mapping_sets_no_environment_variable(
    reg: Registry, tmp_path: Path, fmt: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``SETITEM`` calls ``__setitem__`` of whatever is on the stack: here ``os.environ`` via ``sklearn.os``."""
    monkeypatch.delenv("MS_ATTACK", raising=False)  # and restores it, should a vulnerable loader set it
    stream = program(sklearn_chain("os.environ", module="sklearn") + text("MS_ATTACK") + text("1") + pickle.SETITEM)
    refused(reg, tmp_path, stream, fmt)
    assert "MS_ATTACK" not in os.environ


@pytest.mark.parametrize("fmt", FORMATS)
def test_setitems_on_a_class_level_dict_leaves_it_alone(reg: Registry, tmp_path: Path, fmt: str) -> None:
    """``SETITEMS`` on ``LogisticRegression._parameter_constraints`` would switch off its validation process-wide."""
    from sklearn.linear_model import LogisticRegression

    constraints = LogisticRegression._parameter_constraints
    before = dict(constraints)
    target = global_("sklearn.linear_model", "LogisticRegression._parameter_constraints")
    stream = program(target + pickle.MARK + text("C") + data([]) + pickle.SETITEMS)
    try:
        refused(reg, tmp_path, stream, fmt)
        assert constraints == before
    finally:
        constraints.clear()
        constraints.update(before)


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("opcode", ["APPEND", "APPENDS"])
def test_append_to_sys_path_reached_through_sklearn_is_refused(
    reg: Registry, tmp_path: Path, fmt: str, opcode: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    """``APPEND(S)`` on ``sys.path`` would make every later import look in the attacker's directory first."""
    monkeypatch.setattr(sys, "path", list(sys.path))  # a vulnerable loader mutates this copy
    evil = str(tmp_path / "evil")
    target = sklearn_chain("sys.path", module="sklearn.linear_model._coordinate_descent")
    if opcode == "APPEND":
        stream = program(target + text(evil) + pickle.APPEND)
    else:
        stream = program(target + pickle.MARK + text(evil) + pickle.APPENDS)
    refused(reg, tmp_path, stream, fmt)
    assert evil not in sys.path


@pytest.mark.parametrize("fmt", FORMATS)
def test_additems_on_a_module_level_set_leaves_it_alone(reg: Registry, tmp_path: Path, fmt: str) -> None:
    """``ADDITEMS`` adds to any set on the stack (and calls ``.add`` of anything else)."""
    from sklearn.utils import discovery

    ignored = discovery._MODULE_TO_IGNORE
    before = set(ignored)
    target = global_("sklearn.utils.discovery", "_MODULE_TO_IGNORE")
    stream = program(target + pickle.MARK + text("linear_model") + pickle.ADDITEMS)
    try:
        refused(reg, tmp_path, stream, fmt)
        assert ignored == before
    finally:
        ignored.clear()
        ignored.update(before)


# --- joblib's container -------------------------------------------------------------------------


def test_a_payload_in_a_nested_object_array_stream_is_refused(reg: Registry, tmp_path: Path, marker: Path) -> None:
    """joblib pickles object arrays as a second stream after the wrapper; the restriction must reach it."""
    nested = program(call(sklearn_chain("np.f2py.subprocess.Popen"), touch(marker)), protocol=5)
    refused(reg, tmp_path, joblib_with_object_array(nested), "joblib")
    assert_nothing_ran(marker, spawned=True)


def test_a_nested_stream_of_a_nested_stream_is_refused(reg: Registry, tmp_path: Path, marker: Path) -> None:
    innermost = program(call(global_("posix", "system"), f"touch {marker}"), protocol=5)
    nested = joblib_with_object_array(innermost)
    refused(reg, tmp_path, joblib_with_object_array(nested), "joblib", also=MALFORMED)  # joblib never nests wrappers
    assert_nothing_ran(marker)


def test_joblibs_old_array_wrapper_reads_no_other_file(reg: Registry, tmp_path: Path) -> None:
    """joblib's pre-0.10 ``NDArrayWrapper`` names a file; ``joblib.load`` reads it by ``np.load(allow_pickle=True)``.

    An absolute name reads any file on the machine into the result (or
    unpickles it, unrestricted); a blob store's paths are predictable.
    """
    import numpy as np

    secret = tmp_path / "secret.npy"
    np.save(secret, np.array([4, 2]))
    wrapper = stack_global("joblib.numpy_pickle_compat", "NDArrayWrapper") + pickle.EMPTY_TUPLE + pickle.NEWOBJ
    state = data({"filename": str(secret), "allow_mmap": False})
    stream = program(wrapper + state + pickle.BUILD)
    refused(reg, tmp_path, stream, "joblib", also=MALFORMED)


@pytest.mark.parametrize("safe", [True, False])
def test_writing_into_a_loaded_array_does_not_change_the_stored_artifact(reg: Registry, safe: bool) -> None:
    """Whatever a loader maps or shares (zero-copy reads), the next load still gets the registered bytes."""
    import numpy as np

    reg.register("weights", {"w": np.arange(1000, dtype=np.float64)}, format="joblib")
    loaded = reg.load("weights", safe=safe)["w"]
    if loaded.flags.writeable:
        loaded[:] = -1.0
    assert np.array_equal(reg.load("weights", safe=safe)["w"], np.arange(1000, dtype=np.float64))
    assert reg.verify().ok


def test_a_compressed_joblib_file_is_not_handed_to_an_unrestricted_loader(
    reg: Registry, tmp_path: Path, marker: Path
) -> None:
    """PyTorch CVE-2025-32434: ``weights_only`` was skipped on a legacy path. Here: joblib's compressed container."""
    import io

    import joblib

    from tests.markers import Marker

    buffer = io.BytesIO()
    joblib.dump(Marker(marker), buffer, compress=3)
    refused(reg, tmp_path, buffer.getvalue(), "joblib", also=MALFORMED)
    assert_nothing_ran(marker)


# --- issue 11, item 3: the inventory is read from the bytes -------------------------------------------


def test_the_inventory_of_an_unexamined_file_lists_a_global_hidden_in_a_nested_stream(
    reg: Registry, tmp_path: Path
) -> None:
    """Issue 11: joblib's nested streams were invisible to the tracer; ``register_file`` recorded nothing."""
    nested = program(call(global_("posix", "system"), "true"), protocol=5)
    path = tmp_path / "hidden.joblib"
    path.write_bytes(joblib_with_object_array(nested))
    mv = reg.register_file("hidden", path, format="joblib", check=False)
    assert "posix.system" in reg.get(f"hidden:{mv.version}").imports
    assert "joblib.numpy_pickle.NumpyArrayWrapper" in mv.imports


@pytest.mark.parametrize("fmt", FORMATS)
def test_the_inventory_resolves_memoised_stack_global_names_as_cpython_does(
    reg: Registry, tmp_path: Path, fmt: str
) -> None:
    """The memo-confusion payload above: the inventory must name what CPython imports, not the decoys."""
    expr = memoize(text("posix"), 0) + pickle.POP + memoize(text("system"), 1) + pickle.POP
    expr += text("sklearn.linear_model") + pickle.MEMOIZE + pickle.POP + recall(0) + recall(1) + pickle.STACK_GLOBAL
    path = tmp_path / f"memo.{fmt}"
    path.write_bytes(program(call(expr, "true")))
    mv = reg.register_file("memo", path, format=fmt, check=False)
    assert "posix.system" in mv.imports
    assert not any(name.startswith("sklearn.linear_model") for name in mv.imports)


# --- the safe loader still loads what modelshelf writes ------------------------------------------------


@pytest.fixture(scope="module")
def fitted() -> dict[str, object]:
    from sklearn.datasets import load_iris
    from sklearn.linear_model import LogisticRegression
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    X, y = load_iris(return_X_y=True)
    return {
        "logistic": LogisticRegression(max_iter=300).fit(X, y),
        "pipeline": make_pipeline(StandardScaler(), LogisticRegression(max_iter=300)).fit(X, y),
    }


def _same_predictions(model: object, loaded: object) -> bool:
    import numpy as np
    from sklearn.datasets import load_iris

    X, _ = load_iris(return_X_y=True)
    return type(loaded) is type(model) and np.array_equal(model.predict(X), loaded.predict(X))  # type: ignore[attr-defined]


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["logistic", "pipeline"])
def test_registered_models_load_safely_with_the_same_predictions(
    reg: Registry, fitted: dict[str, object], fmt: str, kind: str
) -> None:
    model = fitted[kind]
    reg.register(kind, model, format=fmt)
    assert _same_predictions(model, reg.load(kind, safe=True))


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("kind", ["logistic", "pipeline"])
def test_files_written_by_pickle_or_joblib_load_safely_when_registered_unexamined(
    reg: Registry, tmp_path: Path, fitted: dict[str, object], fmt: str, kind: str
) -> None:
    """The over-strict failure: a plain ``joblib.dump``/``pickle.dump`` file must not need ``check=True`` to load."""
    import joblib

    model = fitted[kind]
    path = tmp_path / f"{kind}.{fmt}"
    if fmt == "joblib":
        joblib.dump(model, path)
    else:
        path.write_bytes(pickle.dumps(model, protocol=pickle.HIGHEST_PROTOCOL))
    mv = reg.register_file(kind, path, format=fmt, check=False)
    assert _same_predictions(model, reg.load(f"{kind}:{mv.version}", safe=True))


@pytest.mark.parametrize("protocol", [0, 2])
def test_old_protocol_pickles_with_python_2_names_load_safely(
    reg: Registry, tmp_path: Path, fitted: dict[str, object], protocol: int
) -> None:
    """Protocols 0-2 may write ``copy_reg`` and ``__builtin__`` (Python 2's names); CPython maps them back."""
    model = fitted["pipeline"]
    stream = pickle.dumps(model, protocol=protocol)
    if protocol == 0:
        assert b"copy_reg\n_reconstructor" in stream  # what makes this one old
    path = tmp_path / f"old-{protocol}.pkl"
    path.write_bytes(stream)
    mv = reg.register_file("old", path, format="pickle", check=False)
    assert _same_predictions(model, reg.load(f"old:{mv.version}", safe=True))


# --- trusted names are exact too -------------------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize(
    "name",
    [
        "Marker.__init__.__globals__",  # an attribute chain hanging off the trusted class
        "leave_mark",  # a neighbour of the trusted class in the same module
    ],
)
def test_trusting_a_class_admits_that_class_and_nothing_reachable_from_it(
    reg: Registry, tmp_path: Path, marker: Path, fmt: str, name: str
) -> None:
    path = tmp_path / f"neighbour.{fmt}"
    path.write_bytes(program(call(global_("tests.markers", name), str(marker))))
    mv = reg.register_file("neighbour", path, format=fmt, check=False)
    with pytest.raises(UnsafeArtifact):
        reg.load(f"neighbour:{mv.version}", safe=True, trusted=["tests.markers.Marker"])
    assert_nothing_ran(marker)


@pytest.mark.parametrize("fmt", FORMATS)
def test_a_trusted_name_that_is_a_reexport_is_not_honoured(reg: Registry, tmp_path: Path, fmt: str) -> None:
    """``tests.markers.Path`` is pathlib's class under another module's name: trusting the name is not enough."""
    import tests.markers

    assert tests.markers.Path.__module__ == "pathlib"
    path = tmp_path / f"reexport.{fmt}"
    path.write_bytes(program(call(global_("tests.markers", "Path"), str(tmp_path))))
    mv = reg.register_file("reexport", path, format=fmt, check=False)
    with pytest.raises(UnsafeArtifact):
        reg.load(f"reexport:{mv.version}", safe=True, trusted=["tests.markers.Path"])
