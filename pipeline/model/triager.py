"""The Triager: one estimator for the four heads of labels.md.

Shape of the model, and why:
- one shared feature union (word + char TF-IDF + marker counts), fitted once;
- `cause` and `mindset`: multinomial logistic regression on the main label,
  with secondary labels as down-weighted targets of the same row so they rank in the top 3;
  the cause adds a linear SVM's scores to its logits (one matrix: see `_Blend`);
- `risk_flags`: twelve independent binary linear SVMs (squared hinge), Platt-scaled, each
  with a threshold tuned on out-of-fold predictions (not 0.5);
- `risk_level`: a learned multinomial model, reconciled with the flags by the
  spec's rule so the output never contradicts itself;
- calibration: temperature scaling (multiclass) and Platt scaling (binary),
  fitted on out-of-fold scores, so probabilities mean what they say.
Prediction is matrix algebra over the whole batch: no per-note model calls.

The estimator contract is scikit-learn's: parameters set in `__init__` and
checked in `fit(texts, labels)`, which returns self; learned state in
attributes ending in `_` (label sets in `classes_`, the label rule in
`taxonomy_`), read by prediction instead of the global taxonomy;
`NotFittedError` before fit. `predict` gives one column per head,
`predict_proba` one matrix per head, `score` one number; `triage` gives the
rich result (top-3 causes, evidence, review heads) that the flow renders.
"""
from __future__ import annotations

import logging
import numbers
import time
import weakref
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np
import pandas as pd
from scipy.optimize import minimize_scalar
from scipy.special import expit, log_softmax, softmax
from sklearn.base import BaseEstimator
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold
from sklearn.svm import LinearSVC
from sklearn.utils.validation import check_is_fitted
from threadpoolctl import threadpool_limits

from pipeline.contract.taxonomy import HEADS, RISK_LEVELS, Taxonomy, taxonomy
from pipeline.model.decide import NO_MINDSET, TriageDecision
from pipeline.model.features import build_features, transform_fast
from pipeline.model.forked import Forked
from pipeline.model.softmax import SoftmaxRegression
from pipeline.text.normalisation import NormalisedText, normalise

__all__ = ["Triager", "NO_MINDSET", "RISK_POLICIES"]

#: one line per training stage (`tousu train` and `retrain` print them on stderr)
progress = logging.getLogger("tousu.train")
#: L-BFGS correction pairs kept by the multiclass heads (scikit-learn keeps 10; see pipeline/model/softmax.py).
#: 6 keeps training under 1 GB (PSS) on the 9,825-note corpus: 1,000 MB at 10, 900-910 MB at 6, one more
#: second of training, slice-held-out figures unchanged (docs/model_selection.md, session 7)
LBFGS_MEMORY = 6
#: how the learned risk level and the flags' floor are reconciled (see `Triager._reconcile`)
RISK_POLICIES = ("flags", "max")


_WIDE: dict[int, np.ndarray] = {}  # id(float32 weights) -> their float64 copy, dropped with the weights


def _wide(weights: np.ndarray, X) -> np.ndarray:
    """The weights as the product with a float64 X uses them. scipy converts float32 weights to
    float64 on every product (the whole matrix, about a millisecond per head for one note); the
    copy is kept instead, so the result is the same bits at a fraction of the cost."""
    if getattr(X, "dtype", None) != np.float64 or weights.dtype != np.float32:
        return weights
    wide = _WIDE.get(id(weights))
    if wide is None:
        wide = weights.astype(np.float64)
        _WIDE[id(weights)] = wide
        weakref.finalize(weights, _WIDE.pop, id(weights), None)
    return wide


@dataclass
class _Linear:
    """A fitted linear head reduced to what prediction needs: weights, bias, calibration.

    Weights are stored (features, classes), float32, C-contiguous: the layout a
    sparse @ dense product wants without a copy per call, at half the size.
    """

    classes: list[str]
    weights: np.ndarray
    intercept: np.ndarray
    temperature: float = 1.0  # multiclass
    platt: tuple[float, float] = (1.0, 0.0)  # binary: p = sigmoid(a * score + b)

    @classmethod
    def from_coef(cls, classes: list[str], coef: np.ndarray, intercept: np.ndarray, **kw) -> "_Linear":
        return cls(list(classes), np.ascontiguousarray(coef.T, dtype=np.float32), np.asarray(intercept, dtype=np.float64), **kw)

    @property
    def coef(self) -> np.ndarray:
        return self.weights.T

    def scores(self, X) -> np.ndarray:
        return np.asarray(X @ _wide(self.weights, X), dtype=np.float64) + self.intercept

    def proba(self, X) -> np.ndarray:
        s = self.scores(X)
        if len(self.classes) == 1:
            a, b = self.platt
            return expit(a * s[:, 0] + b)
        return softmax(s / self.temperature, axis=1)


@dataclass
class _Binaries:
    """Independent binary heads as one matrix product; Platt scaling per column."""

    classes: list[str]
    weights: np.ndarray  # (features, heads) float32
    intercept: np.ndarray
    platt: np.ndarray  # (heads, 2)

    @property
    def coef(self) -> np.ndarray:
        return self.weights.T

    def proba(self, X) -> np.ndarray:
        s = np.asarray(X @ _wide(self.weights, X), dtype=np.float64) + self.intercept
        return expit(self.platt[:, 0] * s + self.platt[:, 1])


