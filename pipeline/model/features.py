"""Features: TF-IDF over jieba word n-grams and character n-grams, plus
marker counts from the lexicon file (data/lexicon/markers.yaml).

Every transformer here follows scikit-learn's contract (parameters set in
__init__ only, learned state in attributes ending in `_`), so the whole
union composes with sklearn's tools and pickles.
"""
from __future__ import annotations

import weakref

import numpy as np
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

# the analyzer, the marker lexicon and the counting live in a scikit-learn-free module (the array
# model counts with the same code); they are named here too, where pickles and callers find them
from pipeline.model.keytable import KeyTable
from pipeline.model.lexical import (  # noqa: F401 (re-exported)
    MARKERS_PATH,
    DemandWords,
    WordNgrams,
    demand_clauses,
    explicit_threat_gate,
    explicit_threats,
    _evidence_map,
    char_counts,
    char_keys,
    compile_markers,
    evidence_map,
    find_markers,
    generic_counts,
    load_markers,
    marker_patterns,
    marker_rows,
)
from pipeline.text.tokenise import Tokenizer


class MarkerCounts(BaseEstimator, TransformerMixin):
    """Counts of each marker lexicon in the text, log-scaled."""

    def __init__(self, path: str = str(MARKERS_PATH)):
        self.path = path

    def fit(self, X, y=None):
        # the patterns themselves are fitted state: editing the lexicon later changes new models only
        self.patterns_ = marker_patterns(self.path)
        compile_markers(self.patterns_, self.path)  # a bad pattern fails here, naming its marker
        self.names_ = list(self.patterns_)
        return self

    def transform(self, X) -> sparse.csr_matrix:
        return sparse.csr_matrix(marker_rows(self.path, self.names_, X, getattr(self, "patterns_", None)))

    def get_feature_names_out(self, input_features=None) -> np.ndarray:
        return np.array([f"marker:{n}" for n in self.names_], dtype=object)


# ------------------------------------------------------------------ prediction, faster


def _plain_char(vec) -> bool:
    """Settings under which scikit-learn's char analyzer is: lower-case (if set), runs of white
    space as one space, every n-gram of 1 to 3 characters in the range."""
    lo, hi = vec.ngram_range
    return (vec.analyzer == "char" and vec.preprocessor is None and vec.strip_accents is None
            and vec.input == "content" and 1 <= lo <= hi <= 3)


# fitted char vectorizer -> (its sorted n-gram keys, their columns); gone with the vectorizer
_CHAR_TABLES: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def char_table(vec) -> KeyTable | None:
    """The vectorizer's vocabulary as a key table (each n-gram one integer: its code points + 1, 21
    bits apart, lexical.char_keys), built once per fitted vectorizer. None if a term is longer than
    three characters."""
    found = _CHAR_TABLES.get(vec)
    if found is None:
        keys = char_keys(vec.vocabulary_)
        if keys is None:
            return None
        found = _CHAR_TABLES[vec] = KeyTable(*keys)
    return found


