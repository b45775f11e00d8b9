"""Attacks on ``load(..., safe=True)``, written opcode by opcode: none may run, write or allocate.

Each test plays the attacker of issue 11 (items 1, 2, 3 and 8) or one of the
classes of tricks they stand for. A file created, an environment variable
set or a class attribute replaced would prove that code ran; every test
asserts it did not.
"""

from __future__ import annotations

import copyreg
import os
import pickle as P
import struct
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from registry import ArtifactTooLarge, Registry, SerializationError, UnsafeArtifact
from tests.hostile_pickles import call, glob, integer, long, raw_bytes, safe_load, scan, stream, text, tup

FORMATS = ["pickle", "joblib"]


def touch(mark: Path) -> bytes:
    return tup(P.EMPTY_LIST + text("touch") + P.APPEND + text(str(mark)) + P.APPEND)


# -- item 1: attribute chains and re-exports ---------------------------------------------------------


@pytest.mark.parametrize("fmt", FORMATS)
def test_popen_reached_through_an_attribute_chain_under_sklearn_never_runs(tmp_path: Path, fmt: str) -> None:
    mark = tmp_path / "mark"
    popen = glob("sklearn.base", "np.f2py.subprocess.Popen")
    data = stream(
        popen + touch(mark) + P.REDUCE + P.POP + glob("sklearn.linear_model", "Ridge") + P.EMPTY_TUPLE + P.NEWOBJ
    )
    with pytest.raises(UnsafeArtifact) as caught:
        safe_load(data, fmt)
    assert caught.value.global_name == "sklearn.base.np.f2py.subprocess.Popen"
    time.sleep(0.05)
    assert not mark.exists()


@pytest.mark.parametrize(
    "module, name",
    [
        ("sklearn.base", "inspect.types.FunctionType"),
        ("sklearn.base", "inspect.types.CodeType"),
        ("sklearn.utils._metadata_requests", "inspect.types.FunctionType"),
        ("sklearn.base", "np.memmap"),
        ("sklearn", "logging.FileHandler"),
    ],
)
def test_foreign_callables_reached_by_attribute_chains_are_refused(module: str, name: str) -> None:
    with pytest.raises(UnsafeArtifact) as caught:
        safe_load(stream(glob(module, name)))
    assert caught.value.global_name == f"{module}.{name}"


def test_memmap_through_sklearn_base_does_not_truncate_a_file(tmp_path: Path) -> None:
    victim = tmp_path / "victim"
    victim.write_bytes(b"precious data" * 100)
    memmap = glob("sklearn.base", "np.memmap")
    data = stream(call(memmap, text(str(victim)), text("uint8"), text("w+"), integer(0), tup(integer(1))))
    with pytest.raises(UnsafeArtifact):
        safe_load(data)
    assert victim.read_bytes() == b"precious data" * 100


def test_file_handler_through_sklearn_never_opens_a_file(tmp_path: Path) -> None:
    log = tmp_path / "created.log"
    with pytest.raises(UnsafeArtifact):
        safe_load(stream(call(glob("sklearn", "logging.FileHandler"), text(str(log)))))
    assert not log.exists()


@pytest.mark.parametrize(
    "module, name",
    [
        ("sklearn.feature_selection._base", "attrgetter"),
        ("sklearn.feature_extraction.text", "itemgetter"),
        ("sklearn.utils.extmath", "partial"),
        ("sklearn.callback._transport", "Thread"),
        ("sklearn.utils._repr_html.estimator", "Path"),
    ],
)
def test_foreign_classes_re_exported_under_sklearn_names_are_refused(module: str, name: str) -> None:
    with pytest.raises(UnsafeArtifact, match="re-export|not on the safe-load policy"):
        safe_load(stream(glob(module, name)))


