"""The legitimate corpus: models and arrays that must keep loading with ``safe=True``, identically.

Every model is registered in a real registry in pickle and joblib formats,
loaded back through the restricted interpreter with the version's recorded
inventory, and must predict exactly what the original predicts.
"""

from __future__ import annotations

import io
import tracemalloc
import warnings
from typing import Any

import numpy as np
import pytest

from registry import Registry, formats

FORMATS = ["pickle", "joblib"]


@pytest.fixture(scope="module")
def corpus() -> dict[str, tuple[Any, Any]]:
    import pandas as pd
    from sklearn.calibration import CalibratedClassifierCV
    from sklearn.cluster import KMeans
    from sklearn.compose import ColumnTransformer
    from sklearn.datasets import load_iris
    from sklearn.decomposition import PCA
    from sklearn.ensemble import (
        ExtraTreesClassifier,
        GradientBoostingClassifier,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
        RandomForestClassifier,
    )
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression, Ridge, SGDClassifier
    from sklearn.naive_bayes import GaussianNB
    from sklearn.neighbors import KNeighborsClassifier
    from sklearn.neural_network import MLPClassifier
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import OneHotEncoder, StandardScaler
    from sklearn.svm import SVC, LinearSVC
    from sklearn.tree import DecisionTreeClassifier

    X, y = load_iris(return_X_y=True)
    labels = np.array(["setosa", "versicolor", "virginica"], dtype=object)[y]
    frame = pd.DataFrame({"length": X[:, 0], "kind": np.array(["a", "b", "c"])[y], "width": X[:, 1]})
    with_category = np.c_[X, y % 2]
    docs = ["alpha beta gamma", "beta gamma delta", "gamma delta epsilon", "alpha alpha beta"] * 5
    column_pipeline = make_pipeline(
        ColumnTransformer(
            [
                ("onehot", OneHotEncoder(handle_unknown="ignore"), ["kind"]),
                ("scale", StandardScaler(), ["length", "width"]),
            ]
        ),
        LogisticRegression(max_iter=300),
    )
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return {
            "logistic": (LogisticRegression(max_iter=300).fit(X, y), X),
            "ridge": (Ridge().fit(X, y), X),
            "sgd": (SGDClassifier(random_state=0).fit(X, y), X),
            "linear-svc": (LinearSVC().fit(X, y), X),
            "svc": (SVC().fit(X, y), X),
            "knn-kd-tree": (KNeighborsClassifier(algorithm="kd_tree").fit(X, y), X),
            "knn-ball-tree": (KNeighborsClassifier(algorithm="ball_tree").fit(X, y), X),
            "decision-tree": (DecisionTreeClassifier(random_state=0).fit(X, y), X),
            "forest": (RandomForestClassifier(n_estimators=5, random_state=0).fit(X, labels), X),
            "extra-trees": (ExtraTreesClassifier(n_estimators=5, random_state=0).fit(X, y), X),
            "gradient-boosting": (GradientBoostingClassifier(n_estimators=5).fit(X, y), X),
            "hist-gb": (HistGradientBoostingClassifier(max_iter=5).fit(X, y), X),
            "hist-gb-categorical": (
                HistGradientBoostingRegressor(max_iter=5, categorical_features=[4]).fit(with_category, y),
                with_category,
            ),
            "column-pipeline": (column_pipeline.fit(frame, y), frame),
            "pca": (PCA(2).fit(X), X),
            "kmeans": (KMeans(3, n_init=2, random_state=0).fit(X), X),
            "naive-bayes": (GaussianNB().fit(X, y), X),
            "mlp": (MLPClassifier(max_iter=30, random_state=0).fit(X, y), X),
            "tfidf": (make_pipeline(TfidfVectorizer(), LogisticRegression()).fit(docs, [0, 1, 0, 1] * 5), docs[:3]),
            "calibrated": (CalibratedClassifierCV(LinearSVC(), cv=3).fit(X, y), X),
        }


def _outputs(model: Any, X: Any) -> Any:
    return model.predict(X) if hasattr(model, "predict") else model.transform(X)


