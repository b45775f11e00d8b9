"""A safe load checks a fitted estimator's whole state, once everything is built; each object gets state once.

Per-object checks see one tree or one matrix; what compiled code trusts at
predict is often a relation between objects (a tree's split features and
the width its estimator checks the input for, a libsvm model's coefficient
rows and its support, a boosting ensemble's stage width and the output
its initial estimator shapes). Every hostile model here is a real fitted
model edited the way an attacker edits bytes; each is refused at load
(on the code before these checks, each loaded, and its predict read or
wrote outside its arrays). The legitimate variants beside them keep
loading with equal predictions.
"""

from __future__ import annotations

import functools
import io
import pickle as P
import warnings
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from registry import Registry, SerializationError, UnsafeArtifact, formats
from tests.hostile_pickles import call, glob, integer, safe_load, stream, tup

FORMATS = ["pickle", "joblib"]


def _dumped(model: Any, fmt: str) -> bytes:
    buffer = io.BytesIO()
    formats.dump(formats.get_format(fmt), model, buffer)
    return buffer.getvalue()


def _iris() -> tuple[Any, Any]:
    from sklearn.datasets import load_iris

    return load_iris(return_X_y=True)


def _frame() -> Any:
    import pandas as pd

    X, _ = _iris()
    frame = pd.DataFrame(X, columns=list("abcd"))
    frame["kind"] = pd.Categorical(np.array(["x", "y", "z"])[np.arange(len(frame)) % 3])
    return frame


# -- hostile: relations between objects ----------------------------------------------------------------


def _tree_wider_than_its_input_check() -> Any:
    """A tree that splits on feature 3 while its estimator checks the input for one column."""
    from sklearn.tree import DecisionTreeClassifier

    model = DecisionTreeClassifier(random_state=0).fit(*_iris())
    model.n_features_in_ = 1
    return model


def _hist_gradient_boosting_preprocessor_dropping_columns() -> Any:
    """The categorical preprocessor hands the trees one column; they split on up to five."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype").fit(_frame(), _iris()[1])
    name, _, columns = model._preprocessor.transformers_[1]
    model._preprocessor.transformers_[1] = (name, "drop", columns)
    return model


def _hist_gradient_boosting_bitsets_one_word_wide() -> Any:
    """Category bitsets are 8 words a row; the compiled walk reads word ``value // 32`` of one word."""
    from sklearn.ensemble import HistGradientBoostingClassifier

    model = HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype").fit(_frame(), _iris()[1])
    for stage in model._predictors:
        for predictor in stage:
            predictor.raw_left_cat_bitsets = np.ascontiguousarray(predictor.raw_left_cat_bitsets[:, :1])
    return model


def _gradient_boosting_initial_estimator_narrower() -> Any:
    """Three trees a stage, but the initial estimator predicts two classes: ``predict_stages`` writes past them."""
    from sklearn.dummy import DummyClassifier
    from sklearn.ensemble import GradientBoostingClassifier

    X, y = _iris()
    model = GradientBoostingClassifier(n_estimators=2, max_depth=2).fit(X, y)
    model.init_ = DummyClassifier(strategy="prior").fit(X, y > 0)
    return model


def _svc_precomputed_support_past_the_training_rows() -> Any:
    """A precomputed kernel reads column ``support_[i]`` of the kernel row; these point far past it."""
    from sklearn.svm import SVC

    X, y = _iris()
    model = SVC(kernel="precomputed").fit(X @ X.T, y)
    model.support_ = np.full_like(model.support_, 10**6)
    return model


def _svc_sparse_dual_coefficients_without_their_zeros() -> Any:
    """libsvm copies (classes - 1) x support values from the sparse coefficients' data, whatever nnz says."""
    import scipy.sparse
    from sklearn.svm import SVC

    X, y = _iris()
    model = SVC().fit(scipy.sparse.csr_matrix(X), y)
    dense = model._dual_coef_.toarray()
    dense[:, 1:] = 0.0
    model._dual_coef_ = scipy.sparse.csr_matrix(dense)
    return model


