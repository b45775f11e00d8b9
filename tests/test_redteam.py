"""Red-team payloads against ``Registry.load(ref, safe=True)``, built opcode by opcode.

Each test registers its payload with ``register_file(..., check=False)`` in a
temporary registry and asserts one of the safe loader's claims. Payloads that
may crash the interpreter or hang it run in a subprocess with a timeout.
"""

from __future__ import annotations

import pickle as P
import resource
import struct
import subprocess
import sys
import textwrap
import time
import tracemalloc
from pathlib import Path

import numpy as np
import pytest

from registry import ArtifactTooLarge, Registry, SerializationError, UnsafeArtifact
from tests.hostile_pickles import call, glob, integer, long, raw_bytes, stream, text, tup

REPO = Path(__file__).resolve().parents[1]


def register(reg: Registry, tmp_path: Path, data: bytes, fmt: str = "pickle", name: str = "rt") -> str:
    path = tmp_path / f"{name}.{fmt}"
    path.write_bytes(data)
    mv = reg.register_file(name, path, format=fmt, check=False)
    return mv.ref


def in_subprocess(
    home: Path, data: bytes, fmt: str, after: str = "", timeout: float = 60
) -> subprocess.CompletedProcess:
    """Register ``data`` in ``home`` and load it safely in a fresh interpreter; run ``after`` on the result."""
    blob = home.parent / f"payload.{fmt}"
    blob.write_bytes(data)
    script = textwrap.dedent(
        f"""
        import faulthandler, sys
        faulthandler.enable()
        sys.path.insert(0, {str(REPO)!r})
        from registry import Registry, RegistryError
        with Registry({str(home)!r}) as reg:
            try:  # the import scan at registration builds dtypes for real, so it may already refuse
                mv = reg.register_file("rt", {str(blob)!r}, format={fmt!r}, check=False)
                obj = reg.load(mv.ref, safe=True)
            except RegistryError as exc:
                print("REFUSED", type(exc).__name__, str(exc)[:200])
                raise SystemExit(0)
            print("LOADED", type(obj).__name__, flush=True)
        """
    ) + textwrap.dedent(after)
    return subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=timeout, check=False)


def _dtype(code: str) -> bytes:
    return call(glob("numpy", "dtype"), text(code), P.NEWFALSE, P.NEWTRUE)


# -- 1. a 60-byte artifact segfaults the safe load itself ------------------------------------------------


@pytest.mark.parametrize("code", ["M8", "m8"])
def test_datetime_dtype_state_without_metadata_does_not_crash_the_load(home: Path, code: str) -> None:
    """numpy's dtype __setstate__ dereferences a datetime dtype's missing metadata: SIGSEGV inside the load."""
    state = tup(integer(3), text("<"), P.NONE, P.NONE, P.NONE, integer(8), integer(1), integer(0))
    data = stream(_dtype(code) + state + P.BUILD)
    done = in_subprocess(home, data, "pickle")
    assert done.returncode == 0, (done.returncode, done.stdout[-300:], done.stderr[-800:])


# -- 2. state compiled code trusts, not validated: memory corruption after a "safe" load --------------------


def test_lil_matrix_with_a_column_outside_its_shape_is_refused(home: Path) -> None:
    """lil (and dok) get no format check: tocsr() keeps the index, csr_todense writes 8 GB past the buffer."""
    from scipy.sparse import lil_matrix

    forged = lil_matrix((2, 2))
    forged[0, 0] = 1.0
    forged.rows[0] = [10**9]
    done = in_subprocess(home, P.dumps(forged, protocol=5), "pickle", after="print(obj.tocsr().toarray())")
    assert done.returncode == 0 and "REFUSED" in done.stdout, (done.returncode, done.stdout[-300:], done.stderr[-500:])


class _ForgedDok:
    """Pickles as a dok_matrix (as scipy writes one) whose keys lie outside its 2 x 2 shape."""

    def __reduce__(self) -> tuple:
        import copyreg

        from scipy.sparse import dok_matrix

        keys = {(0, 0): np.float64(1.0), (0, 10**9): np.float64(5.0)}
        state = {"_shape": (2, 2), "maxprint": 50, "_dict": dict(keys), "dtype": np.dtype("float64")}
        return copyreg._reconstructor, (dok_matrix, dict, keys), state


