"""Checks of a fitted estimator's whole state, run once a safe load has built everything.

Per-object checks (:mod:`registry.formats.model_checks`) see one tree or
one matrix as it gets its state; what compiled code trusts at predict is
often a relation between objects: a libsvm model's coefficient rows and
its support vectors, a ``HistGradientBoosting`` tree's split features and
the width of the data its preprocessor hands it, a gradient boosting
ensemble's stage width and the output array ``predict_stages`` writes into,
the width of a neighbours model's training data or a k-means model's
centres and the width its input check lets through.
A pickle can also change a list or dict after the object holding it got
its state, so these run after the last opcode, on the objects as the
caller will receive them. Each check leaves an estimator that was never
fitted alone (it has none of the attributes its compiled code reads).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from registry.formats import transformer_checks
from registry.formats.checks import refuse
from registry.formats.model_checks import check_predictor_nodes, dok_keys, lil_rows


def _ndarray(value: Any, ndim: int, what: str) -> Any:
    import numpy

    if type(value) is not numpy.ndarray or value.ndim != ndim:
        raise refuse(what, f"it is not a {ndim}-d array")
    return value


def _count(value: Any, what: str) -> int:
    import numpy

    if type(value) is bool or not isinstance(value, (int, numpy.integer)) or value < 0:
        raise refuse(what, "it is not a count")
    return int(value)


def decision_tree(obj: Any) -> None:
    """A fitted tree's ``Tree`` reads as many columns as the input check lets through, no more."""
    from sklearn.tree._tree import Tree

    state = vars(obj)
    if "tree_" not in state:
        return
    what = f"{type(obj).__name__} state"
    if type(state["tree_"]) is not Tree:
        raise refuse(what, "its tree_ is not a scikit-learn Tree")
    if _count(state.get("n_features_in_"), f"{what} (n_features_in_)") != state["tree_"].n_features:
        raise refuse(what, "its tree splits on more features than the model checks its input for")


def gradient_boosting(obj: Any) -> None:
    """``predict_stages`` writes tree ``k`` of a stage into output column ``k``: stages as wide as the output."""
    from sklearn.tree import DecisionTreeRegressor

    state = vars(obj)
    if "estimators_" not in state:
        return
    what = f"{type(obj).__name__} state"
    stages = _ndarray(state["estimators_"], 2, f"{what} (estimators_)")
    width = _count(state.get("n_trees_per_iteration_"), f"{what} (n_trees_per_iteration_)")
    n_features = _count(state.get("n_features_in_"), f"{what} (n_features_in_)")
    if stages.dtype != object or stages.shape[0] < 1 or stages.shape[1] != width or width < 1:
        raise refuse(what, f"its stages of {stages.shape[1:]} trees do not match its {width} outputs")
    for member in stages.flat:
        if type(member) is not DecisionTreeRegressor:
            raise refuse(what, "a stage holds something other than a regression tree")
        decision_tree(member)
        if vars(member).get("n_features_in_") != n_features:
            raise refuse(what, "a stage's tree reads a different number of features than the model")
    _check_initial_estimator(state.get("init_"), width, what)


def _check_initial_estimator(init: Any, width: int, what: str) -> None:
    """The first raw predictions come from ``init_``: their width must be the stages' width."""
    import numpy
    from sklearn.dummy import DummyClassifier, DummyRegressor

    if init == "zero" if type(init) is str else False:
        return
    if type(init) is DummyRegressor:
        constant = vars(init).get("constant_")
        if vars(init).get("n_outputs_") != 1 or width != 1 or type(constant) is not numpy.ndarray or constant.size != 1:
            raise refuse(what, "its initial estimator predicts a different number of outputs than its stages")
        return
    if type(init) is DummyClassifier:
        state = vars(init)
        n_classes = state.get("n_classes_")
        prior, classes = state.get("class_prior_"), state.get("classes_")
        if (
            state.get("n_outputs_") != 1
            or type(n_classes) is not int
            or n_classes != (width if width > 1 else 2)
            or type(prior) is not numpy.ndarray
            or prior.shape != (n_classes,)
            or type(classes) is not numpy.ndarray
            or classes.shape != (n_classes,)
        ):
            raise refuse(what, "its initial estimator predicts a different number of classes than its stages")
        return
    raise refuse(
        what,
        "its initial estimator is not 'zero' or scikit-learn's default dummy estimator, so the width of the "
        "predictions its stages add to cannot be checked",
    )


