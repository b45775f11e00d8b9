"""The canary's size check bounds its JSON without encoding it, and never lets a canary over the limit through."""

from __future__ import annotations

import json
import math
from typing import Any

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from registry.domain import Canary
from registry.inputs import canary as canaries

json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**70), max_value=2**70)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: st.lists(children, max_size=8) | st.dictionaries(st.text(max_size=8), children, max_size=8),
    max_leaves=40,
)


def encoded(value: Any) -> int:
    return len(json.dumps(value, separators=(",", ":"), ensure_ascii=False).encode())


@settings(max_examples=300, deadline=None)
@given(json_values)
def test_the_bound_is_never_below_the_encoded_size(value: Any) -> None:
    assert canaries._size_bound(value) >= encoded(value)


def test_the_longest_floats_are_within_the_bound() -> None:
    extremes = [-2.2250738585072014e-308, -1.7976931348623157e308, -5e-324, 0.1 + 0.2, -(2**53) + 0.5]
    assert all(len(json.dumps(x)) + 1 <= canaries._FLOAT_BYTES for x in extremes)
    assert canaries._size_bound(extremes) >= encoded(extremes)


def canary_of(rows: int, text: str = "") -> Canary:
    values = np.linspace(-1, 1, rows * 4).reshape(rows, 4)
    inputs = canaries.encode_input(values)
    outputs = {"predict": canaries.encode_array(np.array([text] * rows) if text else values[:, 0])}
    return Canary(inputs=inputs, outputs=outputs, rows=rows)


def test_fits_agrees_with_the_encoded_size_on_both_sides_of_the_limit() -> None:
    small = canary_of(64)
    assert canaries._size_bound(small.to_json()) <= canaries.MAX_CANARY_BYTES  # decided without encoding
    assert canaries.fits(small) and canaries.size_of(small) <= canaries.MAX_CANARY_BYTES
    # Text bounds loosely (six bytes a character): the exact size decides when the bound is over the limit.
    wordy = canary_of(64, "é" * 1000)
    assert canaries._size_bound(wordy.to_json()) > canaries.MAX_CANARY_BYTES
    assert canaries.fits(wordy) == (canaries.size_of(wordy) <= canaries.MAX_CANARY_BYTES)
    huge = canary_of(64, "x" * 5000)
    assert not canaries.fits(huge) and canaries.size_of(huge) > canaries.MAX_CANARY_BYTES


def test_non_finite_values_are_bounded_too() -> None:
    spec = canaries.encode_array(np.array([math.nan, math.inf, -math.inf, 1.5]))
    assert canaries._size_bound(spec) >= encoded(spec)
