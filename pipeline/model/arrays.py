"""The array model: what prediction needs from a fitted Triager, as plain arrays and JSON.

Why: the fitted Triager is a pickle of scikit-learn objects, so loading it imports
scikit-learn (and pandas, joblib, SciPy's statistics): most of a `tousu score` start.
Prediction itself is vocabulary look-ups, TF-IDF weighting and a few matrix products,
which need numpy and scipy.sparse only. So the registry writes, beside model.joblib,

  arrays.json   the feature settings, label sets, thresholds, calibration and taxonomy,
                and where each array lies in arrays.bin (dtype, shape, offset)
  arrays.bin    the arrays back to back: head weights (float32), intercepts, IDF
                vectors, the character vocabulary as sorted integer keys, the word
                vocabulary as NUL-separated UTF-8 terms in column order

both listed with their sha256 in the signed manifest. `ArrayTriager` predicts from them
without importing scikit-learn; its triages equal the Triager's (the same probabilities bit
for bit: the same counting code, the same floating-point operations in the same order). A
model whose parts this format does not know (another vectorizer, another normalisation) is
saved without arrays and loads from its pickle as before; `to_arrays` says why.

The arrays are views into the bytes the registry read and hashed (read once, never
memory-mapped: a file changed after the check must not change the weights in use).
"""
from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cached_property
from typing import Any, Iterable, Sequence

import numpy as np
from scipy import sparse

from pipeline.contract.taxonomy import Taxonomy
from pipeline.model.decide import NO_MINDSET, TriageDecision
from pipeline.model.lexical import WHITE_SPACES, char_counts, generic_counts, marker_rows
from pipeline.model.keytable import KeyTable
from pipeline.model.lexical import WordNgrams, char_keys
from pipeline.text.normalisation import NormalisedText, normalise
from pipeline.text.tokenise import Tokenizer

__all__ = ["ArrayTriager", "Unsupported", "to_arrays", "FORMAT", "META_FILE", "BLOB_FILE"]

FORMAT = 1
META_FILE = "arrays.json"
BLOB_FILE = "arrays.bin"
_ALIGN = 64


class Unsupported(ValueError):
    """The fitted model has a part the array format does not reproduce exactly; it keeps its pickle only."""


# ------------------------------------------------------------------ writing

class _Blob:
    """Arrays laid back to back (64-byte aligned), with the table that finds them again."""

    def __init__(self) -> None:
        self.parts: list[bytes] = []
        self.size = 0
        self.table: dict[str, dict] = {}

    def add(self, name: str, array: np.ndarray) -> str:
        a = np.ascontiguousarray(array)
        if a.dtype.hasobject:
            raise Unsupported(f"{name}: an object array")
        pad = (-self.size) % _ALIGN
        if pad:
            self.parts.append(b"\0" * pad)
            self.size += pad
        self.table[name] = {"dtype": a.dtype.str, "shape": list(a.shape), "offset": self.size}
        data = a.tobytes()
        self.parts.append(data)
        self.size += len(data)
        return name

    def bytes(self) -> bytes:
        return b"".join(self.parts)


def _tfidf_settings(vec, name: str) -> dict:
    """The TF-IDF step of a fitted TfidfVectorizer, if it is the one copied here."""
    tfidf = getattr(vec, "_tfidf", None)
    if tfidf is None or not hasattr(tfidf, "idf_"):
        raise Unsupported(f"{name}: not a fitted TfidfVectorizer with IDF")
    if vec.binary or vec.norm not in ("l2", None) or np.dtype(vec.dtype) != np.float64:
        raise Unsupported(f"{name}: binary counts, norm {vec.norm!r} or dtype {vec.dtype} are not reproduced")
    if vec.input != "content":
        raise Unsupported(f"{name}: input {vec.input!r}")
    return {"sublinear": bool(vec.sublinear_tf), "norm": vec.norm}