def hist_gradient_boosting(obj: Any) -> None:
    """Every ``TreePredictor`` splits only on columns the input check lets through, categorical ones known."""
    from sklearn.ensemble._hist_gradient_boosting.binning import _BinMapper
    from sklearn.ensemble._hist_gradient_boosting.predictor import TreePredictor

    state = vars(obj)
    if "_predictors" not in state:
        return
    what = f"{type(obj).__name__} state"
    if state.get("_in_fit"):
        raise refuse(what, "it claims to be in the middle of fit (its predict would skip the input checks)")
    n_features = _count(state.get("n_features_in_"), f"{what} (n_features_in_)")
    mapper = state.get("_bin_mapper")
    if type(mapper) is not _BinMapper:
        raise refuse(what, "its bin mapper is not scikit-learn's")
    is_categorical = _ndarray(vars(mapper).get("is_categorical_"), 1, f"{what} (bin mapper is_categorical_)")
    if is_categorical.shape != (n_features,) or is_categorical.dtype.kind not in "bu":
        raise refuse(what, f"its bin mapper's categorical mask is not one flag for each of {n_features} features")
    thresholds = vars(mapper).get("bin_thresholds_")
    if type(thresholds) is not list or len(thresholds) != n_features:
        raise refuse(what, "its bin mapper's thresholds do not have one entry per feature")
    categorical = is_categorical.astype(bool)
    _check_preprocessor(state.get("_preprocessor"), n_features, what)
    predictors = state["_predictors"]
    if type(predictors) is not list or not all(type(stage) is list for stage in predictors):
        raise refuse(what, "its predictors are not lists of trees")
    for stage in predictors:
        for predictor in stage:
            if type(predictor) is not TreePredictor:
                raise refuse(what, "a predictor is not a scikit-learn TreePredictor")
            _check_predictor(vars(predictor), n_features, categorical, what)


def _check_predictor(state: Mapping[str, Any], n_features: int, categorical: Any, what: str) -> None:
    """One tree's node array and bitsets as the compiled walk reads them (no bounds checks there)."""
    import numpy

    check_predictor_nodes(state, f"{what} (a TreePredictor)")
    nodes = state["nodes"]
    internal = ~nodes["is_leaf"].astype(bool)
    features = nodes["feature_idx"][internal].astype(numpy.int64)
    if features.size and (features.min() < 0 or features.max() >= n_features):
        raise refuse(what, f"a tree splits on a feature outside 0..{n_features - 1}")
    split_categorical = internal & nodes["is_categorical"].astype(bool)
    if split_categorical.any() and not categorical[nodes["feature_idx"][split_categorical].astype(numpy.int64)].all():
        raise refuse(what, "a tree makes a categorical split on a feature its bin mapper does not treat as categorical")