def _stack(classes: list[str], heads: list[_Linear]) -> _Binaries:
    return _Binaries(list(classes), np.ascontiguousarray(np.hstack([h.weights for h in heads])),
                     np.concatenate([h.intercept for h in heads]), np.array([h.platt for h in heads]))


@dataclass
class _Blend:
    """A multiclass head's scores over every class of the head: the softmax regression's logits
    (-30 for a class it never saw), plus a linear SVM's one-vs-rest scores at a weight. Both are linear
    in the features, so the blend is one coefficient matrix and one intercept."""

    coef: np.ndarray  # (classes, features)
    intercept: np.ndarray

    @classmethod
    def of(cls, lr: SoftmaxRegression, n_classes: int) -> "_Blend":
        coef = np.zeros((n_classes, lr.coef_.shape[1]))
        intercept = np.full(n_classes, -30.0)
        coef[lr.classes_] = lr.coef_
        intercept[lr.classes_] = lr.intercept_
        return cls(coef, intercept)

    @staticmethod
    def _svm_rows(svm: LinearSVC, n_labels: int, n_features: int) -> tuple[np.ndarray, np.ndarray]:
        """A one-vs-rest SVM's coefficients and intercepts for labels 0..n_labels-1; a label the SVM never
        saw scores -1 there (the margin's 'not this label' side), and a two-label SVM's one column scores
        the first label as the second's negated."""
        coef, intercept = svm.coef_, svm.intercept_
        if len(svm.classes_) == 2:
            coef, intercept = np.vstack([-coef, coef]), np.concatenate([-intercept, intercept])
        rows = np.zeros((n_labels, n_features))
        bias = np.full(n_labels, -1.0)
        rows[svm.classes_] = coef
        bias[svm.classes_] = intercept
        return rows, bias

    def add_hinge(self, svm: LinearSVC, weight: float) -> None:
        """The SVM's score of each class, at a weight."""
        coef, intercept = self._svm_rows(svm, *self.coef.shape)
        self.coef += weight * coef
        self.intercept += weight * intercept

    def add_group_hinge(self, svm: LinearSVC, group_of_class: np.ndarray, weight: float) -> None:
        """A linear SVM on the classes' groups: each class gets its group's score at a weight. The flat head
        ranks causes; this says which of the five groups the dispute is in."""
        coef, intercept = self._svm_rows(svm, int(group_of_class.max()) + 1, self.coef.shape[1])
        self.coef += weight * coef[group_of_class]
        self.intercept += weight * intercept[group_of_class]

    def decision_function(self, X) -> np.ndarray:
        return np.asarray(X @ self.coef.T) + self.intercept


class _Stages:
    """Logs each training stage with its seconds, so a long fit shows where it is."""

    def __init__(self) -> None:
        self.start = self.last = time.perf_counter()

    def done(self, what: str) -> None:
        now = time.perf_counter()
        progress.info("%s (%.1fs, %.1fs in all)", what, now - self.last, now - self.start)
        self.last = now


def _fit_temperature(logits: np.ndarray, y: np.ndarray) -> float:
    def nll(t: float) -> float:
        return -log_softmax(logits / t, axis=1)[np.arange(len(y)), y].mean()

    return float(minimize_scalar(nll, bounds=(0.05, 20.0), method="bounded").x)