@pytest.mark.slow
@pytest.mark.parametrize("fmt", FORMATS)
def test_the_corpus_loads_safely_and_predicts_identically(
    reg: Registry, corpus: dict[str, tuple[Any, Any]], fmt: str
) -> None:
    for name, (model, X) in corpus.items():
        mv = reg.register(name, model, format=fmt)
        assert mv.imports and list(mv.imports) == sorted(mv.imports), name
        loaded = reg.load(name, safe=True)
        assert type(loaded) is type(model), name
        assert np.array_equal(_outputs(loaded, X), _outputs(model, X)), name


def _arrays() -> dict[str, Any]:
    base = np.arange(24.0).reshape(4, 6)
    return {
        "float32": np.arange(5, dtype=np.float32),
        "int8": np.arange(-3, 3, dtype=np.int8),
        "uint64": np.arange(3, dtype=np.uint64),
        "bool": np.array([True, False]),
        "complex": np.array([1 + 2j, 3 - 1j]),
        "big-endian": np.arange(4, dtype=">i4"),
        "unicode": np.array(["alpha", "beta"]),
        "bytes": np.array([b"ab", b"c"]),
        "datetime": np.array(["2026-01-01", "2026-12-02"], dtype="datetime64[ns]"),
        "timedelta": np.array([1, 2], dtype="timedelta64[s]"),
        "structured": np.array([(1, 2.0, b"x")], dtype=[("a", "<i4"), ("b", "<f8"), ("c", "S3")]),
        "object": np.array([1, "two", None, 3.5], dtype=object),
        "fortran": np.asfortranarray(base),
        "non-contiguous": base[:, ::2],
        "zero-size": np.empty((0, 3)),
        "scalar-0d": np.array(7.5),
        "numpy-scalar": np.float32(2.5),
        "subarray": np.zeros(2, dtype=[("v", "<f4", (3,))]),
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_numpy_arrays_of_many_dtypes_round_trip(fmt: str) -> None:
    for name, array in _arrays().items():
        buffer = io.BytesIO()
        inventory = formats.dump(formats.get_format(fmt), {"a": array}, buffer)
        buffer.seek(0)
        loaded = formats.load(formats.get_format(fmt), buffer, name, safe=True, inventory=inventory)["a"]
        buffer.seek(0)
        expected = formats.load(formats.get_format(fmt), buffer, name)["a"]  # joblib makes byte order native
        assert type(loaded) is type(expected) and loaded.dtype == expected.dtype, name
        assert np.shape(loaded) == np.shape(array) and np.array_equal(loaded, array), name


@pytest.mark.parametrize("fmt", FORMATS)
def test_sparse_matrices_and_arrays_and_random_state_round_trip(reg: Registry, fmt: str) -> None:
    import scipy.sparse as sp

    dense = np.array([[0.0, 1.0, 0.0], [2.0, 0.0, 3.0]])
    value = {
        kind: getattr(sp, kind)(dense)
        for kind in ("csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "lil_matrix", "dok_matrix")
    }
    value["generator"] = np.random.default_rng(7)
    value["random-state"] = np.random.RandomState(7)
    reg.register("sparse", value, format=fmt)
    loaded = reg.load("sparse", safe=True)
    for kind in ("csr_matrix", "csc_matrix", "coo_matrix", "csr_array", "lil_matrix", "dok_matrix"):
        assert type(loaded[kind]) is type(value[kind]) and np.array_equal(loaded[kind].toarray(), dense), kind
    assert loaded["generator"].random() == np.random.default_rng(7).random()
    assert loaded["random-state"].rand() == np.random.RandomState(7).rand()


def test_joblib_arrays_are_views_of_the_verified_buffer() -> None:
    """With ``getbuffer()`` the safe load builds arrays in place: peak memory stays near 1x the file."""
    array = np.arange(2**21, dtype=np.float64)  # 16 MiB
    buffer = io.BytesIO()
    formats.dump(formats.get_format("joblib"), {"weights": array}, buffer)
    buffer.seek(0)
    tracemalloc.start()
    try:
        loaded = formats.load(formats.get_format("joblib"), buffer, "big", safe=True)
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert np.array_equal(loaded["weights"], array) and loaded["weights"].flags.writeable
    assert peak < 2**20, peak  # no copy of the 16 MiB
    assert loaded["weights"].base is not None


@pytest.mark.slow
def test_a_safe_load_stays_within_the_documented_bound(corpus: dict[str, tuple[Any, Any]]) -> None:
    from registry.formats.hooks import SIZE_CONSTANT, SIZE_MULTIPLE

    for fmt in FORMATS:
        buffer = io.BytesIO()
        formats.dump(formats.get_format(fmt), corpus["forest"][0], buffer)
        size = buffer.tell()
        buffer.seek(0)
        tracemalloc.start()
        try:
            formats.load(formats.get_format(fmt), buffer, "forest", safe=True)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
        assert peak <= SIZE_MULTIPLE * size + SIZE_CONSTANT


def test_a_real_file_is_read_once_into_one_buffer(tmp_path) -> None:
    array = np.arange(2**20, dtype=np.float64)  # 8 MiB
    path = tmp_path / "model.joblib"
    with open(path, "wb") as file:
        formats.dump(formats.get_format("joblib"), {"weights": array}, file)
    with open(path, "rb") as file:
        tracemalloc.start()
        try:
            loaded = formats.load(formats.get_format("joblib"), file, "big", safe=True)
            peak = tracemalloc.get_traced_memory()[1]
        finally:
            tracemalloc.stop()
    assert np.array_equal(loaded["weights"], array)
    assert peak < 1.1 * path.stat().st_size, peak  # the file's bytes once, arrays are views of them


@pytest.mark.parametrize("fmt", FORMATS)
def test_large_payloads_are_skipped_by_the_registration_scan_yet_load(fmt: str) -> None:
    """Payloads of 256 KiB+ are holes in the scan's copy; the inventory and the load stay exact."""
    value = {
        "text": "x" * (3 << 20),
        "blob": b"y" * (2 << 20),
        "weights": np.arange(1 << 19, dtype=float),
        "objects": np.array(["z" * (2 << 20), 1], dtype=object),
    }
    buffer = io.BytesIO()
    inventory = formats.dump(formats.get_format(fmt), value, buffer)
    assert "numpy.dtype" in inventory and not any("Inert" in name for name in inventory)
    buffer.seek(0)
    assert inventory == formats.scan_imports(formats.get_format(fmt), buffer)
    buffer.seek(0)
    loaded = formats.load(formats.get_format(fmt), buffer, "big", safe=True, inventory=inventory)
    assert loaded["text"] == value["text"] and loaded["blob"] == value["blob"]
    assert np.array_equal(loaded["weights"], value["weights"]) and loaded["objects"][0] == value["objects"][0]


@pytest.mark.parametrize("method", ["zlib", "gzip", "bz2", "lzma", "xz"])
def test_compressed_joblib_files_load_safely(iris: tuple[Any, Any], method: str) -> None:
    import joblib
    from sklearn.ensemble import RandomForestClassifier

    X, y = iris
    model = RandomForestClassifier(n_estimators=3, random_state=0).fit(X, y)
    buffer = io.BytesIO()
    joblib.dump(model, buffer, compress=(method, 3))
    buffer.seek(0)
    inventory = formats.scan_imports(formats.get_format("joblib"), buffer)
    assert "sklearn.tree._tree.Tree" in inventory
    buffer.seek(0)
    loaded = formats.load(formats.get_format("joblib"), buffer, "compressed", safe=True, inventory=inventory)
    assert np.array_equal(loaded.predict(X), model.predict(X))


@pytest.mark.slow
@pytest.mark.parametrize("protocol", [0, 1, 2, 3, 4, 5])
def test_every_pickle_protocol_loads_safely(corpus: dict[str, tuple[Any, Any]], protocol: int) -> None:
    """Protocols 0-2 name Python 2 modules (copy_reg, __builtin__): mapped as CPython maps them."""
    import pickle

    fmt = formats.get_format("pickle")
    for name in ("forest", "column-pipeline", "hist-gb-categorical", "knn-ball-tree", "tfidf", "sgd"):
        model, X = corpus[name]
        data = pickle.dumps(model, protocol=protocol)
        inventory = formats.scan_imports(fmt, io.BytesIO(data))
        assert not any(n.startswith(("copy_reg.", "__builtin__.")) for n in inventory), name
        loaded = formats.load(fmt, io.BytesIO(data), name, safe=True, inventory=inventory)
        assert np.array_equal(_outputs(loaded, X), _outputs(model, X)), (name, protocol)