def _check_preprocessor(preprocessor: Any, n_features: int, what: str) -> None:
    """The categorical preprocessor must hand the trees exactly ``n_features`` columns."""
    if preprocessor is None:
        return
    from sklearn.compose import ColumnTransformer
    from sklearn.preprocessing import FunctionTransformer, OrdinalEncoder

    if type(preprocessor) is not ColumnTransformer or type(vars(preprocessor).get("transformers_")) is not list:
        raise refuse(what, "its preprocessor is not the fitted ColumnTransformer scikit-learn builds")
    total = 0
    for item in vars(preprocessor)["transformers_"]:
        if type(item) is not tuple or len(item) != 3:
            raise refuse(what, "its preprocessor's transformers are not (name, transformer, columns)")
        _, transformer, columns = item
        if type(transformer) is str and transformer == "drop":
            continue
        if not (
            (type(transformer) is str and transformer == "passthrough")
            or type(transformer) in (OrdinalEncoder, FunctionTransformer)
        ):
            raise refuse(what, "its preprocessor holds a transformer that may change the number of columns")
        if type(transformer) is FunctionTransformer and not _keeps_width(vars(transformer)):
            raise refuse(what, "its preprocessor's function transformer is not the one scikit-learn builds")
        total += _selected(columns, preprocessor, what)
    if total != n_features:
        raise refuse(what, f"its preprocessor hands the trees {total} columns, not {n_features}")


def _keeps_width(state: Mapping[str, Any]) -> bool:
    """A function transformer that returns its input's columns: none, or ``check_array`` (maybe in a partial)."""
    import functools

    from sklearn.utils.validation import check_array

    func = state.get("func")
    if type(func) is functools.partial:
        func = func.func
    return (func is None or func is check_array) and state.get("inverse_func") is None


def _selected(columns: Any, preprocessor: Any, what: str) -> int:
    import numpy

    width = vars(preprocessor).get("n_features_in_")
    if type(columns) is numpy.ndarray and columns.dtype == bool and columns.ndim == 1 and columns.shape[0] == width:
        return int(columns.sum())
    if type(columns) is numpy.ndarray and columns.dtype.kind in "iu" and columns.ndim == 1:
        return int(columns.shape[0])
    if type(columns) is list and all(type(c) is int for c in columns):
        return len(columns)
    raise refuse(what, "its preprocessor selects columns in a way that cannot be counted")


def libsvm(obj: Any) -> None:
    """libsvm's ``set_model`` takes every array's length from ``_n_support`` and ``support_``, unchecked."""
    import numpy

    state = vars(obj)
    fitted = ("support_", "support_vectors_", "_n_support", "_dual_coef_", "_intercept_", "_probA", "_probB")
    if not any(name in state for name in fitted):
        return
    what = f"{type(obj).__name__} state"
    if not all(name in state for name in fitted):
        raise refuse(what, "it has some of a fitted libsvm model's arrays but not all")
    support = _ndarray(state["support_"], 1, f"{what} (support_)")
    n_support = _ndarray(state["_n_support"], 1, f"{what} (_n_support)")
    intercept = _ndarray(state["_intercept_"], 1, f"{what} (_intercept_)")
    prob_a = _ndarray(state["_probA"], 1, f"{what} (_probA)")
    prob_b = _ndarray(state["_probB"], 1, f"{what} (_probB)")
    n_class, count = n_support.shape[0], support.shape[0]
    pairs = n_class * (n_class - 1) // 2
    shape_fit = state.get("shape_fit_")
    if type(shape_fit) is not tuple or len(shape_fit) != 2 or not all(type(s) is int and s >= 0 for s in shape_fit):
        raise refuse(what, "its shape_fit_ is not the training data's (rows, columns)")
    problems = [
        n_class < 2,
        intercept.shape != (pairs,),
        prob_a.shape != prob_b.shape or prob_a.shape not in ((0,), (pairs,)),
        bool(count) and (int(support.min()) < 0 or int(support.max()) >= shape_fit[0]),
    ]
    if state.get("_impl") in ("c_svc", "nu_svc"):
        problems.append(bool((n_support < 0).any()) or int(n_support.sum()) != count)
    probability = state.get("_effective_probability", False)
    if type(probability) in (bool, int) and probability and prob_a.shape != (pairs,):
        problems.append(True)
    if any(problems):
        raise refuse(what, f"its libsvm arrays disagree on {n_class} classes and {count} support vectors")
    _check_coefficients(state, n_class, count, shape_fit, what)
    _check_public_copies(state, what)
    weights = state.get("class_weight_")
    if weights is not None and (
        type(weights) is not numpy.ndarray or weights.ndim != 1 or weights.shape[0] not in (0, n_class)
    ):
        raise refuse(what, "its class weights do not have one entry per class")