def test_a_dok_matrix_with_a_key_outside_its_shape_is_refused(reg: Registry, tmp_path: Path) -> None:
    ref = register(reg, tmp_path, P.dumps(_ForgedDok(), protocol=5))
    with pytest.raises(UnsafeArtifact, match="outside the shape"):
        got = reg.load(ref, safe=True)
        pytest.fail(f"loaded a dok_matrix with keys {sorted(got.keys())}")


@pytest.mark.slow
def test_a_tree_whose_max_depth_is_understated_is_refused(home: Path) -> None:
    """Tree.decision_path sizes its index buffer n_samples*(1+max_depth) and writes one entry per level, unchecked."""
    from sklearn.datasets import load_iris
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    model = DecisionTreeClassifier(random_state=0).fit(X, y)
    model.tree_.__setstate__({**model.tree_.__getstate__(), "max_depth": 0})
    after = """
        import numpy as np
        from sklearn.datasets import load_iris
        X = np.repeat(load_iris(return_X_y=True)[0], 200, axis=0)
        for _ in range(5):
            obj.decision_path(X)
        print("survived")
    """
    done = in_subprocess(home, P.dumps(model, protocol=5), "pickle", after=after)
    assert done.returncode == 0 and "REFUSED" in done.stdout, (done.returncode, done.stdout[-300:], done.stderr[-500:])


@pytest.mark.slow
def test_a_hist_gradient_boosting_split_on_a_feature_outside_the_data_is_refused(home: Path) -> None:
    """predictor_state checks links and bitsets but not feature_idx: predict reads X[row, 2**31-1]."""
    from sklearn.ensemble import HistGradientBoostingRegressor

    X = np.random.default_rng(0).random((200, 3))
    model = HistGradientBoostingRegressor(max_iter=2).fit(X, X[:, 0])
    model._predictors[0][0].nodes["feature_idx"][0] = 2**31 - 1
    after = """
        import numpy as np
        print(obj.predict(np.random.default_rng(0).random((5, 3))))
    """
    done = in_subprocess(home, P.dumps(model, protocol=5), "pickle", after=after)
    assert done.returncode == 0 and "REFUSED" in done.stdout, (done.returncode, done.stdout[-300:], done.stderr[-500:])


def test_a_unicode_dtype_whose_itemsize_is_not_a_multiple_of_four_is_refused(reg: Registry, tmp_path: Path) -> None:
    """dtype_state accepts a 'U' dtype of elsize 3 (numpy shows '<U0'): arrays of half-characters."""
    state = tup(integer(3), text("<"), P.NONE, P.NONE, P.NONE, integer(3), integer(1), integer(0))
    descr = _dtype("U1") + state + P.BUILD
    array = call(glob("numpy.core.numeric", "_frombuffer"), raw_bytes(b"abc" * 4), descr, tup(long(4)), text("C"))
    with pytest.raises((UnsafeArtifact, SerializationError)):  # the scan at registration may already refuse
        ref = register(reg, tmp_path, stream(array, protocol=5))
        got = reg.load(ref, safe=True)
        pytest.fail(f"loaded an array of dtype {got.dtype!r} with itemsize {got.itemsize}")


# -- 3. the scan and the load parse one joblib container two ways -----------------------------------------