def _svc_probability_without_its_coefficients() -> Any:
    """A sparse model that predicts with probabilities copies ``_probA`` from a NULL pointer when it is empty."""
    import scipy.sparse
    from sklearn.svm import SVC

    X, y = _iris()
    model = SVC().fit(scipy.sparse.csr_matrix(X), y)
    model._effective_probability = True
    return model


def _brute_neighbours_training_data_narrower() -> Any:
    """Brute-force search reads ``_fit_X`` rows with the query's width (four columns); one is there."""
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(algorithm="brute").fit(*_iris())
    model._fit_X = np.ascontiguousarray(model._fit_X[:, :1])
    return model


def _brute_neighbours_mahalanobis_matrix_too_small() -> Any:
    from sklearn.neighbors import KNeighborsClassifier

    model = KNeighborsClassifier(algorithm="brute", metric="mahalanobis", metric_params={"VI": np.eye(4)})
    model.fit(*_iris())
    model.metric_params = {"VI": np.eye(1)}
    model.effective_metric_params_ = {"VI": np.eye(1)}
    return model


def _k_means_centres_narrower() -> Any:
    """Lloyd's loop reads each centre with the query's width (four columns); one is there."""
    from sklearn.cluster import KMeans

    model = KMeans(3, n_init=1, random_state=0).fit(_iris()[0])
    model.cluster_centers_ = np.ascontiguousarray(model.cluster_centers_[:, :1])
    return model


def _k_means_with_a_million_threads() -> Any:
    from sklearn.cluster import KMeans

    model = KMeans(3, n_init=1, random_state=0).fit(_iris()[0])
    model._n_threads = 10**6
    return model


_DOCS = ["the cat sat", "the dog ran", "a cat ran"]


def _count_vectorizer_vocabulary_past_its_columns() -> Any:
    """The vocabulary's numbers become column indices of a matrix as wide as the vocabulary: toarray() crashes."""
    from sklearn.feature_extraction.text import CountVectorizer

    model = CountVectorizer().fit(_DOCS)
    model.vocabulary_ = {term: index * 10**7 for term, index in model.vocabulary_.items()}
    return model


def _dict_vectorizer_vocabulary_past_its_columns() -> Any:
    from sklearn.feature_extraction import DictVectorizer

    model = DictVectorizer().fit([{"a": 1, "b": 2}])
    model.vocabulary_ = {"a": 10**8, "b": 1}
    return model


def _multilabel_binarizer_cache_past_its_classes() -> Any:
    from sklearn.preprocessing import MultiLabelBinarizer

    model = MultiLabelBinarizer().fit([[1, 2], [3]])
    model._cached_dict = {1: 10**8, 2: 1, 3: 2}
    return model


def _feature_hasher_with_no_features() -> Any:
    """Each hash is taken modulo n_features in C: zero is a floating-point exception (SIGFPE)."""
    from sklearn.feature_extraction import FeatureHasher

    model = FeatureHasher(n_features=8).fit([{"a": 1}])
    model.n_features = 0
    return model


def _one_hot_encoder_mapping_past_its_columns() -> Any:
    from sklearn.preprocessing import OneHotEncoder

    encoded = np.array([["a"]] * 10 + [["b"]] * 10 + [["c"]] * 2)
    model = OneHotEncoder(min_frequency=5, handle_unknown="infrequent_if_exist").fit(encoded)
    model._default_to_infrequent_mappings = [np.array([10**8, 10**8, 10**8])]
    return model


def _one_hot_encoder_numeric_categories_unsorted() -> Any:
    """``searchsorted`` on unsorted categories may return their count: one column past the feature's."""
    from sklearn.preprocessing import OneHotEncoder

    model = OneHotEncoder().fit(np.array([[1.0], [2.0], [3.0]]))
    model.categories_ = [np.array([3.0, 1.0, 2.0])]
    return model


def _svc_sparse_with_a_precomputed_kernel() -> Any:
    """scikit-learn never fits this pairing; sparse libsvm would read the kernel row at each vector's stored value."""
    import scipy.sparse
    from sklearn.svm import SVC

    X, y = _iris()
    model = SVC().fit(scipy.sparse.csr_matrix(X), y)
    model.kernel = "precomputed"
    return model