def _check_coefficients(
    state: Mapping[str, Any], n_class: int, count: int, shape_fit: tuple[int, int], what: str
) -> None:
    """Dual coefficients: one row per class but one, one column per support vector; vectors as wide as the data."""
    import scipy.sparse

    vectors, dual = state["support_vectors_"], state["_dual_coef_"]
    n_features = state.get("n_features_in_")
    precomputed = state.get("kernel") == "precomputed" or callable(state.get("kernel"))
    if scipy.sparse.issparse(vectors) or scipy.sparse.issparse(dual) or state.get("_sparse") is not False:
        if precomputed:  # scikit-learn never fits this: sparse libsvm reads the kernel row at a vector's value
            raise refuse(what, "a sparse libsvm model cannot have a precomputed kernel")
        if not (scipy.sparse.issparse(vectors) and scipy.sparse.issparse(dual)):
            raise refuse(what, "its support vectors and dual coefficients are not both sparse")
        if vectors.format != "csr" or dual.format != "csr":
            raise refuse(what, "its sparse support vectors or dual coefficients are not CSR")
        if vectors.shape[0] != count or dual.shape != (n_class - 1, count):
            raise refuse(what, "its sparse support vectors or dual coefficients do not match its support")
        if dual.data.shape != ((n_class - 1) * count,):
            raise refuse(what, "its sparse dual coefficients do not hold one value per support vector and class")
        if vectors.shape[1] != n_features:
            raise refuse(what, "its support vectors are not as wide as the data it checks its input for")
        return
    _ndarray(vectors, 2, f"{what} (support_vectors_)")
    _ndarray(dual, 2, f"{what} (_dual_coef_)")
    if dual.shape != (n_class - 1, count):
        raise refuse(what, f"its dual coefficients are {dual.shape}, not ({n_class - 1}, {count})")
    if precomputed:
        if vectors.size:
            raise refuse(what, "a precomputed-kernel model keeps no support vectors")
    elif vectors.shape != (count, n_features) or shape_fit[1] != n_features:
        raise refuse(what, "its support vectors do not match its support and the data's width")


def _check_public_copies(state: Mapping[str, Any], what: str) -> None:
    """``dual_coef_``/``intercept_`` mirror the private arrays libsvm reads (or their negation for binary)."""
    for public, private in (("dual_coef_", "_dual_coef_"), ("intercept_", "_intercept_")):
        if public in state and getattr(state[public], "shape", None) != state[private].shape:
            raise refuse(what, f"its {public} and {private} differ in shape")


def neighbors(obj: Any) -> None:
    """The brute-force and radius searches walk ``_fit_X`` with the query's width, unchecked."""
    import numpy
    import scipy.sparse

    state = vars(obj)
    if "_fit_X" not in state:
        return
    what = f"{type(obj).__name__} state"
    n_features = _count(state.get("n_features_in_"), f"{what} (n_features_in_)")
    fitted = state["_fit_X"]
    if not (type(fitted) is numpy.ndarray or scipy.sparse.issparse(fitted)) or fitted.ndim != 2:
        raise refuse(what, "its training data is not a 2-d array")
    if fitted.shape[1] != n_features:
        raise refuse(what, f"its training data has {fitted.shape[1]} columns, not the {n_features} it checks input for")
    for params in (state.get("effective_metric_params_"), state.get("metric_params")):
        _check_metric_params(params, n_features, what)


#: Metric parameters (Mahalanobis' VI and V, seuclidean's V, minkowski's w) every side of which is the data's width.
_METRIC_PARAMS = frozenset({"VI", "V", "w"})