def _diverging_joblib(mark: Path, big: int = 4096) -> bytes:
    """A NumpyArrayWrapper whose 'shape' key is set twice: once as 'shape', once as builtins.str('shape').

    The scanner turns builtins.str(...) into an inert placeholder, so it keeps shape (1,) and reads one byte
    of array data; the loader (and joblib.load) let the second key win, read ``big`` bytes, and then parse a
    tail the scanner never saw.
    """
    wrapper = glob("joblib.numpy_pickle", "NumpyArrayWrapper") + P.EMPTY_TUPLE + P.NEWOBJ
    state = (
        P.EMPTY_DICT
        + P.MARK
        + text("subclass") + glob("numpy", "ndarray")
        + text("shape") + tup(long(1))
        + text("order") + text("C")
        + text("dtype") + _dtype("u1")
        + text("allow_mmap") + P.NEWFALSE
        + call(glob("builtins", "str"), text("shape")) + tup(long(big))
        + P.SETITEMS
    )  # fmt: skip
    scanner_tail = P.STOP  # what the scanner parses right after its single data byte
    region = (b"\x00" + scanner_tail).ljust(big, b"\x00")
    loader_tail = P.POP + call(glob("posix", "system"), text(f"touch {mark}")) + P.STOP
    return P.PROTO + b"\x02" + wrapper + state + P.BUILD + region + loader_tail


def test_the_inventory_lists_the_globals_of_a_tail_the_scanner_parsed_differently(
    reg: Registry, tmp_path: Path
) -> None:
    mark = tmp_path / "mark"
    try:  # refusing the file at registration (its container cannot be walked from literals alone) also holds
        ref = register(reg, tmp_path, _diverging_joblib(mark), "joblib")
    except (UnsafeArtifact, SerializationError):
        assert not reg.versions_importing(["joblib.numpy_pickle.NumpyArrayWrapper"])  # nothing was stored
        return
    mv = reg.get(ref)
    assert mv.imports is not None
    # The claim: the inventory lists every global the bytes will import (audit --deny relies on it).
    hits = [v.ref for v in reg.versions_importing(["posix.system"])]
    assert "posix.system" in mv.imports and ref in hits, (mv.imports, hits)


def test_the_diverging_tail_is_what_joblib_itself_runs(reg: Registry, tmp_path: Path) -> None:
    """Evidence for the test above: the tail the scanner would skip is what CPython/joblib execute."""
    import joblib

    mark = tmp_path / "mark"
    path = tmp_path / "diverging.joblib"
    path.write_bytes(_diverging_joblib(mark))
    joblib.load(path)
    assert mark.exists()  # the payload is real: joblib ran posix.system from the tail
    mark.unlink()
    with pytest.raises(UnsafeArtifact):  # the registry's scan refuses a wrapper state it cannot read from literals
        reg.register_file("rt", path, format="joblib", check=False)
    assert not mark.exists()


# -- 4. CPU exhaustion: tiny artifacts that never finish ---------------------------------------------------


def _dag(levels: int, combine: bytes) -> bytes:
    """x0 = None; x[i+1] = combine(x[i], x[i]): a DAG of 2**levels leaves in ~8 bytes per level (memo)."""
    body = P.NONE + P.LONG_BINPUT + struct.pack("<I", 0) + P.POP
    for i in range(levels):
        get = P.LONG_BINGET + struct.pack("<I", i)
        body += P.MARK + get + get + combine + P.LONG_BINPUT + struct.pack("<I", i + 1) + P.POP
    return body + P.LONG_BINGET + struct.pack("<I", levels)


def _bounded_time(home: Path, data: bytes, seconds: float = 10) -> None:
    """Register and safe-load ``data`` in a child process; its CPU time (not wall time) must stay under ``seconds``.

    The attacks here cost hours or forever when undefended, so the bound is
    loose; CPU time of the child rather than wall time keeps a loaded CI
    machine (other processes on the same cores) from failing a defended load.
    The wall-clock timeout is only the guard against a hang.
    """
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    try:
        done = in_subprocess(home, data, "pickle", timeout=seconds * 12)
    except subprocess.TimeoutExpired:
        pytest.fail(f"a {len(data)}-byte artifact kept the safe load busy for more than {seconds * 12:.0f} s")
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
    assert cpu < seconds, f"a {len(data)}-byte artifact took {cpu:.1f} s of CPU to load or refuse"


def test_hashing_a_shared_tuple_dag_as_a_dict_key_is_bounded(home: Path) -> None:
    """Depth 64 is well inside MAX_NESTING=200, but hash() of a DAG visits all 2**64 paths (tuples cache no hash)."""
    data = stream(P.EMPTY_DICT + _dag(64, P.TUPLE) + P.NONE + P.SETITEM)
    assert len(data) < 2048
    _bounded_time(home, data)


