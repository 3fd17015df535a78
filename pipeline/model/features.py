"""Features: TF-IDF over jieba word n-grams and character n-grams, plus
marker counts from the lexicon file (data/lexicon/markers.yaml).

Every transformer here follows scikit-learn's contract (parameters set in
__init__ only, learned state in attributes ending in `_`), so the whole
union composes with sklearn's tools and pickles.
"""
from __future__ import annotations

import re
from functools import lru_cache

import numpy as np
import yaml
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from pipeline.knowledge import lexicon_file
from pipeline.text.tokenise import Tokenizer

MARKERS_PATH = lexicon_file("markers.yaml")


@lru_cache(maxsize=4)
def load_markers(path: str = str(MARKERS_PATH)) -> dict[str, re.Pattern]:
    """Marker name -> one compiled alternation; a bad pattern names its marker."""
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    out: dict[str, re.Pattern] = {}
    for name, patterns in raw["markers"].items():
        try:
            out[name] = re.compile("|".join(f"(?:{p})" for p in patterns), re.IGNORECASE)
        except re.error as exc:
            raise ValueError(f"{path}: marker '{name}' has a bad pattern: {exc}") from None
    return out


class WordNgrams:
    """Analyzer for TfidfVectorizer: jieba tokens, then n-grams joined by a space."""

    def __init__(self, tokenizer: Tokenizer | None = None, ngram_range: tuple[int, int] = (1, 2)):
        self.tokenizer = tokenizer or Tokenizer()
        self.ngram_range = tuple(ngram_range)

    def __call__(self, text: str) -> list[str]:
        tokens = self.tokenizer(text)
        lo, hi = self.ngram_range
        grams = list(tokens) if lo == 1 else []
        for n in range(max(2, lo), hi + 1):
            grams.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        return grams


class MarkerCounts(BaseEstimator, TransformerMixin):
    """Counts of each marker lexicon in the text, log-scaled."""

    def __init__(self, path: str = str(MARKERS_PATH)):
        self.path = path

    def fit(self, X, y=None):
        self.names_ = list(load_markers(self.path))
        return self

    def transform(self, X) -> sparse.csr_matrix:
        markers = load_markers(self.path)
        rows = np.zeros((len(X), len(self.names_)), dtype=np.float64)
        for i, text in enumerate(X):
            for j, name in enumerate(self.names_):
                n = len(markers[name].findall(text))
                if n:
                    rows[i, j] = np.log1p(n)
        return sparse.csr_matrix(rows)

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([f"marker:{n}" for n in self.names_], dtype=object)


def find_markers(text: str, name: str, path: str = str(MARKERS_PATH)) -> list[tuple[int, int, str]]:
    """Spans of one marker in a text, for evidence."""
    return [(m.start(), m.end(), m.group(0)) for m in load_markers(path)[name].finditer(text)]


def build_features(word_ngrams: tuple[int, int] = (1, 2), char_ngrams: tuple[int, int] | None = (1, 3),
                   markers: bool = True, min_df: int = 2, tokenizer: Tokenizer | None = None,
                   marker_weight: float = 1.0) -> FeatureUnion:
    """The feature union the heads share; the comparison in the evaluation report picks its settings."""
    # vocabularies are capped so that training time grows with the rows, not with every rare n-gram
    # of a large corpus (the default corpus has about 77k features in all, under both caps)
    parts = [("word", TfidfVectorizer(analyzer=WordNgrams(tokenizer, word_ngrams), sublinear_tf=True, min_df=min_df,
                                      lowercase=False, max_features=60_000))]
    if char_ngrams:
        parts.append(("char", TfidfVectorizer(analyzer="char", ngram_range=tuple(char_ngrams), sublinear_tf=True, min_df=min_df, max_features=60_000)))
    weights = None
    if markers:
        parts.append(("marker", MarkerCounts()))
        weights = {name: 1.0 for name, _ in parts}
        weights["marker"] = marker_weight
    return FeatureUnion(parts, transformer_weights=weights)


@lru_cache(maxsize=4)
def _evidence_map(path: str) -> dict[str, tuple[str, ...]]:
    with open(path, encoding="utf-8") as fh:
        raw = yaml.safe_load(fh)
    return {flag: tuple(names) for flag, names in raw.get("evidence", {}).items()}


def evidence_map(path: str = str(MARKERS_PATH)) -> dict[str, tuple[str, ...]]:
    """Flag -> marker lists that show its evidence."""
    return _evidence_map(path)
