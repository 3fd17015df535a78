"""Evaluation: per-head metrics, baselines, calibration, and the report.

The headline keys are defined exactly as ../shared/tools/score.py defines
them, so a figure printed here means the same as one scored from `tousu tag`
output: cause_top1 (main cause right), cause_top3 (gold main cause in the top
3), cause_group_accuracy, risk_level_macro_f1, risk_flags_micro_f1,
mindset_top1 (over notes whose gold mindset is not empty).
"""
from __future__ import annotations

import json
from collections import Counter
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Sequence

import numpy as np
import pandas as pd
import yaml

from pipeline.contract.records import Triage
from pipeline.contract.taxonomy import RISK_LEVELS, taxonomy
from pipeline.knowledge import lexicon_file
from pipeline.model.features import evidence_map, load_markers
from pipeline.model.triager import NO_MINDSET
from pipeline.text.normalisation import normalise

KEYWORDS_FILE = "cause_keywords.yaml"
HEADLINE = ("cause_top1", "cause_top3", "cause_group_accuracy", "risk_level_macro_f1", "risk_flags_micro_f1", "mindset_top1")


@dataclass
class Prediction:
    """The comparable part of a triage: what score.py reads from `tousu tag` output."""

    cause: list[str]
    risk_level: str
    risk_flags: list[str]
    mindset: list[str]

    @classmethod
    def of(cls, t: Triage) -> "Prediction":
        return cls(t.cause, t.risk_level, t.risk_flags, t.mindset)


def _f1(tp: int, fp: int, fn: int) -> tuple[float, float, float]:
    p = tp / (tp + fp) if tp + fp else 0.0
    r = tp / (tp + fn) if tp + fn else 0.0
    return p, r, (2 * p * r / (p + r) if p + r else 0.0)