def _char_counts(vec, docs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(row, column, count) of every in-vocabulary character n-gram, sorted by row then column,
    computed over the whole batch with array operations instead of one dictionary step per n-gram."""
    table = char_table(vec)
    if table is None:
        return None
    return char_counts(table, len(vec.vocabulary_), vec.ngram_range, vec.lowercase, docs)


def _generic_counts(vec, analyze, docs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, count) of every in-vocabulary n-gram (lexical.generic_counts: dict.get over
    the n-grams in C, the cells counted with array operations)."""
    return generic_counts(vec.vocabulary_.get, analyze, docs)


def _counts(vec, docs: list[str]):
    """The term-count matrix `vec.transform` builds in `_count_vocab`: the same integers in the
    same sorted CSR layout, without its Python step per n-gram. None when the vectorizer's
    settings are not the ones copied here (the caller then uses the vectorizer itself)."""
    if not isinstance(vec, TfidfVectorizer) or vec.binary or not all(type(d) is str for d in docs):
        return None
    if callable(vec.analyzer):
        if vec.input != "content":
            return None
        found = _generic_counts(vec, vec.analyzer, docs)
    elif _plain_char(vec):
        found = _char_counts(vec, docs)
        if found is None:
            return None
    else:
        return None
    row, j, v = found
    if len(j) > np.iinfo(np.int32).max:
        return None
    indptr = np.zeros(len(docs) + 1, dtype=np.int32)
    np.cumsum(np.bincount(row, minlength=len(docs)), out=indptr[1:])
    X = sparse.csr_array((v.astype(np.intc), j.astype(np.int32), indptr), shape=(len(docs), len(vec.vocabulary_)),
                         dtype=vec.dtype)
    X.sort_indices()
    return X


def transform_fast(union: FeatureUnion, docs: list[str]):
    """`union.transform(docs).tocsr()`, the same matrix bit for bit, at a fraction of the cost.

    Only the counting of n-grams is replaced (scikit-learn's is a Python loop per n-gram); the
    TF-IDF weighting, normalisation, transformer weights and stacking are scikit-learn's own
    code on the same counts, so every value is computed by the same operations. Any part whose
    settings are not the plain ones copied here goes through its own `transform`.
    """
    docs = list(docs)
    weights = union.transformer_weights or {}
    parts = []
    for name, trans in union.transformer_list:
        if trans is None or (isinstance(trans, str) and trans == "drop"):
            continue
        if isinstance(trans, str):  # "passthrough" and the like: scikit-learn's own path
            return union.transform(docs).tocsr()
        counts = _counts(trans, docs) if hasattr(trans, "_tfidf") else None
        X = trans.transform(docs) if counts is None else trans._tfidf.transform(_as_configured(counts), copy=False)
        w = weights.get(name)
        parts.append(X if w is None else X * w)
    if not parts:
        return union.transform(docs).tocsr()
    return sparse.hstack(parts).tocsr()


def _as_configured(X):
    """The sparse type scikit-learn's own counting would return (matrix or array, by its config)."""
    try:
        from sklearn.utils._sparse import _align_api_if_sparse
    except ImportError:  # older scikit-learn: counts were always a csr_matrix
        return sparse.csr_matrix(X)
    return _align_api_if_sparse(X)


def build_features(word_ngrams: tuple[int, int] = (1, 2), char_ngrams: tuple[int, int] | None = (1, 3),
                   markers: bool = True, min_df: int = 2, tokenizer: Tokenizer | None = None,
                   marker_weight: float = 1.0, demand_weight: float = 0.0, max_features: int = 60_000) -> FeatureUnion:
    """The feature union the heads share; the comparison in the evaluation report picks its settings."""
    # vocabularies are capped so that training time and memory grow with the rows, not with every rare
    # n-gram of a large corpus (the 16,225-note corpus fills both caps: 120,019 features in all)
    parts = [("word", TfidfVectorizer(analyzer=WordNgrams(tokenizer, word_ngrams), sublinear_tf=True, min_df=min_df,
                                      lowercase=False, max_features=max_features))]
    if char_ngrams:
        parts.append(("char", TfidfVectorizer(analyzer="char", ngram_range=tuple(char_ngrams), sublinear_tf=True,
                                              min_df=min_df, max_features=max_features)))
    if demand_weight > 0:
        parts.append(("demand", TfidfVectorizer(analyzer=DemandWords(tokenizer, word_ngrams), sublinear_tf=True,
                                                min_df=min_df, lowercase=False, max_features=20_000)))
    weights = None
    if markers:
        parts.append(("marker", MarkerCounts()))
    if markers or demand_weight > 0:
        set_weights = {"marker": marker_weight, "demand": demand_weight}
        weights = {name: set_weights.get(name, 1.0) for name, _ in parts}
    return FeatureUnion(parts, transformer_weights=weights)
