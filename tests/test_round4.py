"""round4 gives the very doubles Python's round(x, 4) gives, for a whole array at once."""
import math

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from pipeline.model.decide import round4


def _same(values) -> None:
    a = np.asarray(values, dtype=np.float64)
    want = [repr(round(float(x), 4)) for x in a.reshape(-1)]
    assert [repr(x) for x in round4(a).reshape(-1).tolist()] == want


def test_probabilities_and_ties():
    rng = np.random.default_rng(0)
    ties = [(k + 0.5) / 1e4 for k in range(0, 10_000, 7)]  # the doubles nearest the half-way points
    near = [np.nextafter(t, 0.0) for t in ties] + [np.nextafter(t, 1.0) for t in ties]
    special = [0.0, -0.0, 1.0, 0.00005, 0.00015, 0.12345, 0.99995, 1e-300, 5e-5, 2.5e-4, -0.00004, 123456.78905,
               3e9, -7e12, math.inf, -math.inf]
    _same(np.concatenate([rng.random(200_000), rng.random(1000) ** 12, ties, near, special]))
    _same(rng.random((50, 13)))  # a matrix: rows of notes


def test_not_a_number():
    assert math.isnan(round4(np.array([math.nan]))[0])


@given(st.lists(st.floats(allow_nan=False, width=64), max_size=50))
@settings(max_examples=300, deadline=None)
def test_any_float(values):
    _same(values)