def test_a_frozenset_of_a_shared_tuple_dag_is_bounded(home: Path) -> None:
    data = stream(P.MARK + _dag(64, P.TUPLE) + P.FROZENSET)
    _bounded_time(home, data)


def test_repr_of_a_shared_list_dag_in_a_refusal_message_is_bounded(home: Path) -> None:
    """checks._ints formats {values!r:.80}: the repr of a 2**40-leaf list DAG is built in full before truncation."""
    empty = call(
        glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), tup(integer(0)), raw_bytes(b"b")
    )
    state = tup(integer(1), _dag(40, P.LIST), _dtype("f8"), P.NEWFALSE, raw_bytes(b""))
    data = stream(empty + state + P.BUILD)
    _bounded_time(home, data)


def test_a_dict_of_colliding_integer_keys_is_bounded(home: Path) -> None:
    """hash(k + n*(2**61-1)) == hash(k): 150 000 keys (2 MB) make dict insertion quadratic (~2 min)."""
    modulus = 2**61 - 1
    keys = b"".join(long(7 + n * modulus) + P.NONE for n in range(150_000))
    data = stream(P.EMPTY_DICT + P.MARK + keys + P.SETITEMS)
    _bounded_time(home, data, seconds=20)


@pytest.mark.parametrize("factory", ["set", "frozenset"])
def test_a_set_made_by_a_call_of_colliding_integers_is_bounded(home: Path, factory: str) -> None:
    """The same collision through builtins.set(list): the keys reach the set by a call, not by ADDITEMS."""
    modulus = 2**61 - 1
    keys = b"".join(long(7 + n * modulus) for n in range(150_000))
    data = stream(call(glob("builtins", factory), P.EMPTY_LIST + P.MARK + keys + P.APPENDS))
    _bounded_time(home, data, seconds=20)


def test_huge_decimal_integers_in_protocol_0_are_refused_quickly(reg: Registry, tmp_path: Path) -> None:
    for opcode in (P.INT, P.LONG):
        started = time.process_time()  # CPU time: a loaded machine does not fail it
        with pytest.raises(SerializationError):  # the scan at registration may already refuse
            ref = register(
                reg, tmp_path, P.PROTO + b"\x02" + opcode + b"9" * 1_000_000 + b"\n" + P.STOP, name=f"big{opcode[0]}"
            )
            reg.load(ref, safe=True)
        assert time.process_time() - started < 2


# -- 5. the budget: 16 x size + 64 MiB ------------------------------------------------------------------------


@pytest.mark.slow
def test_many_small_tuples_stay_inside_the_memory_budget(reg: Registry, tmp_path: Path) -> None:
    """TUPLE1 costs 2 bytes and is charged 64, but the tuple plus its entry in Interpreter.depths take ~150."""
    count = 1_300_000
    data = stream(P.EMPTY_LIST + P.MARK + (P.NONE + P.TUPLE1) * count + P.APPENDS)
    limit = 16 * len(data) + 64 * 2**20
    tracemalloc.start()
    try:
        try:  # the scan at registration may already refuse: its peak counts too
            ref = register(reg, tmp_path, data)
            reg.load(ref, safe=True)
        except ArtifactTooLarge:
            pass
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak <= limit, (
        f"peak {peak / 2**20:.0f} MiB > budget {limit / 2**20:.0f} MiB for a {len(data)}-byte artifact"
    )


# -- 6. BUILD twice on one array: use-after-free through a view a validated object keeps ---------------------


def _array_state(count: int, data: bytes, code: str = "i4") -> bytes:
    return tup(integer(1), tup(long(count)), _dtype(code), P.NEWFALSE, raw_bytes(data))


def _empty_array() -> bytes:
    return call(
        glob("numpy.core.multiarray", "_reconstruct"), glob("numpy", "ndarray"), tup(integer(0)), raw_bytes(b"b")
    )


