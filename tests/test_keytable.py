"""The n-gram key table answers what a binary search of the sorted keys answers."""
import numpy as np
import pytest

from pipeline.model.features import char_table
from pipeline.model.keytable import KeyTable


def _by_search(keys: np.ndarray, values: np.ndarray, queries: np.ndarray) -> np.ndarray:
    order = np.argsort(keys)
    k, v = keys[order], values[order]
    at = np.minimum(np.searchsorted(k, queries), max(len(k) - 1, 0))
    return np.where(k[at] == queries, v[at], -1) if len(k) else np.full(queries.shape, -1)


@pytest.mark.parametrize("n, seed", [(0, 0), (1, 1), (7, 2), (1000, 3), (60_000, 4)])
def test_lookups_equal_a_binary_search(n, seed):
    rng = np.random.default_rng(seed)
    keys = np.unique(rng.integers(1, 1 << 63, size=n, dtype=np.uint64))
    # clustered keys too (code points of neighbouring characters), where a weak hash would collide
    keys = np.unique(np.concatenate([keys, np.arange(1, n // 2 + 1, dtype=np.uint64) << np.uint64(21)]))
    values = rng.permutation(len(keys)).astype(np.int64)
    queries = np.concatenate([keys, rng.integers(1, 1 << 63, size=3 * n + 5, dtype=np.uint64),
                              (np.arange(n + 3, dtype=np.uint64) << np.uint64(21)) + np.uint64(1)])
    rng.shuffle(queries)
    assert np.array_equal(KeyTable(keys, values).lookup(queries), _by_search(keys, values, queries))


class _Vectorizer:
    def __init__(self):
        self.vocabulary_ = {"a": 0, "ab": 1, "险": 2}


def test_the_table_is_built_once_per_vocabulary():
    vec = _Vectorizer()
    assert char_table(vec) is char_table(vec)
    assert char_table(_Vectorizer()) is not char_table(vec)


def test_zero_is_not_a_key():
    with pytest.raises(ValueError):
        KeyTable(np.array([0, 5], dtype=np.uint64), np.array([0, 1]))