def test_attrgetter_to_globals_to_exec_runs_nothing(tmp_path: Path) -> None:
    """No dotted name at all: ``attrgetter('get_params.__globals__')`` then ``__builtins__['exec']``."""
    mark = tmp_path / "mark"
    attrgetter = glob("sklearn.feature_selection._base", "attrgetter")
    itemgetter = glob("sklearn.feature_extraction.text", "itemgetter")
    namespace = call(call(attrgetter, text("get_params.__globals__")), glob("sklearn.base", "BaseEstimator"))
    builtins_dict = call(call(itemgetter, text("__builtins__")), namespace)
    run = call(call(itemgetter, text("exec")), builtins_dict)
    data = stream(call(run, text(f"open({str(mark)!r}, 'w').write('ran')")))
    with pytest.raises(UnsafeArtifact):
        safe_load(data)
    assert not mark.exists()


def _foreign_objects_under_sklearn_names() -> list[tuple[str, str]]:
    import importlib
    import pkgutil
    import sys
    import warnings

    import sklearn

    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        for info in pkgutil.walk_packages(sklearn.__path__, "sklearn."):
            if ".tests" in info.name or "_testing" in info.name or "externals" in info.name:
                continue
            try:
                importlib.import_module(info.name)
            except Exception:
                continue
    found = []
    for module_name, module in list(sys.modules.items()):
        if not module_name.startswith("sklearn") or module is None:
            continue
        for name, obj in vars(module).items():
            if not (isinstance(obj, type) or callable(obj)):
                continue
            home = getattr(obj, "__module__", None)
            if isinstance(home, str) and not home.startswith("sklearn") and home != module_name:
                found.append((module_name, name))
    return found


def test_every_foreign_object_reachable_under_an_sklearn_name_is_refused() -> None:
    foreign = _foreign_objects_under_sklearn_names()
    assert len(foreign) > 500  # the scan really walked scikit-learn
    admitted = []
    for module, name in foreign:
        try:
            safe_load(stream(glob(module, name)))
        except UnsafeArtifact:
            continue
        admitted.append(f"{module}.{name}")
    assert admitted == []


# -- every opcode family that names a global --------------------------------------------------------