def _columns(vocabulary: dict[str, int], name: str) -> list[str]:
    terms = [""] * len(vocabulary)
    for term, col in vocabulary.items():
        terms[col] = term
    if sorted(vocabulary.values()) != list(range(len(vocabulary))):
        raise Unsupported(f"{name}: vocabulary columns are not 0..n-1")
    return terms


def _feature_parts(union, blob: _Blob) -> list[dict]:
    from pipeline.model.features import MarkerCounts, _plain_char  # the fitted model's own classes

    weights = union.transformer_weights or {}
    parts = []
    for name, trans in union.transformer_list:
        if trans is None or (isinstance(trans, str) and trans == "drop"):
            continue
        part: dict[str, Any] = {"name": name, "weight": weights.get(name)}
        if isinstance(trans, MarkerCounts):
            part.update(kind="marker", path=trans.path, names=list(trans.names_))
            if getattr(trans, "patterns_", None) is not None:
                part["patterns"] = trans.patterns_
        elif hasattr(trans, "_tfidf") and type(trans.analyzer) is WordNgrams:
            analyzer = trans.analyzer
            if type(analyzer.tokenizer) is not Tokenizer:
                raise Unsupported(f"{name}: a tokenizer other than pipeline.text.tokenise.Tokenizer")
            terms = _columns(trans.vocabulary_, name)
            if any("\0" in t for t in terms):
                raise Unsupported(f"{name}: a term holds a NUL character")
            part.update(kind="word", ngram_range=list(analyzer.ngram_range), tokenizer=analyzer.tokenizer.__getstate__(),
                        width=len(terms), terms=blob.add(f"{name}.terms", np.frombuffer("\0".join(terms).encode("utf-8"), dtype=np.uint8)),
                        idf=blob.add(f"{name}.idf", np.asarray(trans.idf_, dtype=np.float64)), **_tfidf_settings(trans, name))
        elif hasattr(trans, "_tfidf") and not callable(trans.analyzer) and _plain_char(trans):
            found = char_keys(trans.vocabulary_)
            if found is None:
                raise Unsupported(f"{name}: a character n-gram longer than three")
            part.update(kind="char", ngram_range=list(trans.ngram_range), lowercase=bool(trans.lowercase),
                        width=len(trans.vocabulary_), keys=blob.add(f"{name}.keys", found[0]),
                        cols=blob.add(f"{name}.cols", found[1]),
                        idf=blob.add(f"{name}.idf", np.asarray(trans.idf_, dtype=np.float64)), **_tfidf_settings(trans, name))
        else:
            raise Unsupported(f"{name}: a feature part of type {type(trans).__name__} the array format does not know")
        parts.append(part)
    if not parts:
        raise Unsupported("no feature parts")
    return parts


def _head(h, name: str, blob: _Blob) -> dict:
    out = {"classes": list(h.classes), "weights": blob.add(f"{name}.weights", h.weights),
           "intercept": blob.add(f"{name}.intercept", np.asarray(h.intercept, dtype=np.float64))}
    if h.weights.dtype != np.float32 or np.asarray(h.intercept).dtype != np.float64:
        raise Unsupported(f"{name}: weights {h.weights.dtype}, intercept {np.asarray(h.intercept).dtype}")
    if isinstance(getattr(h, "platt", None), np.ndarray):  # several binary heads, Platt-scaled per column
        out.update(kind="binaries", platt=blob.add(f"{name}.platt", np.asarray(h.platt, dtype=np.float64)))
    elif len(h.classes) > 1:
        out.update(kind="multiclass", temperature=float(h.temperature))
    else:
        raise Unsupported(f"{name}: a lone binary head")
    return out


_HEADS = {"cause": "cause_head_", "mindset": "mindset_head_", "risk_level": "level_head_", "risk_flags": "flag_head_",
          "mindset_any": "mindset_any_head_"}


