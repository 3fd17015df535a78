"""Active learning: the notes whose labels would teach the model most."""
from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from pipeline.io import ERROR_COLUMN


def uncertainty(proba: dict[str, np.ndarray], flag_thresholds: np.ndarray) -> np.ndarray:
    """Per note: low top probability on the multiclass heads, flags near their thresholds,
    and disagreement between the learned risk level and what the flags imply."""
    margin = lambda p: 1 - (np.sort(p, axis=1)[:, -1] - np.sort(p, axis=1)[:, -2])
    flag_doubt = 1 - np.abs(proba["risk_flags"] - flag_thresholds).min(axis=1) * 2
    return margin(proba["cause"]) + margin(proba["mindset"]) + margin(proba["risk_level"]) + np.clip(flag_doubt, 0, 1)


def ranking(doubt: Sequence[float], main_causes: Sequence[str]) -> list[int]:
    """Positions in labelling order: a round robin over predicted main causes, so a batch teaches every cause.

    The most doubtful note of every cause first, then the second of every cause, ...; within a round,
    the more doubtful first (so the first position is always the most doubtful note of all).
    """
    order = pd.DataFrame({"i": range(len(doubt)), "doubt": np.asarray(doubt, dtype=float), "main": list(main_causes)})
    order = order.sort_values("doubt", ascending=False, kind="stable")
    order["round"] = order.groupby("main", sort=False).cumcount()
    return [int(i) for i in order.sort_values(["round", "doubt"], ascending=[True, False], kind="stable")["i"]]


def pick(model, df: pd.DataFrame, n: int, text_column: str = "text", id_column: str = "id") -> pd.DataFrame:
    """The n most uncertain notes, round-robin over predicted main causes, in the label file format."""
    texts = df[text_column].fillna("").astype(str)
    ok = texts.str.strip().ne("")
    if ERROR_COLUMN in df.columns:
        ok &= df[ERROR_COLUMN].fillna("").eq("")
    rows = df[ok].reset_index(drop=True)
    if rows.empty:
        return pd.DataFrame(columns=["id", "text", "cause", "risk_level", "risk_flags", "mindset"])
    triages, proba = model.predict_with_proba(list(rows[text_column]))
    doubt = uncertainty(proba, model.flag_threshold_vec_)
    chosen = ranking(doubt, [t.cause[0] for t in triages])[:n]
    out = rows.iloc[chosen].copy()
    ids = out[id_column].astype(str) if id_column in out.columns else pd.Series([f"s-{i}" for i in chosen], index=out.index)
    extra = [c for c in out.columns if c not in (id_column, text_column)]
    result = pd.DataFrame({
        "id": ids.values,
        "text": out[text_column].values,
        "cause": [triages[i].cause[:1] for i in chosen],
        "risk_level": [triages[i].risk_level for i in chosen],
        "risk_flags": [triages[i].risk_flags for i in chosen],
        "mindset": [triages[i].mindset for i in chosen],
        "uncertainty": [round(float(doubt[i]), 3) for i in chosen],
    })
    for c in extra:
        if c not in result.columns:
            result[c] = out[c].values
    return result