def test_stack_global_with_memoised_names_is_refused(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    names = text("sklearn.base") + P.BINPUT + b"\x00" + text("np.f2py.subprocess.Popen") + P.BINPUT + b"\x01"
    data = stream(
        names + P.POP + P.POP + P.BINGET + b"\x00" + P.BINGET + b"\x01" + P.STACK_GLOBAL + touch(mark) + P.REDUCE,
        protocol=4,
    )
    with pytest.raises(UnsafeArtifact, match="np.f2py.subprocess.Popen"):
        safe_load(data)
    assert not mark.exists()


def test_inst_and_obj_are_refused(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    inst = P.MARK + touch(mark)[1:-1] + P.INST + b"sklearn.base\nnp.f2py.subprocess.Popen\n"
    with pytest.raises(UnsafeArtifact):
        safe_load(stream(inst))
    obj = P.MARK + glob("sklearn.base", "np.f2py.subprocess.Popen") + touch(mark)[1:-1] + P.OBJ
    with pytest.raises(UnsafeArtifact):
        safe_load(stream(obj))
    time.sleep(0.05)
    assert not mark.exists()


def test_extension_codes_go_through_the_same_policy(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    copyreg.add_extension("sklearn.base", "np.f2py.subprocess.call", 0xF0)
    try:
        data = stream(P.EXT1 + b"\xf0" + touch(mark) + P.REDUCE)
        assert scan(data) == ("sklearn.base.np.f2py.subprocess.call",)
        with pytest.raises(UnsafeArtifact, match="np.f2py"):
            safe_load(data)
    finally:
        copyreg.remove_extension("sklearn.base", "np.f2py.subprocess.call", 0xF0)
    assert not mark.exists()


def test_newobj_and_newobj_ex_of_a_re_exported_class_are_refused(tmp_path: Path) -> None:
    path = glob("sklearn.utils._repr_html.estimator", "Path")
    with pytest.raises(UnsafeArtifact):
        safe_load(stream(path + tup(text(str(tmp_path))) + P.NEWOBJ))
    with pytest.raises(UnsafeArtifact):
        safe_load(stream(path + tup(text(str(tmp_path))) + P.EMPTY_DICT + P.NEWOBJ_EX, protocol=4))


def test_persistent_ids_are_refused_by_name() -> None:
    for opcode in (P.PERSID + b"anything\n", text("x") + P.BINPERSID):
        with pytest.raises(SerializationError, match="PERSID"):
            safe_load(stream(opcode))


def test_an_opcode_straddling_a_frame_boundary_never_runs(tmp_path: Path) -> None:
    """A scanner that honours frames and CPython's reader that may not must never disagree: refuse."""
    mark = tmp_path / "mark"
    inner = text("x" * 20)  # 25 bytes, but the frame claims 10
    data = P.PROTO + b"\x04" + P.FRAME + struct.pack("<Q", 10) + inner + P.STOP
    with pytest.raises(SerializationError, match="frame"):
        safe_load(data)
    with pytest.raises(SerializationError, match="frame"):
        scan(data)
    nested = P.PROTO + b"\x04" + P.FRAME + struct.pack("<Q", 20) + P.FRAME + struct.pack("<Q", 2) + P.NONE + P.STOP
    with pytest.raises(SerializationError, match="frame"):
        safe_load(nested)
    assert not mark.exists()


# -- item 8: state onto instances only ---------------------------------------------------------------


def test_build_on_a_sparse_class_cannot_patch_it_for_the_process() -> None:
    from scipy.sparse import csr_matrix

    original = csr_matrix.toarray
    state = P.EMPTY_DICT + text("toarray") + glob("builtins", "list") + P.SETITEM
    data = stream(glob("scipy.sparse._csr", "csr_matrix") + state + P.BUILD)
    try:
        with pytest.raises(UnsafeArtifact, match="state goes only onto objects this load created"):
            safe_load(data)
        assert csr_matrix.toarray is original
    finally:
        csr_matrix.toarray = original


@pytest.mark.parametrize(
    "target, store",
    [
        (glob("collections", "OrderedDict"), text("k") + text("v") + P.SETITEM),
        (glob("collections", "OrderedDict"), P.MARK + text("k") + text("v") + P.SETITEMS),
        (glob("collections", "deque"), text("v") + P.APPEND),
        (glob("collections", "deque"), P.MARK + text("v") + P.APPENDS),
        (glob("builtins", "set"), P.MARK + text("v") + P.ADDITEMS),
        (glob("numpy", "ndarray"), P.EMPTY_DICT + P.BUILD),
        (glob("sklearn.linear_model._ridge", "Ridge"), P.EMPTY_DICT + text("fit") + P.NONE + P.SETITEM + P.BUILD),
    ],
)
def test_item_and_state_opcodes_never_touch_a_class(target: bytes, store: bytes) -> None:
    from sklearn.linear_model import Ridge

    fit = Ridge.fit
    with pytest.raises(UnsafeArtifact, match="class|only"):
        safe_load(stream(target + store))
    assert Ridge.fit is fit and "fit" not in vars(Ridge).get("__dict__", {})


# -- item 2: output bounded by input -------------------------------------------------------------------


def _peak(action) -> int:
    tracemalloc.start()
    try:
        action()
    finally:
        peak = tracemalloc.get_traced_memory()[1]
        tracemalloc.stop()
    return peak


@pytest.mark.parametrize("fmt", FORMATS)
def test_list_of_a_huge_range_is_refused_quickly_with_little_memory(fmt: str) -> None:
    data = stream(call(glob("builtins", "list"), call(glob("builtins", "range"), long(10**8))))
    assert len(data) < 64

    def attempt() -> None:
        with pytest.raises(UnsafeArtifact, match="builtins.list"):
            safe_load(data, fmt)

    started = time.perf_counter()
    assert _peak(attempt) < 2**20
    assert time.perf_counter() - started < 1


@pytest.mark.parametrize(
    "payload",
    [
        call(glob("builtins", "bytes"), long(10**9)),
        call(glob("builtins", "bytearray"), long(10**9)),
        call(glob("builtins", "set"), call(glob("builtins", "range"), long(10**8))),
        call(glob("builtins", "tuple"), call(glob("builtins", "range"), long(10**8))),
        call(glob("collections", "deque"), call(glob("builtins", "range"), long(10**8))),
    ],
    ids=["bytes", "bytearray", "set", "tuple", "deque"],
)
def test_constructors_that_would_amplify_are_refused(payload: bytes) -> None:
    def attempt() -> None:
        with pytest.raises(UnsafeArtifact):
            safe_load(stream(payload))

    assert _peak(attempt) < 2**20


def _ndarray(shape: tuple[int, ...], data: bytes, dtype: str = "f8") -> bytes:
    empty = call(
        glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), tup(integer(0)), raw_bytes(b"b")
    )
    descr = call(glob("numpy", "dtype"), text(dtype), P.NEWFALSE, P.NEWTRUE)
    state = tup(integer(1), tup(*(long(n) for n in shape)), descr, P.NEWFALSE, raw_bytes(data))
    return empty + state + P.BUILD


def test_an_array_whose_shape_exceeds_its_data_is_refused() -> None:
    data = stream(_ndarray((10**6, 10**6), b"\x00" * 8))
    assert _peak(lambda: pytest.raises(UnsafeArtifact, safe_load, data)) < 2**20
    assert np.array_equal(safe_load(stream(_ndarray((2,), b"\x00" * 16))), np.zeros(2))


def test_a_numpy_scalar_needs_exactly_its_bytes() -> None:
    descr = call(glob("numpy", "dtype"), text("f8"), P.NEWFALSE, P.NEWTRUE)
    with pytest.raises(UnsafeArtifact, match="8 bytes"):
        safe_load(stream(call(glob("numpy.core.multiarray", "scalar"), descr, raw_bytes(b"\x00"))))


def test_a_tree_with_absurd_outputs_is_refused() -> None:
    n_classes = _ndarray((1,), struct.pack("<q", 10**9), "i8")
    data = stream(call(glob("sklearn.tree._tree", "Tree"), integer(4), n_classes, integer(1)))
    with pytest.raises(UnsafeArtifact, match="Tree"):
        safe_load(data)


def test_copying_one_large_value_many_times_is_refused_by_the_budget() -> None:
    """Memo and DUP only add references; a constructor that copies is charged each time."""
    big = raw_bytes(b"x" * 2**20) + P.BINPUT + b"\x00"
    copy_once = glob("builtins", "bytes") + P.MARK + P.BINGET + b"\x00" + P.TUPLE + P.REDUCE + P.APPEND
    copies = P.EMPTY_LIST + copy_once * 200
    data = stream(big + P.POP + copies)

    def attempt() -> None:
        with pytest.raises(ArtifactTooLarge) as caught:
            safe_load(data)
        assert caught.value.constructor == "builtins.bytes" and caught.value.requested > caught.value.limit

    assert _peak(attempt) < 96 * 2**20


@pytest.mark.slow
def test_many_empty_containers_exhaust_the_budget_not_the_memory() -> None:
    data = stream(P.EMPTY_LIST + (P.EMPTY_SET + P.APPEND) * 400_000)
    limit = 16 * len(data) + 64 * 2**20

    def attempt() -> None:
        with pytest.raises(ArtifactTooLarge):
            safe_load(data)

    assert _peak(attempt) < limit


@pytest.mark.parametrize("shape", [(10**9,), (2**40, 2**40)])
def test_a_joblib_wrapper_larger_than_the_bytes_that_follow_is_refused(shape: tuple[int, ...]) -> None:
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(np.arange(4.0), buffer)
    good = buffer.getvalue()
    forged = _edit_first_frame(
        good, lambda body: body.replace(P.BININT1 + b"\x04" + P.TUPLE1, tup(*map(long, shape)), 1)
    )

    def attempt() -> None:
        with pytest.raises(SerializationError, match="needs"):
            safe_load(forged, "joblib")

    assert _peak(attempt) < 2**20


def _edit_first_frame(data: bytes, edit) -> bytes:
    """joblib's first frame edited, its length corrected (the array's bytes follow the frame)."""
    assert data[2:3] == P.FRAME
    size = struct.unpack("<Q", data[3:11])[0]
    body = edit(data[11 : 11 + size])
    return data[:2] + P.FRAME + struct.pack("<Q", len(body)) + body + data[11 + size :]


def test_memory_error_is_not_reported_as_a_missing_package() -> None:
    from registry import formats

    class Exhausted:
        name = "pickle"

        def load(self, file, *, safe, trusted):
            raise MemoryError

    with pytest.raises(SerializationError) as caught:
        formats.load(Exhausted(), None, "m:1", safe=True)  # type: ignore[arg-type]
    assert "memory" in str(caught.value) and "install" not in str(caught.value)


# -- item 3: inventories read from the bytes ----------------------------------------------------------


class _Hook:
    def __init__(self, func, *args) -> None:
        self.func, self.args = func, args

    def __reduce__(self):
        return (self.func, self.args)


def test_an_object_array_in_joblib_lists_its_hidden_imports(reg: Registry, tmp_path: Path) -> None:
    hidden = np.array([1, _Hook(os.system, f"touch {tmp_path / 'mark'}")], dtype=object)
    mv = reg.register("evil", {"classes_": hidden}, format="joblib")
    assert "posix.system" in mv.imports or "nt.system" in mv.imports
    assert not (tmp_path / "mark").exists()


def test_register_file_records_the_imports_of_the_files_own_bytes(reg: Registry, tmp_path: Path) -> None:
    """The file runs ``posix.system`` and then yields a clean estimator: the inventory must say so."""
    from sklearn.linear_model import Ridge

    mark = tmp_path / "mark"
    clean = P.dumps(Ridge().fit([[0.0], [1.0]], [0.0, 1.0]), protocol=2)
    system = call(glob("posix", "system"), text(f"touch {mark}"))
    artifact = tmp_path / "model.pkl"
    artifact.write_bytes(P.PROTO + b"\x02" + system + P.POP + clean[2:])
    mv = reg.register_file("sneaky", artifact, format="pickle")
    assert "posix.system" in mv.imports and "sklearn.linear_model._ridge.Ridge" in mv.imports
    mark.unlink(missing_ok=True)  # the unsafe check ran it, as documented; a safe load must not
    with pytest.raises(UnsafeArtifact, match="posix.system"):
        reg.load("sneaky", safe=True)
    assert not mark.exists()


def test_a_global_missing_from_the_inventory_is_refused_even_if_the_policy_allows_it() -> None:
    data = stream(call(glob("collections", "OrderedDict")))
    assert scan(data) == ("collections.OrderedDict",)
    assert safe_load(data, inventory=scan(data)) == {}
    with pytest.raises(UnsafeArtifact, match="import inventory does not list"):
        safe_load(data, inventory=())
    with pytest.raises(UnsafeArtifact, match="import inventory does not list"):
        safe_load(data, inventory=(), trusted=["collections.OrderedDict"])


def test_the_scan_covers_every_opcode_that_names_a_global() -> None:
    names = text("numpy") + P.MEMOIZE + text("ndarray") + P.MEMOIZE + P.STACK_GLOBAL + P.POP
    memo = P.BINGET + b"\x00" + text("dtype") + P.STACK_GLOBAL + P.POP
    inst = P.MARK + P.INST + b"collections\nOrderedDict\n" + P.POP
    obj = P.MARK + glob("collections", "Counter") + P.OBJ + P.POP
    data = stream(names + memo + inst + obj + P.NONE, protocol=4)
    assert scan(data) == ("collections.Counter", "collections.OrderedDict", "numpy.dtype", "numpy.ndarray")


def test_the_scan_executes_nothing(tmp_path: Path) -> None:
    mark = tmp_path / "mark"
    data = stream(call(glob("posix", "system"), text(f"touch {mark}")))
    assert scan(data) == ("posix.system",)
    assert not mark.exists()


def test_malformed_bytes_are_a_serialization_error_naming_the_problem() -> None:
    for data, problem in [
        (b"\x80\x04", "truncated"),
        (b"\x80\x02\xff.", "unknown opcode"),
        (b"\x80\x02h\x05.", "memo"),
    ]:
        with pytest.raises(SerializationError, match=problem):
            scan(data)
        with pytest.raises(SerializationError, match=problem):
            safe_load(data)


@pytest.mark.slow
def test_deeply_nested_tuples_are_refused_before_hashing_them_can_crash_the_process() -> None:
    """Hashing a 200 000-deep tuple (a dict key, a frozenset) overflows CPython 3.11's C stack: a segfault."""
    import subprocess
    import sys

    script = (
        "import io, pickle as P\n"
        "from registry import formats, SerializationError\n"
        "deep = P.NONE + P.TUPLE1 * 200_000\n"
        "for body in (P.EMPTY_DICT + deep + P.NONE + P.SETITEM, P.MARK + deep + P.FROZENSET):\n"
        "    try:\n"
        "        formats.load(formats.get_format('pickle'), io.BytesIO(P.PROTO + b'\\x04' + body + P.STOP), 'x',"
        " safe=True)\n"
        "    except SerializationError as exc:\n"
        "        assert 'nested' in str(exc), exc\n"
        "    else:\n"
        "        raise SystemExit('loaded')\n"
    )
    done = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=60, check=False)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])


