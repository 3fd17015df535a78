"""Features: TF-IDF over jieba word n-grams and character n-grams, plus
marker counts from the lexicon file (data/lexicon/markers.yaml).

Every transformer here follows scikit-learn's contract (parameters set in
__init__ only, learned state in attributes ending in `_`), so the whole
union composes with sklearn's tools and pickles.
"""
from __future__ import annotations

import re
import weakref
from collections import Counter
from functools import lru_cache
from itertools import pairwise, repeat

import numpy as np
import yaml
from scipy import sparse
from sklearn.base import BaseEstimator, TransformerMixin
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.pipeline import FeatureUnion

from pipeline.knowledge import lexicon_file
from pipeline.text.tokenise import Tokenizer


def _safe_load(fh):
    """yaml.safe_load, with LibYAML's parser where installed: the same constructors, so the same data,
    several times faster (part of every command's start)."""
    return yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))  # noqa: S506 (a safe loader)


MARKERS_PATH = lexicon_file("markers.yaml")


@lru_cache(maxsize=4)
def load_markers(path: str = str(MARKERS_PATH)) -> dict[str, re.Pattern]:
    """Marker name -> one compiled alternation; a bad pattern names its marker."""
    with open(path, encoding="utf-8") as fh:
        raw = _safe_load(fh)
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
        if lo <= 2 <= hi:
            grams += map(" ".join, pairwise(tokens))
        for n in range(max(3, lo), hi + 1):
            grams.extend(" ".join(tokens[i:i + n]) for i in range(len(tokens) - n + 1))
        return grams


DEMAND_PATH = lexicon_file("demand.yaml")


@lru_cache(maxsize=4)
def _demand_patterns(path: str) -> tuple[re.Pattern, re.Pattern]:
    with open(path, encoding="utf-8") as fh:
        raw = _safe_load(fh)
    return re.compile("|".join(f"(?:{c})" for c in raw["cues"])), re.compile(raw["clause_breaks"])


def demand_clauses(text: str, path: str = str(DEMAND_PATH)) -> list[str]:
    """The clauses that carry the customer's demand (a cue's clause and the one after it), in order."""
    cue, breaks = _demand_patterns(path)
    clauses = [c for c in breaks.split(text) if c.strip()]
    keep: set[int] = set()
    for i, clause in enumerate(clauses):
        if cue.search(clause):
            keep.update((i, i + 1))
    return [clauses[i] for i in sorted(keep) if i < len(clauses)]


class DemandWords(WordNgrams):
    """Analyzer: word n-grams of the demand clauses only, marked `D:` so they are columns of their own.
    The main cause is the dispute the customer wants settled, and the demand says which one it is."""

    def __init__(self, tokenizer: Tokenizer | None = None, ngram_range: tuple[int, int] = (1, 2),
                 path: str = str(DEMAND_PATH)):
        super().__init__(tokenizer, ngram_range)
        self.path = path

    def __call__(self, text: str) -> list[str]:
        grams: list[str] = []
        for clause in demand_clauses(text, self.path):
            grams += super().__call__(clause)
        return ["D:" + g for g in grams]


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


# ------------------------------------------------------------------ prediction, faster

_WHITE_SPACES = re.compile(r"\s\s+")  # scikit-learn's own (VectorizerMixin._white_spaces)
_CODE_BITS = 21  # every Unicode code point (+1) fits in 21 bits, so three fit in one uint64


def _plain_char(vec) -> bool:
    """Settings under which scikit-learn's char analyzer is: lower-case (if set), runs of white
    space as one space, every n-gram of 1 to 3 characters in the range."""
    lo, hi = vec.ngram_range
    return (vec.analyzer == "char" and vec.preprocessor is None and vec.strip_accents is None
            and vec.input == "content" and 1 <= lo <= hi <= 3)


# fitted char vectorizer -> (its sorted n-gram keys, their columns); gone with the vectorizer
_CHAR_KEYS: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def _char_keys(vec) -> tuple[np.ndarray, np.ndarray] | None:
    """Each vocabulary n-gram as one integer (its code points + 1, 21 bits apart), sorted, with its
    column; computed once per fitted vectorizer. None if a term is longer than three characters."""
    found = _CHAR_KEYS.get(vec)
    if found is None:
        keys, cols = [], []
        for term, col in vec.vocabulary_.items():
            if not 1 <= len(term) <= 3:
                return None
            key = 0
            for k, ch in enumerate(term):
                key |= (ord(ch) + 1) << (_CODE_BITS * k)
            keys.append(key)
            cols.append(col)
        keys_arr = np.array(keys, dtype=np.uint64)
        order = np.argsort(keys_arr, kind="stable")
        found = (keys_arr[order], np.array(cols, dtype=np.int64)[order])
        _CHAR_KEYS[vec] = found
    return found


