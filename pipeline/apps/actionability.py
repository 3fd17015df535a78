"""Can a handler act on it? The figures behind the actionable-triage goals, from gold labels and Results.

- the share of gold-medium notes called high (a 重大投诉 on an ordinary complaint costs trust);
- for each gold flag that needs an escalation, the share of its notes whose `now` holds the key action
  (self-harm: within the first two steps);
- the longest `now`, the median of now + then;
- how many notes review marks, and main-cause and risk-level accuracy on the notes it does not mark.
"""
from __future__ import annotations

import statistics
from typing import Sequence

import pandas as pd

__all__ = ["KEY_ACTIONS", "actionability"]

#: gold flag -> the step that must be in `now` (and for self-harm, where)
KEY_ACTIONS: dict[str, str] = {
    "self_harm_threat": "bey_selfharm_keep_talking",
    "violence_risk": "spec_physical_no_contact",
    "media_threat": "major_media_brand",
    "regulator_threat": "major_regulator_liaison",
    "legal_threat": "major_legal_review",
    "group_complaint": "spec_group_plan",
}


def actionability(gold: pd.DataFrame, results: Sequence) -> dict:
    """Gold rows (label format) and the flow's Results for the same notes, in the same order."""
    n = len(gold)
    levels = list(gold["risk_level"])
    pred = [r.triage.risk_level for r in results]
    medium = [i for i, lv in enumerate(levels) if lv == "medium"]
    out: dict = {"n": n,
                 "medium_called_high": round(sum(pred[i] == "high" for i in medium) / len(medium), 3) if medium else None}
    key: dict[str, dict] = {}
    for flag, step in KEY_ACTIONS.items():
        rows = [i for i, fs in enumerate(gold["risk_flags"]) if flag in fs]
        if not rows:
            continue
        now = [[s.id for s in results[i].plan.now] for i in rows]
        ok = [step in (ids[:2] if flag == "self_harm_threat" else ids) for ids in now]
        key[flag] = {"n": len(rows), "key_action_in_now": round(sum(ok) / len(rows), 3)}
    out["key_action"] = key
    out["now_max"] = max(len(r.plan.now) for r in results)
    out["steps_median"] = statistics.median(len(r.plan.now) + len(r.plan.then) for r in results)
    out["avoid_mean"] = round(statistics.mean(len(r.plan.avoid) for r in results), 2)
    reviewed = [r.plan.review for r in results]
    rest = [i for i in range(n) if not reviewed[i]]
    out["review_share"] = round(sum(reviewed) / n, 3)
    cause_ok = [results[i].triage.cause[0] == gold["cause"].iloc[i][0] for i in range(n)]
    level_ok = [pred[i] == levels[i] for i in range(n)]
    out["unreviewed_cause_top1"] = round(sum(cause_ok[i] for i in rest) / len(rest), 3) if rest else None
    out["unreviewed_risk_accuracy"] = round(sum(level_ok[i] for i in rest) / len(rest), 3) if rest else None
    wrong = [i for i in range(n) if not (cause_ok[i] and level_ok[i])]
    out["review_catches_errors"] = round(sum(reviewed[i] for i in wrong) / len(wrong), 3) if wrong else None
    return out
