"""The honest estimate: whole writing slices held out, as a new writer's notes would be.

Notes by a writer the model trained on flatter it: the fixed split holds out
notes, not writers. Here each hand-written slice (one writer's brief: a voice,
a channel, a focus; the file `hNN_*.jsonl`) is held out whole in one of k
group folds; generated notes are only ever trained on. Predictions go through
the whole flow (the rule's risk level from the final flags and facts), so the
figures mean what `tousu tag` output would score.
"""
from __future__ import annotations

import re
from dataclasses import asdict
from typing import Callable

import numpy as np
import pandas as pd

from pipeline.model.evaluation import HEADLINE, Prediction, score

__all__ = ["slice_of", "slice_folds", "slice_heldout"]

_SLICE = re.compile(r"^(h\d+)-")


def slice_of(case_id: str, source: str = "handwritten") -> str:
    """`h17-0042` -> `h17`; generated notes -> `generated`; anything else -> its id's prefix."""
    if source == "generated":
        return "generated"
    m = _SLICE.match(str(case_id))
    return m.group(1) if m else str(case_id).split("-")[0]


def slice_folds(df: pd.DataFrame, k: int = 5, seed: int = 0) -> list[tuple[np.ndarray, np.ndarray]]:
    """(train rows, test rows) per fold: hand-written slices dealt round-robin by size, generated always train."""
    slices = pd.Series([slice_of(i, s) for i, s in zip(df["id"], df.get("source", ["handwritten"] * len(df)))],
                       index=df.index)
    hand = slices[slices != "generated"]
    sizes = hand.value_counts()
    rng = np.random.default_rng(seed)
    order = sorted(sizes.index, key=lambda s: (-sizes[s], rng.random()))
    load = [0] * k
    fold_of: dict[str, int] = {}
    for s in order:  # biggest first into the lightest fold: folds of similar size
        f = int(np.argmin(load))
        fold_of[s] = f
        load[f] += sizes[s]
    folds = []
    positions = np.arange(len(df))
    for f in range(k):
        test = positions[[fold_of.get(s) == f for s in slices]]
        train = np.setdiff1d(positions, test)
        folds.append((train, test))
    return folds


def slice_heldout(df: pd.DataFrame, make_model: Callable[[], object], k: int = 5, seed: int = 0,
                  train_filter: Callable[[pd.DataFrame], pd.DataFrame] | None = None,
                  log: Callable[[str], None] = lambda m: None) -> dict:
    """Pooled headline metrics over k slice folds (each note predicted once, by a model that never saw its
    writer), the per-fold spread, the slices in each fold, and each tested note's prediction (labels, probabilities, the flags'
    thresholds) by id."""
    from pipeline.flow import triage_notes

    df = df.reset_index(drop=True)
    preds: list[Prediction | None] = [None] * len(df)
    details: list[dict] = [{}] * len(df)
    per_fold = []
    for f, (tr, te) in enumerate(slice_folds(df, k, seed)):
        train = df.iloc[tr]
        if train_filter is not None:
            train = train_filter(train)
        log(f"slice fold {f + 1}/{k}: training on {len(train)} notes, testing {len(te)}")
        model = make_model().fit(train)
        test = df.iloc[te].reset_index(drop=True)
        triages = [r.triage for r in triage_notes(model, list(test["text"]), with_plan=False)]
        fold_preds = [Prediction.of(t) for t in triages]
        for i, p, t in zip(te, fold_preds, triages):
            preds[i] = p
            # what the review curve needs (tools/review_curve.py --slices)
            details[i] = {"cause_proba": t.cause_proba, "risk_flag_proba": t.risk_flag_proba,
                          "thresholds": dict(getattr(model, "flag_thresholds_", {})), "truncated": t.truncated,
                          "risk_level_proba": t.risk_level_proba}
        m = score(test, fold_preds)
        per_fold.append({"slices": sorted({slice_of(i, s) for i, s in zip(test["id"], test["source"])}),
                         "n": len(test), **{h: round(m[h], 3) for h in HEADLINE}})
    tested = [i for i, p in enumerate(preds) if p is not None]
    pooled = score(df.iloc[tested].reset_index(drop=True), [preds[i] for i in tested])
    return {"n": len(tested), "k": k, **{h: round(pooled[h], 3) for h in HEADLINE},
            "spread": {h: round(float(np.std([f[h] for f in per_fold])), 3) for h in HEADLINE},
            "folds": per_fold, "predictions": {str(df["id"].iat[i]): {**asdict(preds[i]), **details[i]} for i in tested}}