def to_arrays(model) -> tuple[dict, bytes]:
    """The prediction state of a fitted Triager as (meta, blob); Unsupported when a part is not reproduced."""
    from dataclasses import asdict

    blob = _Blob()
    meta: dict[str, Any] = {
        "format": FORMAT,
        "parts": _feature_parts(model.features_, blob),
        "heads": {head: _head(getattr(model, attr), head, blob) for head, attr in _HEADS.items()},
        "classes": {k: list(v) for k, v in model.classes_.items()},
        "taxonomy": asdict(model.taxonomy_),
        "flag_thresholds": {k: float(v) for k, v in model.flag_thresholds_.items()},
        "mindset_second_threshold": float(model.mindset_second_threshold_),
        "review_thresholds": {k: float(v) for k, v in model.review_thresholds_.items()},
        "risk_policy": model.risk_policy,
    }
    if model.mindset_classes_[-1] != NO_MINDSET:
        raise Unsupported("the mindset classes do not end with the no-mindset class")
    meta["arrays"] = blob.table
    return meta, blob.bytes()


def dump(meta: dict, blob: bytes) -> tuple[bytes, bytes]:
    """The two files' bytes: canonical JSON (floats written so they read back the same) and the blob."""
    return json.dumps(meta, ensure_ascii=False, sort_keys=True, separators=(",", ":")).encode("utf-8"), blob


# ------------------------------------------------------------------ predicting

def _l2_normalise(X) -> None:
    """scikit-learn's `normalize(X, 'l2')` on a CSR matrix, in place, with the same arithmetic: per row
    a sum of squares added in storage order (np.cumsum is strictly sequential), its square root, a division."""
    data, indptr = X.data, X.indptr
    sq = data * data
    norms = np.empty(X.shape[0])
    for i in range(X.shape[0]):
        a, b = indptr[i], indptr[i + 1]
        norms[i] = np.cumsum(sq[a:b])[-1] if b > a else 0.0
    np.sqrt(norms, out=norms)
    norms[norms == 0.0] = 1.0  # an empty row: left as it is
    data /= np.repeat(norms, np.diff(indptr))


def _softmax(x: np.ndarray) -> np.ndarray:
    """scipy.special.softmax(x, axis=1), the same numpy operations."""
    x_max = np.max(x, axis=1, keepdims=True)
    e = np.exp(x - x_max)
    return e / np.sum(e, axis=1, keepdims=True)


