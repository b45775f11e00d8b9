"""Checks of fitted transformers that build a sparse matrix at transform time from indices their state holds.

scipy builds ``csr_matrix((data, indices, indptr), shape=...)`` without
checking that the column indices fit the shape (only its full format
check does, which the constructor skips), and its C++ routines then index
with them: ``toarray()`` or a product writes or reads outside the arrays.
A vectorizer's vocabulary, a one-hot encoder's category mappings and a
label binarizer's cached mapping decide those indices, so each must be
what fit would have built: a numbering ``0..n-1`` of exactly the columns
the output has. A feature hasher divides by its ``n_features`` in C.
Run once the whole load is built (see :mod:`registry.formats.estimator_checks`).
"""

from __future__ import annotations

import numbers
from typing import Any

from registry.formats.checks import refuse


def _index(value: Any) -> int | None:
    import numpy

    if type(value) is bool or not isinstance(value, (int, numpy.integer)):
        return None
    return int(value)


def _numbering(mapping: Any, what: str, name: str) -> int:
    """``mapping``'s values number its keys ``0..len-1``, each once; returns ``len``."""
    if type(mapping) is not dict:
        raise refuse(what, f"its {name} is not a dict")
    indices = [_index(value) for value in mapping.values()]
    numbers = sorted(index for index in indices if index is not None)
    if any(index is None for index in indices) or numbers != list(range(len(mapping))):
        raise refuse(what, f"its {name} does not number its {len(mapping)} entries 0..{len(mapping) - 1}")
    return len(mapping)


def count_vectorizer(obj: Any) -> None:
    """``CountVectorizer``/``TfidfVectorizer``: the vocabulary numbers the output's columns."""
    state = vars(obj)
    if "vocabulary_" in state:
        _numbering(state["vocabulary_"], f"{type(obj).__name__} state", "vocabulary")


def dict_vectorizer(obj: Any) -> None:
    """``DictVectorizer``: the vocabulary numbers the output's columns, one feature name for each."""
    state = vars(obj)
    if "vocabulary_" not in state:
        return
    what = f"{type(obj).__name__} state"
    size = _numbering(state["vocabulary_"], what, "vocabulary")
    names = state.get("feature_names_")
    if type(names) is not list or len(names) != size:
        raise refuse(what, "its feature names do not match its vocabulary")


def multilabel_binarizer(obj: Any) -> None:
    """``MultiLabelBinarizer``: a cached label mapping numbers exactly its classes."""
    state = vars(obj)
    cached = state.get("_cached_dict")
    if cached is None:
        return
    what = f"{type(obj).__name__} state"
    size = _numbering(cached, what, "cached label mapping")
    classes = state.get("classes_")
    if classes is None or len(classes) != size:
        raise refuse(what, "its cached label mapping does not have one entry per class")


_MAX_HASHED = 2**31 - 1


def feature_hasher(obj: Any) -> None:
    """``FeatureHasher``/``HashingVectorizer``: the C loop takes each hash modulo ``n_features``."""
    n_features = _index(vars(obj).get("n_features"))
    if n_features is None or not 1 <= n_features <= _MAX_HASHED:
        raise refuse(f"{type(obj).__name__} state", f"its n_features is not between 1 and {_MAX_HASHED}")


def one_hot_encoder(obj: Any) -> None:
    """``OneHotEncoder``: every code transform can produce for a feature lands inside that feature's columns."""
    state = vars(obj)
    if "categories_" not in state:
        return
    what = f"{type(obj).__name__} state"
    categories = state["categories_"]
    outs = state.get("_n_features_outs")
    if type(categories) is not list or type(outs) is not list or len(outs) != len(categories):
        raise refuse(what, "its categories and output widths do not describe the same features")
    count = len(categories)
    # The mappings apply only when infrequent grouping is on; without it the codes reach every category.
    enabled = state.get("_infrequent_enabled") is True
    mappings = _per_feature(
        state.get("_default_to_infrequent_mappings") if enabled else None, count, what, "infrequent mappings"
    )
    infrequent = _per_feature(state.get("_infrequent_indices"), count, what, "infrequent indices")
    drops = _per_feature(state.get("_drop_idx_after_grouping"), count, what, "dropped categories")
    for i, cats in enumerate(categories):
        width = _index(outs[i])
        size = _sorted_categories(cats, what)
        reach = size
        for codes, name in ((mappings[i], "infrequent mapping"), (infrequent[i], "infrequent indices")):
            if codes is not None:
                values = _codes(codes, what, name)
                if name == "infrequent indices" and values and max(values) >= size:
                    raise refuse(what, f"feature {i}'s infrequent indices point past its categories")
                if name == "infrequent mapping":
                    if len(values) != size:
                        raise refuse(what, f"feature {i}'s infrequent mapping does not map each category")
                    reach = max(values, default=-1) + 1
        drop = drops[i]
        if drop is not None:
            dropped = _index(drop)
            if dropped is None or not 0 <= dropped < reach:
                raise refuse(what, f"feature {i}'s dropped category is not one of its codes")
            reach -= 1
        if width is None or width < reach:
            raise refuse(what, f"feature {i} can be encoded into {reach} columns but has {width}")


def _per_feature(value: Any, count: int, what: str, name: str) -> list[Any]:
    import numpy

    if value is None:
        return [None] * count
    if type(value) not in (list, numpy.ndarray) or len(value) != count:
        raise refuse(what, f"its {name} do not have one entry per feature")
    return list(value)


def _codes(value: Any, what: str, name: str) -> list[int]:
    import numpy

    if type(value) is not numpy.ndarray or value.ndim != 1 or value.dtype.kind not in "iu":
        raise refuse(what, f"its {name} is not an array of codes")
    codes = [int(code) for code in value]
    if any(code < 0 for code in codes):
        raise refuse(what, f"its {name} holds a negative code")
    return codes


def _missing(value: Any) -> bool:
    if value is None:
        return True
    try:
        return not isinstance(value, str) and bool(value != value)
    except (TypeError, ValueError):
        return False


def _sorted_categories(cats: Any, what: str) -> int:
    """A feature's categories; numeric ones sorted, as ``searchsorted`` needs (else it may return their count)."""
    import numpy

    if type(cats) is not numpy.ndarray or cats.ndim != 1:
        raise refuse(what, "a feature's categories are not a 1-d array")
    values = list(cats)
    while values and _missing(values[-1]):
        values.pop()  # None, NaN and NaT sort last, as fit leaves them
    numeric = all(isinstance(v, numbers.Real) and not isinstance(v, bool) for v in values)
    if cats.dtype.kind in "biufcmM" or (values and numeric):
        if any(not values[k] <= values[k + 1] for k in range(len(values) - 1)):
            raise refuse(what, "a feature's numeric categories are not sorted")
    return int(cats.shape[0])