def test_build_on_an_instance_whose_class_takes_no_state_is_refused() -> None:
    """A numpy scalar or a plain container is data: the policy gives BUILD nothing to set on it."""
    descr = call(glob("numpy", "dtype"), text("f8"), P.NEWFALSE, P.NEWTRUE)
    number = call(glob("numpy.core.multiarray", "scalar"), descr, raw_bytes(b"\x00" * 8))
    for target in (number, call(glob("collections", "OrderedDict"))):
        with pytest.raises(UnsafeArtifact, match="no state to set"):
            safe_load(stream(target + P.EMPTY_DICT + text("x") + P.NONE + P.SETITEM + P.BUILD))


def test_a_decompression_bomb_stops_at_the_budget() -> None:
    import io

    import joblib

    buffer = io.BytesIO()
    joblib.dump(np.zeros(40_000_000), buffer, compress=("zlib", 9))  # 320 MB of zeros in ~300 KB
    data = buffer.getvalue()
    limit = 16 * len(data) + 64 * 2**20

    def attempt() -> None:
        with pytest.raises(ArtifactTooLarge, match="inflates"):
            safe_load(data, "joblib")

    assert _peak(attempt) < 2 * limit


# -- state that compiled code would trust -------------------------------------------------------------


def test_a_sparse_matrix_with_indices_outside_its_shape_is_refused() -> None:
    """scipy's C++ routines index with these without bounds checks: an out-of-range index reads and writes wild."""
    from scipy.sparse import csr_matrix

    forged = csr_matrix(np.eye(3))
    forged.indices[0] = 10**6
    for fmt in FORMATS:
        with pytest.raises(UnsafeArtifact, match="format check"):
            safe_load(P.dumps(forged, protocol=5), fmt)