def score(gold: pd.DataFrame, preds: Sequence[Prediction]) -> dict:
    """Headline metrics plus per-label precision/recall/F1 and the risk confusion matrix."""
    tax = taxonomy()
    n = len(gold)
    g_cause = [list(c) for c in gold["cause"]]
    top1 = np.mean([bool(p.cause) and p.cause[0] == g[0] for p, g in zip(preds, g_cause)])
    top3 = np.mean([g[0] in p.cause[:3] for p, g in zip(preds, g_cause)])
    grp = np.mean([bool(p.cause) and tax.group_of(p.cause[0]) == tax.group_of(g[0]) for p, g in zip(preds, g_cause)])
    levels = list(RISK_LEVELS)
    conf = np.zeros((3, 3), dtype=int)
    for p, g in zip(preds, gold["risk_level"]):
        if p.risk_level in levels:
            conf[levels.index(g), levels.index(p.risk_level)] += 1
    level_f1 = {}
    for i, lvl in enumerate(levels):
        level_f1[lvl] = dict(zip(("precision", "recall", "f1"), _f1(conf[i, i], conf[:, i].sum() - conf[i, i], conf[i].sum() - conf[i, i])))
        level_f1[lvl]["support"] = int(conf[i].sum())
    flags_per = {}
    TP = FP = FN = 0
    for flag in tax.flag_ids:
        tp = sum(flag in p.risk_flags and flag in g for p, g in zip(preds, gold["risk_flags"]))
        fp = sum(flag in p.risk_flags and flag not in g for p, g in zip(preds, gold["risk_flags"]))
        fn = sum(flag not in p.risk_flags and flag in g for p, g in zip(preds, gold["risk_flags"]))
        TP += tp; FP += fp; FN += fn
        flags_per[flag] = dict(zip(("precision", "recall", "f1"), _f1(tp, fp, fn)), support=tp + fn)
    cause_per = {}
    for c in tax.cause_ids:
        tp = sum(p.cause[0] == c and g[0] == c for p, g in zip(preds, g_cause))
        fp = sum(p.cause[0] == c and g[0] != c for p, g in zip(preds, g_cause))
        fn = sum(p.cause[0] != c and g[0] == c for p, g in zip(preds, g_cause))
        cause_per[c] = dict(zip(("precision", "recall", "f1"), _f1(tp, fp, fn)), support=tp + fn)
    ms = [(p, list(g)) for p, g in zip(preds, gold["mindset"]) if len(g)]
    mind_per = {}
    for m in tax.mindset_ids:
        tp = sum(bool(p.mindset) and p.mindset[0] == m and g[0] == m for p, g in ms)
        fp = sum(bool(p.mindset) and p.mindset[0] == m and g[0] != m for p, g in ms)
        fn = sum((not p.mindset or p.mindset[0] != m) and g[0] == m for p, g in ms)
        mind_per[m] = dict(zip(("precision", "recall", "f1"), _f1(tp, fp, fn)), support=tp + fn)
    supported = lambda d: [v["f1"] for v in d.values() if v["support"]]
    empty_gold = [not len(g) for g in gold["mindset"]]
    empty_pred = [not p.mindset for p in preds]
    out = {
        "n": n,
        "cause_top1": round(float(top1), 3),
        "cause_top3": round(float(top3), 3),
        "cause_group_accuracy": round(float(grp), 3),
        "risk_level_macro_f1": round(float(np.mean([v["f1"] for v in level_f1.values()])), 3),
        "risk_flags_micro_f1": round(_f1(TP, FP, FN)[2], 3),
        "mindset_top1": round(float(np.mean([bool(p.mindset) and p.mindset[0] == g[0] for p, g in ms])), 3) if ms else 0.0,
        "cause_macro_f1": round(float(np.mean(supported(cause_per))), 3) if supported(cause_per) else 0.0,
        "risk_flags_macro_f1": round(float(np.mean(supported(flags_per))), 3) if supported(flags_per) else 0.0,
        "mindset_macro_f1": round(float(np.mean(supported(mind_per))), 3) if supported(mind_per) else 0.0,
        "mindset_empty_agreement": round(float(np.mean([a == b for a, b in zip(empty_gold, empty_pred)])), 3),
        "risk_level_confusion": {"labels": levels, "rows_gold_cols_pred": conf.tolist()},
        "per_label": {"cause": cause_per, "risk_level": level_f1, "risk_flags": flags_per, "mindset": mind_per},
    }
    return out


# ------------------------------------------------------------------ calibration

def brier_multiclass(proba: np.ndarray, y: np.ndarray) -> float:
    onehot = np.zeros_like(proba)
    onehot[np.arange(len(y)), y] = 1
    return float(np.mean(np.sum((proba - onehot) ** 2, axis=1)))


def ece(confidence: np.ndarray, correct: np.ndarray, bins: int = 10) -> float:
    """Expected calibration error of the top prediction."""
    edges = np.linspace(0, 1, bins + 1)
    total = 0.0
    for lo, hi in zip(edges[:-1], edges[1:]):
        m = (confidence > lo) & (confidence <= hi)
        if m.any():
            total += m.mean() * abs(confidence[m].mean() - correct[m].mean())
    return float(total)


def calibration(model, gold: pd.DataFrame) -> dict:
    """Brier score and ECE of each head on a labelled frame."""
    proba = model.predict_proba(list(gold["text"]))
    out = {}
    for head, classes, labels in (
        ("cause", model.classes_["cause"], [c[0] for c in gold["cause"]]),
        ("risk_level", model.classes_["risk_level"], list(gold["risk_level"])),
        ("mindset", model.classes_["mindset"], [m[0] if len(m) else NO_MINDSET for m in gold["mindset"]]),
    ):
        y = np.array([classes.index(lbl) for lbl in labels])
        p = proba[head]
        out[head] = {"brier": round(brier_multiclass(p, y), 4), "ece": round(ece(p.max(1), p.argmax(1) == y), 4)}
    flags = proba["risk_flags"]
    truth = np.array([[f in set(g) for f in model.classes_["risk_flags"]] for g in gold["risk_flags"]], dtype=float)
    out["risk_flags"] = {"brier": round(float(np.mean((flags - truth) ** 2)), 4),
                         "ece": round(ece(np.abs(flags - 0.5).ravel() + 0.5, ((flags >= 0.5) == truth).ravel()), 4)}
    return out