def _csr_then_rebuild_its_indices(n: int) -> bytes:
    """csr_matrix (1 x 1, n duplicate zeros) whose indices array is later given new state by a second BUILD.

    scipy's check_format (the one the policy runs) slices ``indices[:nnz]``: the matrix keeps a *view* of the
    load-created array. The second BUILD calls ndarray.__setstate__ on that array, which frees the buffer the
    view points into (numpy does not check for views): csr.indices now reads freed (here: unmapped) memory.
    """
    indices = _empty_array() + P.BINPUT + b"\x00" + _array_state(n, b"\x00" * (4 * n)) + P.BUILD
    indptr = _empty_array() + _array_state(2, struct.pack("<ii", 0, n)) + P.BUILD
    data = _empty_array() + _array_state(n, b"\x00" * (8 * n), "f8") + P.BUILD
    state = (
        P.EMPTY_DICT + P.MARK
        + text("_shape") + tup(integer(1), integer(1)) + text("maxprint") + integer(50)
        + text("indptr") + indptr + text("indices") + indices + text("data") + data
        + P.SETITEMS
    )  # fmt: skip
    csr = glob("scipy.sparse._csr", "csr_matrix") + P.EMPTY_TUPLE + P.NEWOBJ + state + P.BUILD
    rebuild = P.BINGET + b"\x00" + _array_state(1, b"\x00" * 4) + P.BUILD + P.POP
    # Then allocate blocks of the freed size: one of them lands where the view still points.
    spray = b"".join(raw_bytes(b"\x07" * (4 * n)) + P.BINPUT + bytes([1 + i]) + P.POP for i in range(4))
    return stream(csr + rebuild + spray, protocol=2)


def test_a_second_build_on_an_array_a_sparse_matrix_views_is_refused(home: Path) -> None:
    after = """
        rebuilt = obj.indices.base is not None and obj.indices.base.shape == (1,)
        print("indices alias a rebuilt array:", rebuilt, flush=True)
        print("indices now", obj.indices[:2], "(all were 0 when scipy checked them)", flush=True)
        print(obj.toarray())
    """
    done = in_subprocess(home, _csr_then_rebuild_its_indices(2_000_000), "pickle", after=after)
    assert done.returncode == 0 and "REFUSED" in done.stdout, (done.returncode, done.stdout[-300:], done.stderr[-500:])


def test_an_index_array_rebuilt_after_scipy_checked_it_is_refused(home: Path) -> None:
    """The same trick without a dangling view: check_format keeps ``indptr`` as the very array (np.asarray, same
    dtype), so a later BUILD on it swaps in ``[0, 10**9]`` after the full format check passed."""
    indptr = _empty_array() + P.BINPUT + b"\x00" + _array_state(2, struct.pack("<ii", 0, 1)) + P.BUILD
    indices = _empty_array() + _array_state(1, struct.pack("<i", 0)) + P.BUILD
    data = _empty_array() + _array_state(1, struct.pack("<d", 1.0), "f8") + P.BUILD
    state = (
        P.EMPTY_DICT + P.MARK
        + text("_shape") + tup(integer(1), integer(1)) + text("maxprint") + integer(50)
        + text("indptr") + indptr + text("indices") + indices + text("data") + data
        + P.SETITEMS
    )  # fmt: skip
    csr = glob("scipy.sparse._csr", "csr_matrix") + P.EMPTY_TUPLE + P.NEWOBJ + state + P.BUILD
    rebuild = P.BINGET + b"\x00" + _array_state(2, struct.pack("<ii", 0, 10**9)) + P.BUILD + P.POP
    after = """
        print("indptr after the load:", obj.indptr, flush=True)
        import numpy as np
        print(obj @ np.ones(1), obj.T @ np.ones(1))
    """
    done = in_subprocess(home, stream(csr + rebuild, protocol=2), "pickle", after=after)
    assert done.returncode == 0 and "REFUSED" in done.stdout, (done.returncode, done.stdout[-300:], done.stderr[-500:])