@dataclass
class _Part:
    spec: dict
    arrays: dict[str, np.ndarray]

    @cached_property
    def key_table(self) -> KeyTable:
        """The character vocabulary's keys and columns as a hash table, built once per loaded model."""
        return KeyTable(self.arrays[self.spec["keys"]], self.arrays[self.spec["cols"]])

    @cached_property
    def analyzer(self) -> WordNgrams:
        return WordNgrams(Tokenizer(**self.spec["tokenizer"]), tuple(self.spec["ngram_range"]))

    @cached_property
    def vocabulary_get(self):
        raw = self.arrays[self.spec["terms"]].tobytes().decode("utf-8")
        terms = raw.split("\0") if self.spec["width"] else []
        return dict(zip(terms, range(len(terms)))).get

    def counts(self, docs: list[str]) -> sparse.csr_matrix:
        """The term counts scikit-learn's vectorizer would count (sorted columns, float64)."""
        kind, width = self.spec["kind"], self.spec["width"]
        if kind == "word":
            row, j, v = generic_counts(self.vocabulary_get, self.analyzer, docs)
        else:
            found = char_counts(self.key_table, width,
                                tuple(self.spec["ngram_range"]), self.spec["lowercase"], docs)
            if found is None:  # a lone surrogate: count per n-gram, as scikit-learn does
                found = self._char_counts_slow(docs)
            row, j, v = found
        indptr = np.zeros(len(docs) + 1, dtype=np.int32)
        np.cumsum(np.bincount(row, minlength=len(docs)), out=indptr[1:])
        X = sparse.csr_matrix((v.astype(np.float64), j.astype(np.int32), indptr), shape=(len(docs), width))
        X.sort_indices()
        return X

    def _char_counts_slow(self, docs: list[str]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per n-gram counting, as scikit-learn's char analyzer does, for texts the array path refuses."""
        from collections import Counter

        keys, cols = self.arrays[self.spec["keys"]], self.arrays[self.spec["cols"]]
        lo, hi = self.spec["ngram_range"]
        rows, js, vs = [], [], []
        for i, d in enumerate(docs):
            text = WHITE_SPACES.sub(" ", d.lower() if self.spec["lowercase"] else d)
            grams = Counter(text[s:s + n] for n in range(lo, hi + 1) for s in range(len(text) - n + 1))
            for gram, count in grams.items():
                key = 0
                for k, ch in enumerate(gram):
                    key |= (ord(ch) + 1) << (21 * k)
                at = int(np.searchsorted(keys, np.uint64(key)))
                if at < len(keys) and int(keys[at]) == key:
                    rows.append(i)
                    js.append(int(cols[at]))
                    vs.append(count)
        return np.array(rows, dtype=np.int64), np.array(js, dtype=np.int64), np.array(vs, dtype=np.int64)

    def transform(self, docs: list[str]):
        if self.spec["kind"] == "marker":
            X = sparse.csr_matrix(marker_rows(self.spec["path"], self.spec["names"], docs, self.spec.get("patterns")))
        else:
            X = self.counts(docs)
            if self.spec["sublinear"]:
                np.log(X.data, X.data)
                X.data += 1.0
            X.data *= self.arrays[self.spec["idf"]][X.indices]
            if self.spec["norm"] == "l2":
                _l2_normalise(X)
        w = self.spec["weight"]
        return X if w is None else X * w


class _Head:
    """A linear head from its arrays: softmax with a temperature, or Platt-scaled binaries."""

    def __init__(self, spec: dict, arrays: dict[str, np.ndarray]):
        self.classes: list[str] = spec["classes"]
        self.kind = spec["kind"]
        self.weights = arrays[spec["weights"]]  # (features, classes) float32
        self.intercept = arrays[spec["intercept"]]
        self.temperature = spec.get("temperature", 1.0)
        self.platt = arrays[spec["platt"]] if "platt" in spec else None

    @cached_property
    def wide(self) -> np.ndarray:
        """float64 weights: what scipy would convert the float32 ones to on every product (same bits)."""
        return self.weights.astype(np.float64)

    @property
    def coef(self) -> np.ndarray:
        return self.weights.T

    def proba(self, X) -> np.ndarray:
        return self.proba_from_products(np.asarray(X @ self.wide, dtype=np.float64))

    def proba_from_products(self, products: np.ndarray) -> np.ndarray:
        """The probabilities from `X @ wide` (notes x classes, C order)."""
        from scipy.special import expit

        s = products + self.intercept
        if self.kind == "binaries":
            return expit(self.platt[:, 0] * s + self.platt[:, 1])
        return _softmax(s / self.temperature)


class ArrayTriager(TriageDecision):
    """A fitted Triager's prediction, from the array format, without scikit-learn.

    It answers what the score, tag and serve paths ask of a model (`triage`, `predict_with_proba`,
    `predict_proba`, `mindset_presence_proba`, the fitted thresholds and label sets), with the
    same results as the Triager it was written from. Anything else (`fit`, `explain`,
    `get_params`) needs the pickled Triager: `registry.load_model()` without `predict_only`.
    """

    def __init__(self, meta: dict, blob: bytes | memoryview):
        if meta.get("format") != FORMAT:
            raise ValueError(f"array format {meta.get('format')!r}, this tousu reads {FORMAT}")
        buf = memoryview(blob)
        arrays = {}
        for name, a in meta["arrays"].items():
            dtype = np.dtype(a["dtype"])
            count = int(np.prod(a["shape"], dtype=np.int64))
            arrays[name] = np.frombuffer(buf, dtype=dtype, count=count, offset=a["offset"]).reshape(a["shape"])
        self.parts_ = [_Part(p, arrays) for p in meta["parts"]]
        heads = {k: _Head(v, arrays) for k, v in meta["heads"].items()}
        self.cause_head_, self.mindset_head_, self.level_head_ = heads["cause"], heads["mindset"], heads["risk_level"]
        self.flag_head_, self.mindset_any_head_ = heads["risk_flags"], heads["mindset_any"]
        self.classes_ = meta["classes"]
        t = meta["taxonomy"]
        self.taxonomy_ = Taxonomy(groups=t["groups"], causes=t["causes"], risk_levels=t["risk_levels"], flags=t["flags"],
                                  mindsets=t["mindsets"], threat_flags=tuple(t["threat_flags"]),
                                  exclusive_flags={k: tuple(v) for k, v in t["exclusive_flags"].items()})
        self.flag_thresholds_ = dict(meta["flag_thresholds"])
        self.flag_threshold_vec_ = np.array([self.flag_thresholds_[f] for f in self.flag_classes_])
        self.mindset_second_threshold_ = meta["mindset_second_threshold"]
        self.review_thresholds_ = dict(meta["review_thresholds"])
        self.risk_policy = meta["risk_policy"]

    #: the heads in the order `_proba_from_X` returns them
    _HEAD_NAMES = ("mindset_any", "cause", "risk_level", "risk_flags", "mindset")

    def _heads(self) -> list[_Head]:
        return [self.mindset_any_head_, self.cause_head_, self.level_head_, self.flag_head_, self.mindset_head_]

    @cached_property
    def _all_wide(self) -> np.ndarray:
        """Every head's float64 weights side by side (features x all classes)."""
        return np.hstack([h.weights for h in self._heads()]).astype(np.float64)

    def _proba_from_X(self, X) -> dict[str, np.ndarray]:
        """The five heads from one sparse product with all their weights side by side.

        Each column of a CSR-times-dense product is summed over the row's entries in storage order
        whatever the other columns are, so every head's block is bit for bit its own `X @ wide`
        (copied to C order, as that product is laid out); one pass over X reads each feature's
        weights of all heads at once instead of five times (5 heads, 1,000 notes: 17.5 -> 13.8 ms)."""
        products = np.asarray(X @ self._all_wide, dtype=np.float64)
        out, start = {}, 0
        for name, head in zip(self._HEAD_NAMES, self._heads()):
            end = start + head.weights.shape[1]
            out[name] = head.proba_from_products(np.ascontiguousarray(products[:, start:end]))
            start = end
        return out

    @classmethod
    def from_bytes(cls, meta_bytes: bytes, blob: bytes) -> "ArrayTriager":
        return cls(json.loads(meta_bytes.decode("utf-8")), blob)

    # ---------------------------------------------------------- the Triager's prediction, step for step

    def transform(self, texts: Sequence[str | NormalisedText]):
        docs = [t if isinstance(t, NormalisedText) else normalise(t) for t in texts]
        model_texts = [d.model_text for d in docs]
        blocks = [p.transform(model_texts) for p in self.parts_]
        return docs, sparse.hstack(blocks).tocsr()


def same_predictions(model, fast: ArrayTriager, texts: Iterable[str]) -> str | None:
    """None when the array model gives the fitted model's probabilities (bit for bit) and triages on
    these notes; else what differs. Run at save time, so a format that drifted from the Triager is
    never written."""
    texts = list(texts)
    a_tri, a_p = model.predict_with_proba(texts)
    b_tri, b_p = fast.predict_with_proba(texts)
    for head in a_p:
        if a_p[head].shape != b_p[head].shape or a_p[head].tobytes() != b_p[head].tobytes():
            return f"{head} probabilities differ"
    for head in ("mindset_any",):
        if model.mindset_presence_proba(texts[:5]).tobytes() != fast.mindset_presence_proba(texts[:5]).tobytes():
            return f"{head} probabilities differ"
    for i, (x, y) in enumerate(zip(a_tri, b_tri)):
        if x != y:
            return f"the triage of note {i} differs"
    return None