# ------------------------------------------------------------------ baselines

@lru_cache(maxsize=1)
def _keywords() -> dict:
    with open(lexicon_file(KEYWORDS_FILE), encoding="utf-8") as fh:
        return yaml.safe_load(fh)


def keyword_baseline(texts: Sequence[str]) -> list[Prediction]:
    """What plain keyword matching gets: cause and mindset by keyword order, flags by marker lexicon."""
    kw = _keywords()
    markers = load_markers()
    tax = taxonomy()
    ev = evidence_map()
    out = []
    for text in texts:
        t = normalise(text).model_text
        cause = [c for c, words in kw["cause"].items() if any(w in t for w in words)][:3] or ["other"]
        flags = tax.resolve_flags([f for f in tax.flag_ids if any(markers[m].search(t) for m in ev.get(f, ()))])
        mindset = [m for m, words in kw["mindset"].items() if any(w in t for w in words)][:2]
        out.append(Prediction(cause, tax.risk_floor(flags), flags, mindset))
    return out


def majority_baseline(train: pd.DataFrame, n: int) -> list[Prediction]:
    """The prior: the most frequent label of each head in the training data."""
    causes = [c for c, _ in Counter(c[0] for c in train["cause"]).most_common(3)]
    level = Counter(train["risk_level"]).most_common(1)[0][0]
    mind = Counter(m[0] for m in train["mindset"] if len(m)).most_common(1)[0][0]
    return [Prediction(causes, level, [], [mind]) for _ in range(n)]


# ------------------------------------------------------------------ report

def evaluate(model, gold: pd.DataFrame, train: pd.DataFrame | None = None) -> dict:
    """Model, baselines and calibration on one labelled frame."""
    triages = model.triage(list(gold["text"]))
    report = {"model": score(gold, [Prediction.of(t) for t in triages]),
              "keyword_baseline": score(gold, keyword_baseline(list(gold["text"])))}
    if train is not None:
        report["majority_baseline"] = score(gold, majority_baseline(train, len(gold)))
    report["calibration"] = calibration(model, gold)
    report["reconciled"] = sum(t.reconciliation is not None for t in triages)
    report["flag_thresholds"] = dict(model.flag_thresholds_)
    report["_triages"] = triages
    return report


def summary_table(report: dict) -> str:
    cols = [k for k in ("model", "keyword_baseline", "majority_baseline") if k in report]
    lines = [f"{'metric':<24}" + "".join(f"{c:>18}" for c in cols)]
    for key in HEADLINE + ("cause_macro_f1", "risk_flags_macro_f1", "mindset_macro_f1"):
        lines.append(f"{key:<24}" + "".join(f"{report[c][key]:>18.3f}" for c in cols))
    return "\n".join(lines)