def test_a_dtype_rebuilt_after_an_array_was_made_of_it_is_refused(home: Path) -> None:
    """BUILD on a dtype an array already uses: the array's 64-byte buffer is now read as 4 items of 1 GiB each."""
    descr = _dtype("V8") + P.BINPUT + b"\x00"
    array = call(glob("numpy.core.numeric", "_frombuffer"), raw_bytes(b"\x00" * 32), descr, tup(long(4)), text("C"))
    grow = (
        P.BINGET + b"\x00" + tup(integer(3), text("|"), P.NONE, P.NONE, P.NONE, integer(2**30), integer(1), integer(0))
    )
    data = stream(P.EMPTY_LIST + array + P.APPEND + grow + P.BUILD + P.POP, protocol=5)
    after = """
        arr = obj[0]
        size = arr.base.__len__() if arr.base is not None else "?"
        print("array of", arr.shape, arr.dtype, "over", size, "bytes", flush=True)
        print(len(arr[3].tobytes()))
    """
    done = in_subprocess(home, data, "pickle", after=after)
    assert done.returncode == 0 and "REFUSED" in done.stdout, (done.returncode, done.stdout[-300:], done.stderr[-500:])


def test_a_field_dtype_rebuilt_after_a_structured_dtype_was_made_of_it_is_refused(home: Path) -> None:
    """The same through a structured dtype's fields dict: the field's dtype is held inside a tuple in a dict."""
    field = _dtype("V8") + P.BINPUT + b"\x00"
    fields = P.EMPTY_DICT + text("a") + tup(field, integer(0)) + P.SETITEM
    structured = _dtype("V8") + tup(integer(3), text("|"), P.NONE, tup(text("a")), fields, integer(8), integer(1),
                                    integer(16)) + P.BUILD  # fmt: skip
    array = call(
        glob("numpy.core.numeric", "_frombuffer"), raw_bytes(b"\x00" * 32), structured, tup(long(4)), text("C")
    )
    grow = (
        P.BINGET + b"\x00" + tup(integer(3), text("|"), P.NONE, P.NONE, P.NONE, integer(2**30), integer(1), integer(0))
    )
    data = stream(P.EMPTY_LIST + array + P.APPEND + grow + P.BUILD + P.POP, protocol=5)
    after = """
        arr = obj[0]
        print("field", arr.dtype.fields["a"][0], "in items of", arr.dtype.itemsize, "bytes", flush=True)
        print(len(arr["a"][3].tobytes()))
    """
    done = in_subprocess(home, data, "pickle", after=after)
    assert done.returncode == 0 and "REFUSED" in done.stdout, (done.returncode, done.stdout[-300:], done.stderr[-500:])


@pytest.mark.slow
def test_many_short_protocol_0_lines_are_linear_time(home: Path) -> None:
    """Interpreter._line copies min(1 MiB, rest of the data) for every text opcode before looking for b'\\n':
    a 2 MB stream of 500 000 ``I1\\n0`` makes ~1 TB of copies (500 GB each in scan and load), hours of work; the linear
    interpreter takes a few seconds of CPU."""
    data = P.PROTO + b"\x02" + (P.INT + b"1\n" + P.POP) * 500_000 + P.NONE + P.STOP
    _bounded_time(home, data)


# -- 7. tricks that are defended (kept as regression tests) -------------------------------------------------