def test_a_decision_tree_whose_links_loop_or_leave_the_node_array_is_refused(iris) -> None:
    from sklearn.tree import DecisionTreeClassifier

    X, y = iris
    for field, value in (("left_child", 0), ("right_child", 10**6), ("feature", 99)):
        model = DecisionTreeClassifier(random_state=0).fit(X, y)
        state = model.tree_.__getstate__()
        nodes = state["nodes"].copy()
        nodes[field][0] = value
        model.tree_.__setstate__({**state, "nodes": nodes})
        with pytest.raises(UnsafeArtifact, match="Tree state"):
            safe_load(P.dumps(model, protocol=5))


def test_a_hist_gradient_boosting_predictor_with_a_looping_link_is_refused(iris) -> None:
    from sklearn.ensemble import HistGradientBoostingClassifier

    X, y = iris
    model = HistGradientBoostingClassifier(max_iter=2).fit(X, y)
    model._predictors[0][0].nodes["left"][0] = 0
    with pytest.raises(UnsafeArtifact, match="TreePredictor"):
        safe_load(P.dumps(model, protocol=5))


def test_a_neighbours_tree_whose_index_leaves_its_data_is_refused(iris) -> None:
    from sklearn.neighbors import KNeighborsClassifier

    X, y = iris
    for algorithm in ("kd_tree", "ball_tree"):
        model = KNeighborsClassifier(algorithm=algorithm).fit(X, y)
        state = list(model._tree.__getstate__())
        state[1] = state[1].copy()
        state[1][0] = 10**6
        model._tree.__setstate__(tuple(state))
        with pytest.raises(UnsafeArtifact, match="do not fit its data"):
            safe_load(P.dumps(model, protocol=5))


