"""A hash table of integer keys held in numpy arrays: a whole batch of look-ups in a few array steps.

Counting character n-grams looks up every n-gram of a batch (hundreds of thousands of keys)
in the fitted vocabulary. A binary search (`np.searchsorted`) pays about sixteen dependent,
cache-missing probes per key; an open-addressing table four times the vocabulary's size
answers most keys with one probe. The answer is the same: the key's column, or -1.
"""
from __future__ import annotations

import numpy as np

__all__ = ["KeyTable"]

_MULT = np.uint64(0x9E3779B97F4A7C15)  # Fibonacci hashing: the top bits of key * 2^64/phi
_EMPTY = np.uint64(0)  # a slot holding no key (vocabulary keys are never 0: code points are stored + 1)


class KeyTable:
    """Sorted-free membership for non-zero uint64 keys: `lookup(keys)` gives each key's value or -1."""

    def __init__(self, keys: np.ndarray, values: np.ndarray) -> None:
        keys = np.asarray(keys, dtype=np.uint64)
        values = np.asarray(values, dtype=np.int64)
        if keys.size and (keys == _EMPTY).any():
            raise ValueError("key 0 is reserved for empty slots")
        bits = max(4, int(max(keys.size, 1) * 4 - 1).bit_length())  # at most a quarter full
        self._shift = np.uint64(64 - bits)
        self._mask = np.int64((1 << bits) - 1)
        self.slots = np.zeros(1 << bits, dtype=np.uint64)
        self.values = np.full(1 << bits, -1, dtype=np.int64)
        self.max_probe = 0
        pending = np.arange(keys.size)
        slot = self._home(keys)
        while pending.size:  # place each key in its first free slot from home (linear probing)
            free = self.slots[slot] == _EMPTY
            # of the keys wanting the same free slot, the first one takes it
            _, first = np.unique(slot[free], return_index=True)
            placed = np.flatnonzero(free)[first]
            self.slots[slot[placed]] = keys[pending[placed]]
            self.values[slot[placed]] = values[pending[placed]]
            left = np.ones(pending.size, dtype=bool)
            left[placed] = False
            pending, slot = pending[left], (slot[left] + 1) & self._mask
            if pending.size:
                self.max_probe += 1

    def _home(self, keys: np.ndarray) -> np.ndarray:
        return ((keys * _MULT) >> self._shift).astype(np.int64)

    def lookup(self, keys: np.ndarray) -> np.ndarray:
        """Each key's value, -1 where the key is not in the table (int64, the keys' shape)."""
        keys = np.asarray(keys, dtype=np.uint64)
        out = np.full(keys.shape, -1, dtype=np.int64)
        slot = self._home(keys)
        todo = np.arange(keys.size)
        for _ in range(self.max_probe + 1):
            found = self.slots[slot]
            hit = found == keys[todo]
            out[todo[hit]] = self.values[slot[hit]]
            more = ~hit & (found != _EMPTY)  # an empty slot ends the search: the key is absent
            if not more.any():
                break
            todo, slot = todo[more], (slot[more] + 1) & self._mask
        return out