HOSTILE = {
    "svc sparse with a precomputed kernel": _svc_sparse_with_a_precomputed_kernel,
    "count vectorizer vocabulary past its columns": _count_vectorizer_vocabulary_past_its_columns,
    "dict vectorizer vocabulary past its columns": _dict_vectorizer_vocabulary_past_its_columns,
    "multilabel binarizer cache past its classes": _multilabel_binarizer_cache_past_its_classes,
    "feature hasher with no features": _feature_hasher_with_no_features,
    "one-hot encoder mapping past its columns": _one_hot_encoder_mapping_past_its_columns,
    "one-hot encoder numeric categories unsorted": _one_hot_encoder_numeric_categories_unsorted,
    "brute neighbours training data narrower than the input check": _brute_neighbours_training_data_narrower,
    "brute neighbours mahalanobis matrix too small": _brute_neighbours_mahalanobis_matrix_too_small,
    "k-means centres narrower than the input check": _k_means_centres_narrower,
    "k-means with a million threads": _k_means_with_a_million_threads,
    "tree wider than its input check": _tree_wider_than_its_input_check,
    "hist gradient boosting preprocessor dropping columns": _hist_gradient_boosting_preprocessor_dropping_columns,
    "hist gradient boosting bitsets one word wide": _hist_gradient_boosting_bitsets_one_word_wide,
    "gradient boosting initial estimator narrower than its stages": _gradient_boosting_initial_estimator_narrower,
    "svc precomputed support past the training rows": _svc_precomputed_support_past_the_training_rows,
    "svc sparse dual coefficients without their zeros": _svc_sparse_dual_coefficients_without_their_zeros,
    "svc probability without its coefficients": _svc_probability_without_its_coefficients,
}


@pytest.mark.parametrize("fmt", FORMATS)
@pytest.mark.parametrize("name", sorted(HOSTILE))
def test_a_model_whose_objects_disagree_is_refused_at_load(name: str, fmt: str) -> None:
    data = _dumped(HOSTILE[name](), fmt)
    with pytest.raises(UnsafeArtifact) as caught:
        safe_load(data, fmt)
    assert "nothing was run" in str(caught.value)


# -- hostile: state given twice ------------------------------------------------------------------------------