def _check_metric_params(params: Any, n_features: int, what: str) -> None:
    import numpy

    if params is None:
        return
    if type(params) is not dict:
        raise refuse(what, "its metric parameters are not a dict")
    for key, value in params.items():
        if key not in _METRIC_PARAMS or value is None:
            continue
        array = numpy.asarray(value) if type(value) in (list, tuple) else value
        if type(array) is not numpy.ndarray or any(side != n_features for side in array.shape) or array.ndim > 2:
            raise refuse(what, f"its metric parameter {key} does not have the data's {n_features} columns")


_MAX_THREADS = 4096


def k_means(obj: Any) -> None:
    """The Lloyd and Elkan loops read each centre with the query's width, unchecked."""
    import numpy

    state = vars(obj)
    if "cluster_centers_" not in state:
        return
    what = f"{type(obj).__name__} state"
    n_features = _count(state.get("n_features_in_"), f"{what} (n_features_in_)")
    centers = _ndarray(state["cluster_centers_"], 2, f"{what} (cluster_centers_)")
    if centers.shape[0] < 1 or centers.shape[1] != n_features or centers.dtype not in (numpy.float32, numpy.float64):
        raise refuse(what, f"its cluster centres are not {n_features} floating-point columns wide")
    threads = state.get("_n_threads", 1)
    if type(threads) is not int or not 1 <= threads <= _MAX_THREADS:
        raise refuse(what, f"its thread count {threads!r} is not between 1 and {_MAX_THREADS}")


#: Base class ``module.qualname`` -> the check of a fitted instance's whole state.
ESTIMATOR_CHECKS: Mapping[str, Callable[[Any], None]] = {
    "sklearn.tree._classes.BaseDecisionTree": decision_tree,
    "sklearn.ensemble._gb.BaseGradientBoosting": gradient_boosting,
    "sklearn.ensemble._hist_gradient_boosting.gradient_boosting.BaseHistGradientBoosting": hist_gradient_boosting,
    "sklearn.svm._base.BaseLibSVM": libsvm,
    "sklearn.neighbors._base.NeighborsBase": neighbors,
    "sklearn.cluster._kmeans._BaseKMeans": k_means,
    "sklearn.feature_extraction.text.CountVectorizer": transformer_checks.count_vectorizer,
    "sklearn.feature_extraction.text.HashingVectorizer": transformer_checks.feature_hasher,
    "sklearn.feature_extraction._hash.FeatureHasher": transformer_checks.feature_hasher,
    "sklearn.feature_extraction._dict_vectorizer.DictVectorizer": transformer_checks.dict_vectorizer,
    "sklearn.preprocessing._encoders.OneHotEncoder": transformer_checks.one_hot_encoder,
    "sklearn.preprocessing._label.MultiLabelBinarizer": transformer_checks.multilabel_binarizer,
    "scipy.sparse._lil._lil_base": lil_rows,
    "scipy.sparse._dok._dok_base": dok_keys,
}


_BY_TYPE: dict[type, Callable[[Any], None] | None] = {}


def check_estimator(obj: Any) -> None:
    """Run the whole-state check of ``obj``'s nearest listed base class, if it has one."""
    cls = type(obj)
    try:
        check = _BY_TYPE[cls]
    except KeyError:
        check = _BY_TYPE[cls] = _check_of(cls)
    if check is not None:
        try:
            check(obj)
        except (TypeError, ValueError, AttributeError, IndexError, KeyError) as exc:  # state too odd to examine
            raise refuse(f"{cls.__name__} state", f"it cannot be checked ({type(exc).__name__}: {exc})") from None


def _check_of(cls: type) -> Callable[[Any], None] | None:
    for klass in cls.__mro__[:-1]:
        check = ESTIMATOR_CHECKS.get(f"{klass.__module__}.{klass.__qualname__}")
        if check is not None:
            return check
    return None