def write_report(report: dict, gold: pd.DataFrame, out_dir: Path, title: str, extra: dict | None = None) -> Path:
    """report.json, PNG plots and an HTML page that opens in a browser without network."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    out_dir.mkdir(parents=True, exist_ok=True)
    triages = report.pop("_triages", None)
    data = dict(report, **(extra or {}))
    (out_dir / "report.json").write_text(json.dumps(data, ensure_ascii=False, indent=2), encoding="utf-8")
    m = report["model"]
    # risk confusion
    fig, ax = plt.subplots(figsize=(4, 3.5))
    conf = np.array(m["risk_level_confusion"]["rows_gold_cols_pred"])
    ax.imshow(conf, cmap="Blues")
    for i in range(3):
        for j in range(3):
            ax.text(j, i, conf[i, j], ha="center", va="center")
    ax.set_xticks(range(3), RISK_LEVELS); ax.set_yticks(range(3), RISK_LEVELS)
    ax.set_xlabel("predicted"); ax.set_ylabel("gold"); ax.set_title("risk_level")
    fig.tight_layout(); fig.savefig(out_dir / "risk_confusion.png", dpi=100); plt.close(fig)
    # flag PR curves and cause reliability
    if triages is not None:
        tax = taxonomy()
        fig, ax = plt.subplots(figsize=(6, 4.5))
        for flag in tax.flag_ids:
            y = np.array([flag in g for g in gold["risk_flags"]])
            if y.sum() == 0:
                continue
            s = np.array([t.risk_flag_proba[flag] for t in triages])
            order = np.argsort(-s)
            tp = np.cumsum(y[order]); prec = tp / np.arange(1, len(y) + 1); rec = tp / y.sum()
            ax.plot(rec, prec, label=flag, lw=1)
        ax.set_xlabel("recall"); ax.set_ylabel("precision"); ax.set_title("risk_flags precision-recall")
        ax.legend(fontsize=6); fig.tight_layout(); fig.savefig(out_dir / "flag_pr.png", dpi=100); plt.close(fig)
        conf_top = np.array([t.cause_proba[0] for t in triages])
        right = np.array([t.cause[0] == g[0] for t, g in zip(triages, gold["cause"])])
        edges = np.linspace(0, 1, 11)
        xs, ys = [], []
        for lo, hi in zip(edges[:-1], edges[1:]):
            sel = (conf_top > lo) & (conf_top <= hi)
            if sel.any():
                xs.append(conf_top[sel].mean()); ys.append(right[sel].mean())
        fig, ax = plt.subplots(figsize=(4, 4))
        ax.plot([0, 1], [0, 1], "k--", lw=0.8); ax.plot(xs, ys, "o-")
        ax.set_xlabel("predicted probability"); ax.set_ylabel("observed accuracy"); ax.set_title("cause reliability")
        fig.tight_layout(); fig.savefig(out_dir / "cause_reliability.png", dpi=100); plt.close(fig)
    rows = "".join(f"<tr><td>{k}</td>" + "".join(f"<td>{report[c][k]:.3f}</td>" for c in ("model", "keyword_baseline", "majority_baseline") if c in report) + "</tr>" for k in HEADLINE)
    heads = "".join(f"<th>{c}</th>" for c in ("model", "keyword_baseline", "majority_baseline") if c in report)
    per = ""
    for head, table in m["per_label"].items():
        per += f"<h3>{head}</h3><table><tr><th>label</th><th>P</th><th>R</th><th>F1</th><th>support</th></tr>"
        per += "".join(f"<tr><td>{lbl}</td><td>{v['precision']:.2f}</td><td>{v['recall']:.2f}</td><td>{v['f1']:.2f}</td><td>{v['support']}</td></tr>" for lbl, v in table.items())
        per += "</table>"
    cal = "".join(f"<tr><td>{h}</td><td>{v['brier']}</td><td>{v['ece']}</td></tr>" for h, v in report.get("calibration", {}).items())
    extra_html = f"<h2>Feature comparison</h2><pre>{json.dumps(extra, ensure_ascii=False, indent=1)}</pre>" if extra else ""
    html = f"""<!doctype html><html lang="zh-CN"><meta charset="utf-8"><title>{title}</title>
<style>body{{font-family:sans-serif;max-width:960px;margin:2em auto}}table{{border-collapse:collapse;margin:1em 0}}td,th{{border:1px solid #ccc;padding:2px 8px;text-align:right}}td:first-child{{text-align:left}}</style>
<h1>{title}</h1><p>{m['n']} notes. Metrics defined as in score.py.</p>
<table><tr><th>metric</th>{heads}</tr>{rows}</table>
<h2>Calibration</h2><table><tr><th>head</th><th>Brier</th><th>ECE</th></tr>{cal}</table>
<img src="risk_confusion.png"> <img src="cause_reliability.png"> <img src="flag_pr.png">
<h2>Per label</h2>{per}{extra_html}</html>"""
    path = out_dir / "report.html"
    path.write_text(html, encoding="utf-8")
    return path