def _fit_platt(scores: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    lr = LogisticRegression(C=1e4, max_iter=1000).fit(scores.reshape(-1, 1), y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


#: thresholds whose out-of-fold F-beta is within this of the best count as equally good; the cut is the
#: middle of them. On a flat F curve the single best cut moves with every retrain (anger's went 0.30 ->
#: 0.425 -> 0.575 across three corpora), and a note near it flips with it.
THRESHOLD_PLATEAU = 0.005


def _best_threshold(proba: np.ndarray, y: np.ndarray, beta: float = 1.0, plateau: float = THRESHOLD_PLATEAU) -> float:
    """The probability cut for a flag: the middle of the cuts whose F-beta on out-of-fold predictions is
    within `plateau` of the best (beta > 1 favours recall)."""
    b2 = beta * beta
    cuts = np.arange(0.1, 0.91, 0.025)
    scores = []
    for t in cuts:
        pred = proba >= t
        tp = np.sum(pred & (y == 1))
        fp = np.sum(pred & (y == 0))
        fn = np.sum(~pred & (y == 1))
        scores.append((1 + b2) * tp / ((1 + b2) * tp + b2 * fn + fp) if tp else 0.0)
    scores = np.array(scores)
    good = cuts[scores >= scores.max() - plateau - 1e-12]
    return round(float(good[len(good) // 2]), 3)


def _second_threshold(main_oof: np.ndarray, any_oof: np.ndarray, gold: list[list[str]], classes: list[str]) -> float:
    """The cut on 'mindset present' probability that best predicts the second mindset (F1, out of fold)."""
    main = main_oof.argmax(1)
    cand, cand_p = [], []
    for i in range(len(gold)):
        ranked = [j for j in np.argsort(-any_oof[i]) if j != main[i]]
        cand.append(ranked[0]); cand_p.append(any_oof[i, ranked[0]])
    cand_p = np.array(cand_p)
    truth = [classes.index(g[1]) if len(g) > 1 else -1 for g in gold]
    best_t, best_f = 0.5, -1.0
    for t in np.arange(0.1, 0.71, 0.025):
        tp = sum(1 for c, p, g in zip(cand, cand_p, truth) if p >= t and c == g)
        fp = sum(1 for c, p, g in zip(cand, cand_p, truth) if p >= t and c != g)
        fn = sum(1 for c, p, g in zip(cand, cand_p, truth) if g >= 0 and not (p >= t and c == g))
        f = 2 * tp / (2 * tp + fp + fn) if tp else 0.0
        if f > best_f + 1e-9:
            best_t, best_f = float(t), f
    return round(best_t, 3)


def _review_threshold(top_proba: np.ndarray, correct: np.ndarray, floor_accuracy: float = 0.5) -> float:
    """Below this top probability the head is right less than half the time: ask a person."""
    best = 0.0
    for t in np.arange(0.2, 0.81, 0.05):
        below = top_proba < t
        if below.sum() >= 10 and correct[below].mean() < floor_accuracy:
            best = float(t)
    return round(best, 3)


def _nb_ratio(present, y: np.ndarray, alpha: float = 1.0) -> np.ndarray:
    """|log-count ratio| of each feature between the positive and the negative rows (smoothed):
    how much a feature's presence tells the two apart, whichever way."""
    pos = np.asarray(present[y == 1].sum(0)).ravel() + alpha
    neg = np.asarray(present[y == 0].sum(0)).ravel() + alpha
    return np.abs(np.log((pos / pos.sum()) / (neg / neg.sum())))


def _is_int(v) -> bool:
    return isinstance(v, numbers.Integral) and not isinstance(v, bool)


def _is_number(v) -> bool:
    return isinstance(v, numbers.Real) and not isinstance(v, bool) and bool(np.isfinite(v))


def _check_ngram_range(name: str, value) -> None:
    if not (isinstance(value, (tuple, list)) and len(value) == 2 and all(_is_int(v) for v in value)
            and 1 <= value[0] <= value[1]):
        raise ValueError(f"{name} must be a pair (low, high) of whole numbers with 1 <= low <= high, got {value!r}.")


def _label_frame(texts, labels) -> tuple[list, pd.DataFrame]:
    """Texts and labels as fit wants them; one frame with a `text` column is accepted for older callers."""
    if labels is None:
        if isinstance(texts, pd.DataFrame) and "text" in texts.columns:
            labels, texts = texts, texts["text"]
        else:
            raise TypeError("fit needs labels: fit(texts, labels) with labels a DataFrame of cause, risk_level, "
                            "risk_flags and mindset (or one DataFrame with a text column as well).")
    if not isinstance(labels, pd.DataFrame):
        raise TypeError(f"labels must be a DataFrame in the label-file format, got {type(labels).__name__}.")
    missing = [h for h in HEADS if h not in labels.columns]
    if missing:
        raise ValueError(f"labels lack the column(s) {missing}; the label-file format has {list(HEADS)}.")
    texts = list(texts)
    if len(texts) != len(labels):
        raise ValueError(f"{len(texts)} texts but {len(labels)} label rows; give one label row per text.")
    return texts, labels.reset_index(drop=True)


def _check_label_ids(labels: pd.DataFrame, tax: Taxonomy) -> None:
    """Every label id in the taxonomy, every note with a main cause: a typo must not become a class."""
    known = {"cause": set(tax.cause_ids), "risk_level": set(RISK_LEVELS), "risk_flags": set(tax.flag_ids),
             "mindset": set(tax.mindset_ids)}
    for head in HEADS:
        bad: set[str] = set()
        for value in labels[head]:
            ids = [value] if head == "risk_level" else list(value)
            if head == "cause" and not ids:
                raise ValueError("a label row has no cause; every note needs a main cause.")
            bad.update(str(i) for i in ids if i not in known[head])
        if bad:
            raise ValueError(f"unknown {head} id(s) {sorted(bad)[:5]}; the taxonomy has {sorted(known[head])[:40]}.")


class Triager(TriageDecision, BaseEstimator):
    """Predicts cause, risk_level, risk_flags and mindset for Chinese complaint notes.

    >>> model = Triager().fit(train_df["text"], train_df)     # doctest: +SKIP
    >>> model.predict(["客户称再不退保就找记者曝光"])            # doctest: +SKIP
       cause     risk_level  risk_flags        mindset
    0  ...       high        [media_threat]    [...]
    >>> model.triage(["客户称再不退保就找记者曝光"])[0].cause  # doctest: +SKIP
    """

    def __init__(self, word_ngrams: tuple[int, int] = (1, 2), char_ngrams: tuple[int, int] | None = (1, 3),
                 markers: bool = True, marker_weight: float = 0.15, min_df: int = 2, C: float = 10.0,
                 flag_C: float = 10.0, secondary_weight: float = 0.3,
                 risk_policy: str = "flags", cv: int = 3, oof_max_rows: int = 6000, tol: float = 3e-4, n_jobs: int = -1,
                 random_state: int = 0, escalation_beta: float = 1.0, mindset_balance: float = 0.8,
                 generated_weight: float = 1.0, multiclass_cv: int | None = None, demand_weight: float = 0.0,
                 cause_secondary_weight: float = 0.1, flag_nb: float = 1.0,
                 flag_nb_except: tuple[str, ...] = ("self_harm_threat", "excessive_demand"),
                 cause_marker_weight: float | None = 0.0, max_features: int = 60_000,
                 cause_hinge_weight: float = 4.0, hinge_C: float = 1.0, flag_svm_C: float | None = 3.0,
                 cause_group_weight: float = 0.0, group_C: float = 0.3):
        self.word_ngrams = word_ngrams
        self.char_ngrams = char_ngrams
        self.markers = markers
        self.marker_weight = marker_weight
        self.min_df = min_df
        self.C = C
        self.flag_C = flag_C
        self.secondary_weight = secondary_weight
        self.risk_policy = risk_policy
        self.cv = cv
        self.oof_max_rows = oof_max_rows
        self.tol = tol
        self.n_jobs = n_jobs
        self.random_state = random_state
        # F-beta for the flags that call for an escalation (high-severity and threat flags): missing
        # a self-harm or a regulator threat costs more than a second look at a false one
        self.escalation_beta = escalation_beta
        # 0: main mindsets weighted as they come; 1: inversely to their frequency (remedy dominates);
        # 0.6 chosen on slice-held-out figures in session 4 (mindset top-1 0.779 -> 0.792), 0.8 in session 11 on
        # the 72-slice corpus (0.700 -> 0.704; 141 notes right only at 0.8, 101 only at 0.6; docs/model_selection.md)
        self.mindset_balance = mindset_balance
        # weight of generated notes (source == "generated") against hand-written ones
        self.generated_weight = generated_weight
        # weight of the demand clauses' own word block (0: off); the demand names the main cause
        self.demand_weight = demand_weight
        # weight of a note's secondary causes in the cause head (`secondary_weight` is the
        # second mindset's): low, so the main cause (the dispute to settle) outranks the cause behind it;
        # 0.1 chosen on slice-held-out figures (cause top-1 0.812 -> 0.821 against 0.3; model_selection.md)
        self.cause_secondary_weight = cause_secondary_weight
        # folds for the multiclass heads' out-of-fold scores (temperature, review thresholds); None: cv.
        # Each fold is a whole L-BFGS fit; 2 instead of 3 trains in 0.7x the time with the same held-out
        # figures, but a worse calibration (cause ECE 0.041 -> 0.046) and other review cuts (issue 19)
        self.multiclass_cv = multiclass_cv
        # NB-SVM scaling of the flag heads' features (0: off; see _fit_flags), except for the flags in
        # `flag_nb_except`: on slice-held-out figures it lifts flag micro-F1 0.862 -> 0.877, but costs
        # self-harm (F1 0.92 -> 0.83) and excessive demand (0.85 -> 0.78) (docs/model_selection.md)
        self.flag_nb = flag_nb
        self.flag_nb_except = flag_nb_except
        # the marker block's weight for the cause head (None: `marker_weight`). The lexicon's words say
        # how the customer behaves (threats, anger, repeats), which the flags need and the cause does
        # not; the cause head sees them at this weight, folded into its coefficients. Slice-held-out
        # (docs/model_selection.md, session 7): markers 0.3 for every head -> 0.15, and 0 for the cause:
        # cause top-1 0.824 -> 0.829, group 0.874 -> 0.878, risk 0.882 -> 0.887, flags 0.895 -> 0.898
        self.cause_marker_weight = cause_marker_weight
        # the word and the character blocks each keep their most frequent n-grams up to this many
        self.max_features = max_features
        # a linear SVM (squared hinge, one-vs-rest, `hinge_C`) on the main label (a secondary label as a row
        # at the secondary weight), its scores added at this weight to the head's logits before the
        # temperature is fitted (0: off). Both are linear in the features, so the blend is one weight
        # matrix and prediction costs the same. The hinge loss cares only about the notes near a boundary,
        # which is where the main and the secondary cause part; slice-held-out (docs/model_selection.md,
        # session 14): cause top-1 0.837 -> 0.848
        self.cause_hinge_weight = cause_hinge_weight
        self.hinge_C = hinge_C
        # a linear SVM at `group_C` on the main cause's group (contract, sales, service, staff, company), its
        # score added at this weight to every cause of the group (0: off); one more term of the same matrix.
        # Off: slice-held-out (docs/model_selection.md, session 15) at 1 the group rises 0.897 -> 0.900, but
        # the causes of the first group crowd the top 3 and a secondary cause of another group (the person
        # behind the dispute: the seed's sales_misrepresentation) is in the top 3 for 0.769 of the notes
        # that have one instead of 0.794
        self.cause_group_weight = cause_group_weight
        self.group_C = group_C
        # the flags' binary heads are linear SVMs (squared hinge) at this C, Platt-scaled like the logistic
        # ones; None: logistic regressions at `flag_C`. Slice-held-out (docs/model_selection.md, session 14)
        self.flag_svm_C = flag_svm_C

    # ------------------------------------------------------------ fitting

    def _lr(self, C: float) -> SoftmaxRegression:
        return SoftmaxRegression(C=C, max_iter=3000, tol=self.tol, memory=LBFGS_MEMORY)

    def _svm(self, C: float, class_weight: str | None = None) -> LinearSVC:
        # the dual problem (notes, not features), as `_binary_lr`; seeded, fitted one after another
        return LinearSVC(C=C, max_iter=3000, class_weight=class_weight, dual=True, random_state=self.random_state)

    def _fit_multiclass(self, X, main: list[str], extra: list[list[str]], classes: list[str], C: float, sub: np.ndarray,
                        row_weight: np.ndarray | None = None, balance: float = 0.0, secondary: float | None = None,
                        column_scale: np.ndarray | None = None, hinge: float = 0.0,
                        group_of_class: np.ndarray | None = None, group_weight: float = 0.0):
        """Each note's main label at weight 1, its secondary labels on the same row at a lower weight
        (`secondary`, default `secondary_weight`). Out-of-fold scores come from the rows in `sub`; the final fit uses
        every row. `column_scale`: this head sees each feature column times its scale, folded into the
        coefficients, so prediction is the shared matrix product. `hinge` > 0: a linear SVM's scores at
        `hinge_C` (the main label, and the secondary ones at `secondary`) are added at that weight (`_Blend`);
        `group_weight` > 0: a linear SVM's scores at `group_C` on the main label's group (`group_of_class`
        maps each class to its group's index) are added to each class at that weight."""
        if column_scale is not None:
            X = X.multiply(column_scale).tocsr()
        secondary = self.secondary_weight if secondary is None else secondary
        index = {c: i for i, c in enumerate(classes)}
        counts = pd.Series(main).value_counts()
        class_w = {c: (len(main) / (len(counts) * counts[c])) ** balance for c in counts.index}
        rw = row_weight if row_weight is not None else np.ones(len(main))
        # one row per note, a weight per class: the main label at the row's weight, each secondary label at
        # `secondary` of it (the objective of extra rows for the secondary labels, without copying the rows)
        T = np.zeros((len(main), len(classes)))
        # the SVM's rows (hinge > 0): the same weights, one row per label, since liblinear takes one label per
        # row: each note's main label, and each secondary one as a copy of the row, so the SVM ranks it too
        svm_note, svm_y, svm_w = [], [], []
        for i, (m, more) in enumerate(zip(main, extra)):
            T[i, index[m]] += rw[i] * class_w[m]
            for s in more:
                T[i, index[s]] += rw[i] * secondary
            if hinge > 0:
                svm_note += [i] * (1 + len(more))
                svm_y += [index[m]] + [index[s] for s in more]
                svm_w += [rw[i] * class_w[m]] + [rw[i] * secondary] * len(more)
        svm_note, svm_y, svm_w = np.array(svm_note, dtype=int), np.array(svm_y, dtype=int), np.array(svm_w)
        y_main = np.array([index[m] for m in main])
        # out-of-fold logits on the main label, for calibration and review thresholds
        folds = [(sub[tr], sub[te]) for tr, te in
                 StratifiedKFold(self.multiclass_cv or self.cv, shuffle=True, random_state=self.random_state)
                 .split(np.zeros(len(sub)), y_main[sub])]

        def fit(keep: np.ndarray | None) -> "_Blend":
            Xk, Tk = (X, T) if keep is None else (X[keep], T[keep])
            lr = self._lr(C).fit_targets(Xk, Tk)
            blend = _Blend.of(lr, len(classes))
            if hinge > 0:
                rows = np.ones(len(svm_note), bool) if keep is None else np.isin(svm_note, keep)
                svm = self._svm(self.hinge_C).fit(X[svm_note[rows]], svm_y[rows], sample_weight=svm_w[rows])
                blend.add_hinge(svm, hinge)
            if group_weight > 0:
                rows = np.arange(X.shape[0]) if keep is None else keep
                groups = self._svm(self.group_C).fit(Xk, group_of_class[y_main[rows]], sample_weight=rw[rows])
                blend.add_group_hinge(groups, group_of_class, group_weight)
            return blend

        # one fit after another, each fold's model dropped once it has scored its rows: each fit of the
        # cause head holds a few hundred megabytes of L-BFGS memory (two at once took training past 2 GB)
        oof = np.zeros((X.shape[0], len(classes)))
        for tr, te in folds:
            oof[te] = fit(tr).decision_function(X[te])  # sub and each fold's indices are sorted: the notes' order
        final = fit(None)
        temperature = _fit_temperature(oof[sub], y_main[sub])
        coef = final.coef if column_scale is None else final.coef * column_scale
        head = _Linear.from_coef(classes, coef, final.intercept, temperature=temperature)
        oof_proba = softmax(oof[sub] / temperature, axis=1)
        return head, oof_proba, y_main[sub]

    def _cause_groups(self, tax: Taxonomy) -> np.ndarray:
        """Each cause class's group, as an index into the taxonomy's groups."""
        return np.array([tax.group_ids.index(tax.group_of(c)) for c in self.cause_classes_])

    def _cause_column_scale(self, features) -> np.ndarray | None:
        """Per feature column, the cause head's scale: `cause_marker_weight / marker_weight` on the marker
        block, 1 elsewhere; None when the cause head sees what the others see."""
        if self.cause_marker_weight is None or not self.markers or self.cause_marker_weight == self.marker_weight:
            return None
        ratio = self.cause_marker_weight / self.marker_weight if self.marker_weight else 0.0
        in_markers = np.char.startswith(features.get_feature_names_out().astype(str), "marker__")
        return np.where(in_markers, ratio, 1.0)

    def _binary_lr(self, C: float) -> LogisticRegression:
        # the dual problem: far fewer variables than the primal here (notes, not ~90k features), the same
        # objective; about five times faster per fit (issue 19). Its coordinate descent draws a random order:
        # seeded, and fits run one after another (liblinear's generator is one per process, not per fit)
        return LogisticRegression(C=C, max_iter=3000, class_weight="balanced", solver="liblinear", dual=True,
                                  random_state=self.random_state)

    def _fit_flags(self, X, Y: np.ndarray, C: float, sub: np.ndarray,
                   nb: Sequence[float] | None = None, svm_C: float | None = None) -> tuple[list[_Linear], np.ndarray]:
        """Independent binary heads (flags; mindset present anywhere): out-of-fold scores on the
        rows in `sub` for Platt scaling and thresholds, then the final fits on every row.

        `nb[j]` > 0: head j sees its features scaled by their naive-Bayes log-count ratio (NB-SVM,
        Wang & Manning 2012) raised to `nb[j]`, counted on that fit's own rows; the scaling folds into
        the weights, so prediction is the same matrix product. `svm_C`: each head a linear SVM (squared hinge,
        classes balanced) at that C instead of a logistic regression at `C`."""
        n, k = Y.shape
        strata = Y.argmax(1) + Y.sum(1)
        folds = [(sub[tr], sub[te]) for tr, te in
                 StratifiedKFold(self.cv, shuffle=True, random_state=self.random_state).split(np.zeros(len(sub)), strata[sub])]
        nb = [0.0] * k if nb is None else list(nb)
        present = (X > 0).astype(np.float64).tocsr() if any(nb) else None

        def fit(rows, j):
            scale = _nb_ratio(present[rows], Y[rows, j]) ** nb[j] if nb[j] > 0 else None
            model = self._binary_lr(C) if svm_C is None else self._svm(svm_C, class_weight="balanced")
            model.fit(X[rows] if scale is None else X[rows].multiply(scale).tocsr(), Y[rows, j])
            if scale is not None:
                model.coef_ = model.coef_ * scale
            return model

        everything = np.arange(n)
        tasks = [(fit, tr, j) for j in range(k) for tr, _ in folds] + [(fit, everything, j) for j in range(k)]
        fitted = [fn(*args) for fn, *args in tasks]  # in order: see _binary_lr
        oof = np.zeros((n, k))
        heads = []
        for j in range(k):
            for f, (_, te) in enumerate(folds):
                oof[te, j] = fitted[j * len(folds) + f].decision_function(X[te])
            a, b = _fit_platt(oof[sub, j], Y[sub, j])
            final = fitted[k * len(folds) + j]
            heads.append(_Linear.from_coef(["yes"], final.coef_, final.intercept_, platt=(a, b)))
            oof[:, j] = expit(a * oof[:, j] + b)
        return heads, oof[sub]

    def _check_params(self) -> None:
        """Parameters are checked here, at fit, as scikit-learn does: a typo fails loudly, not silently."""
        if self.risk_policy not in RISK_POLICIES:
            raise ValueError(f"risk_policy must be one of {list(RISK_POLICIES)}, got {self.risk_policy!r}.")
        _check_ngram_range("word_ngrams", self.word_ngrams)
        if self.char_ngrams is not None:
            _check_ngram_range("char_ngrams", self.char_ngrams)
        if not isinstance(self.markers, (bool, np.bool_)):
            raise ValueError(f"markers must be True or False, got {self.markers!r}.")
        if isinstance(self.flag_nb_except, str) or not all(isinstance(f, str) for f in self.flag_nb_except):
            raise ValueError(f"flag_nb_except must be a tuple of flag ids, got {self.flag_nb_except!r}.")
        if not ((_is_int(self.min_df) and self.min_df >= 1)
                or (_is_number(self.min_df) and not _is_int(self.min_df) and 0 < self.min_df <= 1)):
            raise ValueError(f"min_df must be a whole number >= 1 or a share in (0, 1], got {self.min_df!r}.")
        for name in ("C", "flag_C", "tol", "hinge_C", "group_C"):
            value = getattr(self, name)
            if not (_is_number(value) and value > 0):
                raise ValueError(f"{name} must be a positive number, got {value!r}.")
        if not (self.flag_svm_C is None or (_is_number(self.flag_svm_C) and self.flag_svm_C > 0)):
            raise ValueError(f"flag_svm_C must be None or a positive number, got {self.flag_svm_C!r}.")
        if not (self.cause_marker_weight is None or (_is_number(self.cause_marker_weight) and self.cause_marker_weight >= 0)):
            raise ValueError(f"cause_marker_weight must be None or a number >= 0, got {self.cause_marker_weight!r}.")
        for name in ("marker_weight", "secondary_weight", "cause_secondary_weight", "generated_weight", "mindset_balance",
                     "demand_weight", "flag_nb", "cause_hinge_weight", "cause_group_weight"):
            value = getattr(self, name)
            if not (_is_number(value) and value >= 0):
                raise ValueError(f"{name} must be a number >= 0, got {value!r}.")
        if not (_is_int(self.max_features) and self.max_features >= 1):
            raise ValueError(f"max_features must be a whole number >= 1, got {self.max_features!r}.")
        if not (_is_number(self.escalation_beta) and self.escalation_beta > 0):
            raise ValueError(f"escalation_beta must be a positive number, got {self.escalation_beta!r}.")
        if not (_is_int(self.cv) and self.cv >= 2):
            raise ValueError(f"cv must be a whole number >= 2 (folds for calibration), got {self.cv!r}.")
        if not (self.multiclass_cv is None or (_is_int(self.multiclass_cv) and self.multiclass_cv >= 2)):
            raise ValueError(f"multiclass_cv must be None or a whole number >= 2, got {self.multiclass_cv!r}.")
        if not (_is_int(self.oof_max_rows) and self.oof_max_rows >= self.cv):
            raise ValueError(f"oof_max_rows must be a whole number >= cv ({self.cv}), got {self.oof_max_rows!r}.")
        if not (self.n_jobs is None or (_is_int(self.n_jobs) and self.n_jobs != 0)):
            raise ValueError(f"n_jobs must be None or a non-zero whole number (-1: every core), got {self.n_jobs!r}.")
        if not _is_int(self.random_state):
            raise ValueError(f"random_state must be a whole number, got {self.random_state!r}.")

    def fit(self, texts: Sequence[str] | pd.DataFrame, labels: pd.DataFrame | None = None) -> "Triager":
        """Fit every head; `labels` is a frame in the label-file format (cause, risk_level,
        risk_flags, mindset; lists as lists), one row per text. Returns self.

        `fit(frame)` with one frame holding a `text` column as well is accepted, for older callers.
        """
        self._check_params()
        # one BLAS thread per process: the solver's vector work is memory-bound, and the forked second
        # process with two BLAS threads each put four busy threads on a 2-core machine (training took
        # 57 s instead of 39 s, the same fits; issue 19)
        with threadpool_limits(limits=1):
            return self._fit(texts, labels)

    def _fit(self, texts, labels) -> "Triager":
        texts, df = _label_frame(texts, labels)
        tax = taxonomy()
        _check_label_ids(df, tax)
        unknown = sorted(set(self.flag_nb_except) - set(tax.flag_ids))
        if unknown:
            raise ValueError(f"flag_nb_except names unknown flag(s) {unknown}; the flags are {tax.flag_ids}.")
        stages = _Stages()
        texts = [normalise(t).model_text for t in texts]
        features = build_features(self.word_ngrams, self.char_ngrams, self.markers, self.min_df,
                                  marker_weight=self.marker_weight, demand_weight=self.demand_weight,
                                  max_features=self.max_features)
        X = features.fit_transform(texts).tocsr()
        stages.done(f"features: {X.shape[0]:,} notes, {X.shape[1]:,} features")
        self.features_ = features
        # the label sets and the label rule are fitted state: prediction never reads the global taxonomy
        self.taxonomy_ = tax
        self.classes_ = {"cause": tax.cause_ids, "risk_level": list(RISK_LEVELS), "risk_flags": tax.flag_ids,
                         "mindset": tax.mindset_ids + [NO_MINDSET]}
        # calibration and thresholds need out-of-fold scores, but not on every row of a large set
        n = len(df)
        sub = np.arange(n) if n <= self.oof_max_rows else np.sort(
            np.random.default_rng(self.random_state).choice(n, self.oof_max_rows, replace=False))
        generated = np.asarray(df["source"] == "generated") if "source" in df.columns else np.zeros(n, bool)
        rw = np.where(generated, self.generated_weight, 1.0)
        causes = [list(c) for c in df["cause"]]
        minds = [list(m) for m in df["mindset"]]
        self.cause_head_, cause_oof, cause_y = self._fit_multiclass(
            X, [c[0] for c in causes], [c[1:] for c in causes], self.cause_classes_, self.C, sub, rw,
            secondary=self.cause_secondary_weight, column_scale=self._cause_column_scale(features),
            hinge=self.cause_hinge_weight, group_weight=self.cause_group_weight,
            group_of_class=self._cause_groups(tax) if self.cause_group_weight > 0 else None)
        stages.done(f"cause: {self.multiclass_cv or self.cv} folds and the final fit")
        # mindset and risk level fit in a forked second process while the flags fit here: L-BFGS holds
        # the GIL, so only a process overlaps them; the same fits, the same results. Not beside the cause
        # head: its L-BFGS memory and the child's together were the whole run's peak (about 1 GB)
        side = Forked(lambda: (
            self._fit_multiclass(X, [m[0] if m else NO_MINDSET for m in minds], [m[1:] for m in minds],
                                 self.mindset_classes_, self.C, sub, rw, balance=self.mindset_balance),
            self._fit_multiclass(X, list(df["risk_level"]), [[] for _ in range(len(df))], self.level_classes_,
                                 self.C, sub, rw)), use_fork=self.n_jobs not in (None, 1))
        flag_sets = [set(f) for f in df["risk_flags"]]
        Y = np.array([[f in s for f in self.flag_classes_] for s in flag_sets], dtype=int)
        nb = [0.0 if f in self.flag_nb_except else self.flag_nb for f in self.flag_classes_]
        heads, flag_oof_m = self._fit_flags(X, Y, self.flag_C, sub, nb=nb, svm_C=self.flag_svm_C)
        stages.done(f"risk flags: {len(self.flag_classes_)} binary heads")
        self.flag_head_ = _stack(self.flag_classes_, heads)
        escalation = set(tax.high_flags) | set(tax.threat_flags)
        self.flag_thresholds_ = {f: _best_threshold(flag_oof_m[:, j], Y[sub, j],
                                                    beta=self.escalation_beta if f in escalation else 1.0)
                                 for j, f in enumerate(self.flag_classes_)}
        self.flag_threshold_vec_ = np.array([self.flag_thresholds_[f] for f in self.flag_classes_])
        # a second mindset needs its own yes/no evidence: the main-label softmax is too peaked for it
        M = np.array([[m in ms for m in self.mindset_classes_[:-1]] for ms in minds], dtype=int)
        m_heads, m_oof = self._fit_flags(X, M, self.C, sub)
        stages.done("mindset presence")
        (self.mindset_head_, mind_oof, mind_y), (self.level_head_, level_oof, level_y) = side.result()
        stages.done("mindset and risk level (a second process)" if side.proc is not None else "mindset and risk level")
        self.mindset_any_head_ = _stack(self.mindset_classes_[:-1], m_heads)
        self.mindset_second_threshold_ = _second_threshold(mind_oof, m_oof, [minds[i] for i in sub], self.mindset_classes_)
        self.review_thresholds_ = {
            "cause": _review_threshold(cause_oof.max(1), cause_oof.argmax(1) == cause_y),
            "mindset": _review_threshold(mind_oof.max(1), mind_oof.argmax(1) == mind_y),
            "risk_level": _review_threshold(level_oof.max(1), level_oof.argmax(1) == level_y),
        }
        self.oof_ = {"cause": (cause_oof, cause_y), "mindset": (mind_oof, mind_y), "risk_level": (level_oof, level_y),
                     "risk_flags": (flag_oof_m, Y[sub])}
        self.n_train_ = len(df)
        return self

    # ------------------------------------------------------------ fitted state

    def __sklearn_is_fitted__(self) -> bool:
        return hasattr(self, "flag_head_")

    # ------------------------------------------------------------ predicting

    def _normalised(self, texts: Iterable[str]) -> list[NormalisedText]:
        return [t if isinstance(t, NormalisedText) else normalise(t) for t in texts]

    def transform(self, texts: Sequence[str | NormalisedText]):
        check_is_fitted(self)
        docs = self._normalised(texts)
        return docs, transform_fast(self.features_, [d.model_text for d in docs])

    def predict(self, texts: Sequence[str | NormalisedText]) -> pd.DataFrame:
        """One row per note, one column per head: cause (the main cause id), risk_level,
        risk_flags (list) and mindset (list, main first); the labels `triage` gives."""
        triages = self.triage(texts)
        return pd.DataFrame({
            "cause": [t.cause[0] for t in triages],
            "risk_level": [t.risk_level for t in triages],
            "risk_flags": [list(t.risk_flags) for t in triages],
            "mindset": [list(t.mindset) for t in triages],
        }, columns=list(HEADS))

    def score(self, texts: Sequence[str], labels: pd.DataFrame) -> float:
        """The mean of the six headline metrics of the evaluation (cause top-1 and top-3, cause group,
        risk-level macro F1, flag micro F1, mindset top-1) on labelled notes; higher is better."""
        from pipeline.model.evaluation import HEADLINE, Prediction
        from pipeline.model.evaluation import score as score_set

        check_is_fitted(self)
        texts, gold = _label_frame(texts, labels)
        metrics = score_set(gold, [Prediction.of(t) for t in self.triage(texts)])
        return float(np.mean([metrics[k] for k in HEADLINE]))

    # ------------------------------------------------------------ explaining

    def explain(self, text: str, top: int = 8) -> dict[str, list[tuple[str, float]]]:
        """For each predicted label, the features present in the note that pushed it up most."""
        doc, X = self.transform([text])
        x = X[0]
        names = self.feature_names_()
        triage = self._triage(doc[0], {k: v[0] for k, v in self._proba_from_X(X).items()})
        out: dict[str, list[tuple[str, float]]] = {}

        def top_features(weights: np.ndarray) -> list[tuple[str, float]]:
            contrib = x.multiply(weights).tocsr()
            idx, vals = contrib.indices, contrib.data
            best = np.argsort(-vals)[:top]
            return [(names[idx[k]], round(float(vals[k]), 4)) for k in best if vals[k] > 0]

        for c in triage.cause:
            out[f"cause:{c}"] = top_features(self.cause_head_.coef[self.cause_classes_.index(c)])
        for f in triage.risk_flags:
            out[f"risk_flags:{f}"] = top_features(self.flag_head_.coef[self.flag_classes_.index(f)])
        for m in triage.mindset:
            out[f"mindset:{m}"] = top_features(self.mindset_head_.coef[self.mindset_classes_.index(m)])
        out[f"risk_level:{triage.risk_level}"] = top_features(self.level_head_.coef[self.level_classes_.index(triage.risk_level)])
        return out

    def feature_names_(self) -> np.ndarray:
        check_is_fitted(self)
        if not hasattr(self, "_names"):
            self._names = self.features_.get_feature_names_out()
        return self._names

    def __setstate__(self, state: dict) -> None:
        # a model saved before an option existed was fitted without it: its neutral value
        state.setdefault("demand_weight", 0.0)
        state.setdefault("flag_nb", 0.0)
        state.setdefault("flag_nb_except", ())
        state.setdefault("cause_marker_weight", None)
        state.setdefault("multiclass_cv", None)  # cv folds, as every head had
        state.setdefault("max_features", 60_000)
        state.setdefault("cause_hinge_weight", 0.0)
        state.setdefault("hinge_C", 1.0)
        state.setdefault("cause_group_weight", 0.0)
        state.setdefault("group_C", 0.3)
        state.setdefault("flag_svm_C", None)
        state.setdefault("cause_secondary_weight", state.get("secondary_weight", 0.3))  # one weight for both, then
        self.__dict__.update(state)

    def __getstate__(self) -> dict:
        state = self.__dict__.copy()
        state.pop("_names", None)
        state.pop("oof_", None)  # training diagnostics: large and not needed to predict
        return state