_DEFENDED = {
    "long_binget_out_of_range": stream(P.NONE + P.LONG_BINGET + struct.pack("<I", 2**32 - 1)),
    "pop_mark_without_mark": stream(P.NONE + P.POP_MARK + P.NONE),
    "pop_through_a_mark": stream(P.NONE + P.MARK + P.POP + P.POP),
    "memo_class_then_build": stream(glob("sklearn.linear_model._ridge", "Ridge") + P.BINPUT + b"\x00" + P.POP
                                    + P.BINGET + b"\x00" + P.EMPTY_DICT + text("fit") + P.NONE + P.SETITEM + P.BUILD),
    "dup_class_then_setstate_slots": stream(glob("scipy.sparse._csr", "csr_matrix") + P.DUP + P.POP
                                            + tup(P.NONE, P.EMPTY_DICT + text("toarray") + P.NONE + P.SETITEM) + P.BUILD),  # noqa: E501
    "newobj_ex_kwargs": stream(glob("sklearn.linear_model._ridge", "Ridge") + P.EMPTY_TUPLE
                               + P.EMPTY_DICT + text("alpha") + integer(1) + P.SETITEM + P.NEWOBJ_EX, protocol=4),
    "unregistered_ext": stream(P.EXT4 + struct.pack("<i", 0x7FFFFFF0)),
    "reconstructor_list_base": stream(call(glob("copyreg", "_reconstructor"), glob("sklearn.linear_model._ridge", "Ridge"),  # noqa: E501
                                           glob("builtins", "list"), P.EMPTY_LIST)),
    "reconstructor_of_a_function": stream(call(glob("copyreg", "_reconstructor"), glob("builtins", "object"),
                                               glob("builtins", "object"), P.NONE)),
    "object_array_from_raw_bytes": stream(_empty_array() + tup(integer(1), tup(long(1)), _dtype("O"), P.NEWFALSE,
                                                                raw_bytes(b"\x41" * 8)) + P.BUILD),
    "frombuffer_object_dtype": stream(call(glob("numpy.core.numeric", "_frombuffer"), raw_bytes(b"\x41" * 8),
                                           _dtype("O"), tup(long(1)), text("C")), protocol=5),
    "scalar_object_dtype_struct": stream(call(glob("numpy.core.multiarray", "scalar"), _dtype("O"), raw_bytes(b"\x41" * 8))),  # noqa: E501
    "partial_of_exec": stream(call(glob("functools", "partial"), glob("builtins", "exec"))),
    "partial_state_swaps_func": stream(call(glob("functools", "partial"), glob("sklearn.utils.validation", "check_array"))  # noqa: E501
                                       + tup(glob("builtins", "list"), P.EMPTY_TUPLE, P.NONE, P.NONE) + P.BUILD),
    "defaultdict_factory_partial": stream(call(glob("collections", "defaultdict"), glob("sklearn.utils.validation", "check_array"))),  # noqa: E501
    "bytes_of_length": stream(call(glob("builtins", "bytearray"), long(10**10))),
    "dtype_subarray_huge": stream(_dtype("V8") + tup(integer(3), text("|"), tup(_dtype("f8"), tup(long(2**40))), P.NONE, P.NONE,  # noqa: E501
                                                    integer(8), integer(1), integer(0)) + P.BUILD),
    "int_with_4300_digits": stream(call(glob("builtins", "int"), text("9" * 4096 + "9" * 300))),
    "persid": stream(P.PERSID + b"x\n"),
    "readonly_buffer": stream(P.NONE + P.READONLY_BUFFER, protocol=5),
    "frame_inside_frame": P.PROTO + b"\x04" + P.FRAME + struct.pack("<Q", 12) + P.FRAME + struct.pack("<Q", 2) + P.NONE + P.STOP,  # noqa: E501
    "reexport_attrgetter": stream(call(glob("sklearn.utils._repr_html.estimator", "attrgetter"), text("x"))),
    "dotted_chain": stream(glob("sklearn.base", "np.f2py.subprocess.Popen")),
}  # fmt: skip


@pytest.mark.parametrize("name", sorted(_DEFENDED))
def test_defended_tricks_are_refused(reg: Registry, tmp_path: Path, name: str) -> None:
    with pytest.raises((UnsafeArtifact, SerializationError)):
        ref = register(reg, tmp_path, _DEFENDED[name])  # the scan may already refuse (it builds dtypes for real)
        got = reg.load(ref, safe=True)
        pytest.fail(f"{name} loaded: {got!r:.200}")


def test_deeply_nested_lists_and_dicts_do_not_crash(home: Path) -> None:
    nested = P.EMPTY_LIST * 100_000 + P.APPEND * 99_999
    done = in_subprocess(home, stream(nested), "pickle", after="print(len(obj))")
    assert done.returncode == 0, (done.returncode, done.stderr[-500:])
