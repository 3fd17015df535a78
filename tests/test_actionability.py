"""The actionability figures count what a handler would see: over-called levels, key actions in `now`, review."""
import pandas as pd
import pytest

from pipeline.apps.actionability import actionability
from pipeline.contract.records import HandlingPlan, ReplyDue, Step, Triage
from pipeline.handling.result import Result


def result(level: str, cause: str, now: list[str], review: bool = False) -> Result:
    t = Triage(cause=[cause], cause_proba=[0.9], cause_group=[cause.split("_")[0]], risk_level=level,
               risk_level_proba={}, risk_flags=[], risk_flag_proba={}, mindset=[], mindset_proba={})
    steps = [Step(s, s, "major") for s in now]
    plan = HandlingPlan(steps=steps, avoid=[], owner="frontline", departments=[],
                        reply_due=ReplyDue(24, None, 15, ""), fired=[], review=review, now=steps)
    return Result(t, None, plan)


def test_figures_from_gold_and_results():
    gold = pd.DataFrame({
        "cause": [["contract_claims"], ["contract_claims"], ["staff_attitude"], ["other"]],
        "risk_level": ["medium", "medium", "high", "low"],
        "risk_flags": [["media_threat"], ["anger"], ["self_harm_threat"], []],
        "mindset": [[], [], [], []],
    })
    results = [
        result("high", "contract_claims", ["major_media_brand"]),                       # medium called high
        result("medium", "contract_claims", []),
        result("high", "staff_attitude", ["major_senior_owner", "major_media_brand", "bey_selfharm_keep_talking"],
               review=True),                                                            # self-harm too late
        result("low", "contract_claims", [], review=True),                              # wrong cause, reviewed
    ]
    a = actionability(gold, results)
    assert a["medium_called_high"] == 0.5
    assert a["key_action"]["media_threat"] == {"n": 1, "key_action_in_now": 1.0}
    assert a["key_action"]["self_harm_threat"]["key_action_in_now"] == 0.0, "self-harm must be in the first two"
    assert a["now_max"] == 3
    assert a["review_share"] == 0.5
    assert a["unreviewed_cause_top1"] == 1.0 and a["unreviewed_risk_accuracy"] == 0.5
    assert a["review_catches_errors"] == pytest.approx(0.5)