def _array_state(values: bytes) -> bytes:
    dtype = call(glob("numpy", "dtype"), P.SHORT_BINUNICODE + b"\x02f8", P.NEWFALSE, P.NEWTRUE)
    dtype += tup(
        integer(3), P.SHORT_BINUNICODE + b"\x01<", P.NONE, P.NONE, P.NONE, integer(-1), integer(-1), integer(0)
    )
    dtype += P.BUILD
    shape = tup(integer(len(values) // 8))
    return tup(integer(1), shape, dtype, P.NEWFALSE, P.SHORT_BINBYTES + bytes([len(values)]) + values)


def test_a_second_build_on_one_object_is_refused() -> None:
    """A check at BUILD holds only if nothing replaces the state after it: pickle writes each object's state once.

    Without this, an array a ``TreePredictor`` or a KD-tree was checked
    against could be given new contents by a later BUILD of the same memo
    entry, after the check passed.
    """
    reconstruct = call(
        glob("numpy._core.multiarray", "_reconstruct"),
        glob("numpy", "ndarray"),
        tup(integer(0)),
        P.SHORT_BINBYTES + b"\x01b",
    )
    first = reconstruct + P.BINPUT + b"\x00" + _array_state(np.arange(2.0).tobytes()) + P.BUILD + P.POP
    again = P.BINGET + b"\x00" + _array_state(np.full(2, 7.0).tobytes()) + P.BUILD
    assert np.array_equal(safe_load(stream(reconstruct + _array_state(np.arange(2.0).tobytes()) + P.BUILD)), [0.0, 1.0])
    with pytest.raises(UnsafeArtifact, match="state twice"):
        safe_load(stream(first + again))


# -- legitimate: every shape of these estimators keeps loading -------------------------------------------------


@functools.cache  # fitted once for the module: the tests only predict with them
def _legitimate() -> dict[str, tuple[Any, Any]]:
    import scipy.sparse
    from sklearn.cluster import KMeans
    from sklearn.ensemble import (
        GradientBoostingClassifier,
        GradientBoostingRegressor,
        HistGradientBoostingClassifier,
        HistGradientBoostingRegressor,
    )
    from sklearn.neighbors import KNeighborsClassifier, KNeighborsRegressor, LocalOutlierFactor
    from sklearn.svm import SVC, SVR, NuSVC, OneClassSVM

    X, y = _iris()
    sparse = scipy.sparse.csr_matrix(X)
    kernel = X @ X.T
    mixed = np.c_[X[:, :3], np.arange(len(X)) % 4]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # SVC(probability=True) is deprecated, and still pickled by users
        return {
            "svc probability": (SVC(probability=True, random_state=0).fit(X, y), X),
            "svc sparse": (SVC().fit(sparse, y), sparse),
            "svc sparse probability": (SVC(probability=True, random_state=0).fit(sparse, y), sparse),
            "svc precomputed": (SVC(kernel="precomputed").fit(kernel, y), kernel),
            "svc binary balanced": (SVC(class_weight="balanced").fit(X, y > 0), X),
            "nu svc": (NuSVC().fit(X, y), X),
            "svr sparse": (SVR().fit(sparse, y), sparse),
            "one-class svm": (OneClassSVM().fit(X), X),
            "gradient boosting quantile": (GradientBoostingRegressor(n_estimators=2, loss="quantile").fit(X, y), X),
            "gradient boosting huber": (GradientBoostingRegressor(n_estimators=2, loss="huber").fit(X, y), X),
            "gradient boosting zero init": (GradientBoostingClassifier(n_estimators=2, init="zero").fit(X, y), X),
            "gradient boosting sparse": (GradientBoostingClassifier(n_estimators=2).fit(sparse, y > 0), sparse),
            "hist gradient boosting from dtype": (
                HistGradientBoostingClassifier(max_iter=3, categorical_features="from_dtype").fit(_frame(), y),
                _frame(),
            ),
            "brute neighbours on sparse data": (KNeighborsClassifier(algorithm="brute").fit(sparse, y), sparse),
            "neighbours precomputed": (KNeighborsClassifier(metric="precomputed").fit(kernel, y), kernel),
            "neighbours mahalanobis": (
                KNeighborsClassifier(algorithm="brute", metric="mahalanobis", metric_params={"VI": np.eye(4)}).fit(
                    X, y
                ),
                X,
            ),
            "neighbours weighted minkowski": (
                KNeighborsRegressor(metric="minkowski", p=3, metric_params={"w": [1.0, 2.0, 3.0, 4.0]}).fit(X, y),
                X,
            ),
            "local outlier factor": (LocalOutlierFactor(novelty=True).fit(X), X),
            "k-means float32": (KMeans(3, n_init=1, random_state=0).fit(X.astype(np.float32)), X.astype(np.float32)),
            "k-means sparse": (KMeans(3, n_init=1, random_state=0).fit(sparse), sparse),
            "hist gradient boosting mask": (
                HistGradientBoostingRegressor(max_iter=3, categorical_features=[False, False, False, True]).fit(
                    mixed, y
                ),
                mixed,
            ),
        }


LEGITIMATE = sorted(_legitimate())


@pytest.mark.parametrize("fmt", FORMATS)
def test_legitimate_variants_of_the_checked_estimators_keep_loading(fmt: str) -> None:
    for name, (model, X) in _legitimate().items():
        loaded = safe_load(_dumped(model, fmt), fmt)
        assert np.array_equal(loaded.predict(X), model.predict(X)), name


def _legitimate_transformers() -> dict[str, tuple[Any, Any]]:
    import pandas as pd
    from sklearn.feature_extraction import DictVectorizer, FeatureHasher
    from sklearn.feature_extraction.text import CountVectorizer, HashingVectorizer, TfidfVectorizer
    from sklearn.preprocessing import KBinsDiscretizer, MultiLabelBinarizer, OneHotEncoder

    X, _ = _iris()
    docs = _DOCS * 4
    letters = np.array([["a"], ["b"], ["c"], ["a"]] * 5, dtype=object)
    numbers = np.array([[1.5, 2], [2.5, 3], [np.nan, 3], [1.5, 9]] * 5)
    frame = pd.DataFrame({"s": ["x", "y", None, "x"] * 5, "n": [1, 2, 3, 1] * 5})
    labels = MultiLabelBinarizer().fit([[1, 2], [3]])
    labels.transform([[1]])  # fills its cache, which is then pickled
    return {
        "one-hot": (OneHotEncoder().fit(letters), letters),
        "one-hot numbers with nan": (OneHotEncoder().fit(numbers), numbers),
        "one-hot drop first": (OneHotEncoder(drop="first").fit(letters), letters),
        "one-hot drop if binary": (OneHotEncoder(drop="if_binary").fit(numbers), numbers),
        "one-hot infrequent": (
            OneHotEncoder(min_frequency=6, handle_unknown="infrequent_if_exist").fit(letters),
            letters,
        ),
        "one-hot max categories and drop": (OneHotEncoder(max_categories=2, drop="first").fit(numbers), numbers),
        "one-hot data frame": (OneHotEncoder(handle_unknown="ignore").fit(frame), frame),
        "one-hot categories given unsorted": (OneHotEncoder(categories=[["c", "b", "a"]]).fit(letters), letters),
        "count vectorizer limited": (CountVectorizer(max_features=3, min_df=2).fit(docs), docs),
        "count vectorizer fixed vocabulary": (CountVectorizer(vocabulary=["cat", "dog"]).fit(docs), docs),
        "tfidf bigrams": (TfidfVectorizer(ngram_range=(1, 2)).fit(docs), docs),
        "hashing vectorizer": (HashingVectorizer(n_features=16), docs),
        "feature hasher": (FeatureHasher(8, input_type="string").fit([["a"]]), [["a", "b"]]),
        "dict vectorizer restricted": (
            DictVectorizer().fit([{"a": 1, "b": 2}, {"c": 3}]).restrict([True, False, True]),
            [{"a": 1, "c": 2}],
        ),
        "multilabel binarizer": (labels, [[1, 3]]),
        "k-bins one-hot": (KBinsDiscretizer(n_bins=3, encode="onehot").fit(X), X),
    }


@pytest.mark.parametrize("fmt", FORMATS)
def test_legitimate_transformers_that_build_sparse_output_keep_loading(fmt: str) -> None:
    import scipy.sparse

    def dense(value: Any) -> Any:
        return value.toarray() if scipy.sparse.issparse(value) else value

    for name, (model, X) in _legitimate_transformers().items():
        loaded = safe_load(_dumped(model, fmt), fmt)
        assert np.array_equal(dense(loaded.transform(X)), dense(model.transform(X))), name


# -- registering bytes unexamined -------------------------------------------------------------------------


def test_bytes_that_are_no_pickle_at_all_are_stored_unexamined_without_an_inventory(
    reg: Registry, tmp_path: Path
) -> None:
    junk = tmp_path / "junk.joblib"
    junk.write_bytes(b"not a model")
    assert reg.register_file("junk", junk, check=False).imports is None


@pytest.mark.parametrize(
    "content",
    [
        b"\x04\x22\x4d\x18" + bytes(60),  # lz4, which joblib.load decompresses and unpickles
        b"ZF0x10\n" + bytes(60),  # joblib's pre-0.10 container, which joblib.load still unpickles
        stream(glob("posix", "system") + tup(P.SHORT_BINUNICODE + b"\x04true") + P.REDUCE + P.POP + P.BINGET + b"\xfa"),
    ],
    ids=["lz4", "pre-0.10 joblib", "broken after its payload"],
)
def test_bytes_joblib_would_read_but_the_scanner_cannot_are_not_stored_unexamined(
    reg: Registry, tmp_path: Path, content: bytes
) -> None:
    path = tmp_path / "artifact.joblib"
    path.write_bytes(content)
    with pytest.raises(SerializationError, match="nothing was written"):
        reg.register_file("unreadable", path, check=False)
    assert reg.models() == []


# -- scipy's LIL format: rows are Python lists -------------------------------------------------------------


def test_a_lil_matrix_whose_rows_point_past_its_width_is_refused() -> None:
    """scipy has no format check for LIL; ``tocsr()`` flattens the rows with Cython and crashes on this."""
    import scipy.sparse

    matrix = scipy.sparse.lil_matrix(np.eye(4))
    matrix.rows[3] = [10**8]
    with pytest.raises(UnsafeArtifact, match="lil_matrix"):
        safe_load(P.dumps(matrix, protocol=5))


def test_a_lil_row_grown_by_appends_after_its_matrix_got_state_is_refused() -> None:
    """The rows are lists in the memo: APPENDS can reach them after BUILD checked them, so they are checked last."""
    import pickletools
    import struct

    import scipy.sparse

    original = P.dumps(scipy.sparse.lil_matrix(np.eye(4)), protocol=2)
    ops = list(pickletools.genops(original))
    lists = [
        ops[k + 1][1] for k in range(len(ops) - 1) if ops[k][0].name == "EMPTY_LIST" and ops[k + 1][0].name == "BINPUT"
    ]
    refused = 0
    for memo in lists:
        grown = original[:-1] + P.BINGET + bytes([memo]) + P.MARK + P.BININT + struct.pack("<i", 10**8) + P.APPENDS
        try:
            loaded = safe_load(grown + P.POP + P.STOP)
        except UnsafeArtifact:
            refused += 1
            continue
        assert all(10**8 not in row for row in loaded.rows), "a row points past the matrix and was served"
    assert refused >= 4  # one per row list


def _su(value: str) -> bytes:
    raw = value.encode()
    return P.SHORT_BINUNICODE + bytes([len(raw)]) + raw


def _wrapper_under_another_name(command: str) -> bytes:
    """joblib's NumpyArrayWrapper reached as ``sklearn.utils.parallel`` + ``joblib.numpy_pickle.NumpyArrayWrapper``.

    joblib reads a padding byte (66), skips 66 bytes and reads an empty array
    after BUILD, then runs ``posix.system``; a scanner that does not know the
    name is the wrapper reads the padding byte as BINBYTES, whose length
    swallows the call.
    """
    import struct

    dtype = _su("numpy") + _su("dtype") + P.STACK_GLOBAL + _su("u1") + P.TUPLE1 + P.REDUCE
    ndarray = _su("numpy") + _su("ndarray") + P.STACK_GLOBAL
    wrapper = _su("sklearn.utils.parallel") + _su("joblib.numpy_pickle.NumpyArrayWrapper") + P.STACK_GLOBAL
    head = wrapper + P.MARK + ndarray + P.MARK + P.BININT1 + b"\x00" + P.TUPLE + _su("C") + dtype + P.TUPLE
    call = _su("posix") + _su("system") + P.STACK_GLOBAL + _su(command) + P.TUPLE1 + P.REDUCE + P.POP
    padding = bytes([66]) + struct.pack("<I", 62 + len(call)) + bytes(62)
    body = head + P.REDUCE + P.EMPTY_DICT + P.BUILD + padding + call
    return P.PROTO + b"\x04" + P.MARK + body + P.POP_MARK + P.NONE + P.STOP


def _joblib_imports(stream: bytes) -> list[str]:
    """What joblib's own unpickler asks for, answering with inert classes (the wrapper and numpy are real)."""
    from joblib.numpy_pickle import NumpyArrayWrapper, NumpyUnpickler

    class Recording(NumpyUnpickler):
        asked: list[str] = []

        def find_class(self, module: str, name: str) -> Any:
            self.asked.append(f"{module}.{name}")
            if name.endswith("NumpyArrayWrapper"):
                return NumpyArrayWrapper
            if module == "numpy":
                return getattr(np, name)
            return lambda *args: None

    Recording("artifact", io.BytesIO(stream), ensure_native_byte_order=False).load()
    return Recording.asked


def test_joblibs_array_wrapper_under_another_name_is_not_stored_with_a_short_inventory(
    reg: Registry, tmp_path: Path
) -> None:
    stream = _wrapper_under_another_name("true")
    assert "posix.system" in _joblib_imports(stream)  # the ground truth: joblib.load would run it
    path = tmp_path / "aliased.joblib"
    path.write_bytes(stream)
    with pytest.raises(SerializationError, match="NumpyArrayWrapper another way"):
        reg.register_file("aliased", path, format="joblib", check=False)
    assert reg.models() == []
