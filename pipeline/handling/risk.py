"""The escalation level, decided by the spec's rule from the final flags and the facts.

labels.md makes the level a function of the flags plus one thing flags cannot
show: a media or regulator action with a concrete deadline. So the level is
computed here, after the facts extractor has found the deadlines, and never
taken from the learned level head; that head's probability is kept only as a
second opinion for review. Every level carries its reason in Chinese, so a
handler sees why a note is a 重大投诉.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

from pipeline.contract.records import Facts, Triage
from pipeline.contract.taxonomy import taxonomy

__all__ = ["RiskDecision", "decide_risk", "apply_risk", "DATED_FLAGS"]

#: A dated action lifts one of these medium signs to high (labels.md: "a concrete media or regulator action").
DATED_FLAGS = ("media_threat", "regulator_threat")


@dataclass(frozen=True)
class RiskDecision:
    level: str
    reason: str
    dated_action: str | None = None  # the words that gave the deadline, when a dated action lifted the level


def _names(flags) -> str:
    tax = taxonomy()
    return "；".join(tax.name(f) for f in flags)


def _deadline_words(facts: Facts) -> str | None:
    found = facts.of("deadline")
    return found[0].text if found else None


def decide_risk(flags: list[str], facts: Facts) -> RiskDecision:
    """low / medium / high exactly by labels.md, with the reason a handler reads."""
    tax = taxonomy()
    given = set(flags)
    present = [f for f in tax.flag_ids if f in given]
    high = [f for f in present if f in tax.high_flags]
    medium = [f for f in present if f in tax.medium_flags]
    threats = [f for f in present if f in tax.threat_flags]
    if high:
        return RiskDecision("high", f"高度信号：{_names(high)}")
    if "vip_identity" in present and threats:
        return RiskDecision("high", f"特殊身份客户扬言{_names(threats)}")
    if len(medium) >= 2:
        return RiskDecision("high", f"{_count_zh(len(medium))}个中度信号：{_names(medium)}")
    if medium:
        dated = [f for f in medium if f in DATED_FLAGS]
        words = _deadline_words(facts) if dated else None
        if dated and words:
            forwarded = any(f.value == "regulator_forward" for f in facts.of("cue"))
            what = "监管转办" if forwarded and dated[0] == "regulator_threat" else f"{_names(dated)}并给出期限"
            return RiskDecision("high", f"{what}：“{words}”", dated_action=words)
        return RiskDecision("medium", f"一个中度信号：{_names(medium)}")
    if "vip_identity" in present:
        return RiskDecision("low", "特殊身份客户，但未扬言投诉升级")
    return RiskDecision("low", "无升级信号")


def _count_zh(n: int) -> str:
    return {2: "两", 3: "三", 4: "四", 5: "五"}.get(n, str(n))


def apply_risk(triage: Triage, facts: Facts) -> Triage:
    """The triage with its level set by the rule; the learned level stays in `risk_level_proba`."""
    decision = decide_risk(triage.risk_flags, facts)
    return replace(triage, risk_level=decision.level, risk_reason=decision.reason, reconciliation=None)