def _char_counts(vec, docs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray] | None:
    """(row, column, count) of every in-vocabulary character n-gram, sorted by row then column,
    computed over the whole batch with array operations instead of one dictionary step per n-gram."""
    found = _char_keys(vec)
    if found is None:
        return None
    vkeys, vcols = found
    lo, hi = vec.ngram_range
    texts = [_WHITE_SPACES.sub(" ", d.lower() if vec.lowercase else d) for d in docs]
    try:
        codes = np.frombuffer("".join(texts).encode("utf-32-le"), dtype=np.uint32).astype(np.uint64) + 1
    except UnicodeEncodeError:  # a lone surrogate: let the per-n-gram path handle it
        return None
    lens = np.fromiter(map(len, texts), dtype=np.int64, count=len(texts))
    if codes.size != lens.sum():
        return None
    total = codes.size
    row_of = np.repeat(np.arange(len(texts), dtype=np.int64), lens)
    left = (np.cumsum(lens)[row_of] - np.arange(total)) if total else np.zeros(0, dtype=np.int64)  # chars to the end
    rows_parts, cols_parts = [], []
    key = None
    for k in range(1, hi + 1):
        if k == 1:
            key = codes
        else:
            key = key[:-1] | (codes[k - 1:] << np.uint64(_CODE_BITS * (k - 1)))
        if k < lo:
            continue
        fits = left[:key.size] >= k
        at = np.searchsorted(vkeys, key)
        np.minimum(at, len(vkeys) - 1, out=at)
        hit = fits & (vkeys[at] == key) if len(vkeys) else np.zeros(key.size, dtype=bool)
        rows_parts.append(row_of[:key.size][hit])
        cols_parts.append(vcols[at[hit]])
    rows = np.concatenate(rows_parts) if rows_parts else np.zeros(0, dtype=np.int64)
    cols = np.concatenate(cols_parts) if cols_parts else np.zeros(0, dtype=np.int64)
    width = max(len(vec.vocabulary_), 1)
    cells, counts = np.unique(rows * width + cols, return_counts=True)
    return cells // width, cells % width, counts


def _generic_counts(vec, analyze, docs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(row, column, count) per document with C-level counting (Counter, dict.get over the
    distinct n-grams); columns unsorted within a row."""
    get = vec.vocabulary_.get
    cols: list[int] = []
    vals: list[int] = []
    sizes: list[int] = []
    for doc in docs:
        counted = Counter(analyze(doc))
        cols += map(get, counted, repeat(-1))
        vals += counted.values()
        sizes.append(len(counted))
    j = np.array(cols, dtype=np.int64)
    v = np.array(vals, dtype=np.int64)
    row = np.repeat(np.arange(len(docs), dtype=np.int64), sizes)
    keep = j >= 0
    return row[keep], j[keep], v[keep]


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


def find_markers(text: str, name: str, path: str = str(MARKERS_PATH)) -> list[tuple[int, int, str]]:
    """Spans of one marker in a text, for evidence."""
    return [(m.start(), m.end(), m.group(0)) for m in load_markers(path)[name].finditer(text)]


def build_features(word_ngrams: tuple[int, int] = (1, 2), char_ngrams: tuple[int, int] | None = (1, 3),
                   markers: bool = True, min_df: int = 2, tokenizer: Tokenizer | None = None,
                   marker_weight: float = 1.0, demand_weight: float = 0.0) -> FeatureUnion:
    """The feature union the heads share; the comparison in the evaluation report picks its settings."""
    # vocabularies are capped so that training time grows with the rows, not with every rare n-gram
    # of a large corpus (the default corpus has about 77k features in all, under both caps)
    parts = [("word", TfidfVectorizer(analyzer=WordNgrams(tokenizer, word_ngrams), sublinear_tf=True, min_df=min_df,
                                      lowercase=False, max_features=60_000))]
    if char_ngrams:
        parts.append(("char", TfidfVectorizer(analyzer="char", ngram_range=tuple(char_ngrams), sublinear_tf=True, min_df=min_df, max_features=60_000)))
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


@lru_cache(maxsize=4)
def _explicit_threats(path: str) -> tuple[float, dict[str, re.Pattern], re.Pattern | None]:
    with open(path, encoding="utf-8") as fh:
        raw = _safe_load(fh).get("explicit_threats") or {}
    if not raw:
        return 1.0, {}, None
    within = int(raw.get("within", 10))
    patterns = {flag: re.compile(f"{raw['intent']}[^，。！？,!?]{{0,{within}}}?(?:{'|'.join(targets)})")
                for flag, targets in raw.get("targets", {}).items()}
    return float(raw.get("gate", 1.0)), patterns, re.compile(raw["not_after"]) if raw.get("not_after") else None


def explicit_threat_gate(path: str = str(MARKERS_PATH)) -> float:
    """The lowest probability at which an outright threat's flag fires (markers.yaml `explicit_threats`)."""
    return _explicit_threats(path)[0]


def explicit_threats(text: str, path: str = str(MARKERS_PATH)) -> dict[str, tuple[int, int, str]]:
    """Flag -> the first span where the customer says the threat outright (not negated just before)."""
    _, patterns, negated = _explicit_threats(path)
    found: dict[str, tuple[int, int, str]] = {}
    for flag, pattern in patterns.items():
        for m in pattern.finditer(text):
            if negated is not None and negated.search(text[max(0, m.start() - 8):m.start() + 4]):
                continue
            found[flag] = (m.start(), m.end(), m.group(0))
            break
    return found


@lru_cache(maxsize=4)
def _evidence_map(path: str) -> dict[str, tuple[str, ...]]:
    with open(path, encoding="utf-8") as fh:
        raw = _safe_load(fh)
    return {flag: tuple(names) for flag, names in raw.get("evidence", {}).items()}


def evidence_map(path: str = str(MARKERS_PATH)) -> dict[str, tuple[str, ...]]:
    """Flag -> marker lists that show its evidence."""
    return _evidence_map(path)