def _structured_dtype(fields: dict, itemsize: int, flags: int) -> bytes:
    names = tup(*(text(name) for name in fields))
    entries = P.EMPTY_DICT + b"".join(
        text(name) + tup(call(glob("numpy", "dtype"), text(code), P.NEWFALSE, P.NEWTRUE), integer(offset)) + P.SETITEM
        for name, (code, offset) in fields.items()
    )
    state = tup(integer(3), text("|"), P.NONE, names, entries, integer(itemsize), integer(1), integer(flags))
    return call(glob("numpy", "dtype"), text("V8"), P.NEWFALSE, P.NEWTRUE) + state + P.BUILD


@pytest.mark.parametrize(
    "fields, itemsize, flags",
    [
        ({"a": ("O8", 0)}, 8, 0),  # object field, flags say "no objects": raw bytes would be pointers
        ({"a": ("O8", 4)}, 8, 63),  # object field reaching past the item
        ({"a": ("O8", 0), "b": ("i4", 4)}, 8, 63),  # overlapping a raw field
    ],
    ids=["unflagged", "out-of-bounds", "overlapping"],
)
def test_a_forged_dtype_cannot_turn_bytes_into_pointers_or_write_outside_an_item(fields, itemsize, flags) -> None:
    with pytest.raises(UnsafeArtifact, match="numpy.dtype state"):
        safe_load(stream(_structured_dtype(fields, itemsize, flags)))


def test_a_neighbours_tree_with_a_metric_of_the_wrong_width_is_refused() -> None:
    from sklearn.metrics import DistanceMetric
    from sklearn.neighbors import BallTree

    rng = np.random.default_rng(0)
    data = rng.random((30, 3))
    tree = BallTree(data, metric="mahalanobis", V=np.cov(data.T))
    state = list(tree.__getstate__())
    state[11] = DistanceMetric.get_metric("mahalanobis", V=np.eye(1))  # 1x1: its loops would read 3x3
    tree.__setstate__(tuple(state))
    with pytest.raises(UnsafeArtifact, match="columns"):
        safe_load(P.dumps(tree, protocol=5))
    assert safe_load(P.dumps(BallTree(data, metric="mahalanobis", V=np.cov(data.T)), protocol=5)).data.shape == (30, 3)
