"""When a person must look before acting, and why, in Chinese.

Review is worth something only if it is rare and catches the mistakes that
matter: the main cause and the escalation level. So a note is marked when
the main cause is unsure, when the level hangs on a flag whose probability
sits near its threshold (flipping it would change the level), when the
learned level model (read from the whole note) gives the rule's level little
probability, when the note
was too long for the model to read whole, or when a playbook rule says so
(self-harm or violence the model is unsure of). The thresholds are playbook
settings, chosen on held-out data (docs/model_selection.md).
"""
from __future__ import annotations

import re
from typing import TYPE_CHECKING

from pipeline.contract.records import Step, Triage
from pipeline.contract.taxonomy import taxonomy

if TYPE_CHECKING:
    from pipeline.handling.playbook import PlaybookSettings, Rule

__all__ = ["review_reasons", "level_hinges_on", "because_zh"]

_ID = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b|\b(?:remedy|respect|venting|recognition|revenge|other|anger)\b")


def because_zh(text: str) -> str:
    """Label ids in a rule trace replaced by their Chinese names."""
    tax = taxonomy()

    def name(m: re.Match) -> str:
        try:
            return tax.name(m.group(0))
        except KeyError:
            return m.group(0)

    return _ID.sub(name, text).replace("flag ", "").replace("cause ", "").replace("mindset ", "")


def level_hinges_on(triage: Triage, thresholds: dict[str, float], margin: float) -> list[tuple[str, float, float]]:
    """Flags close to their threshold whose flip would change the level: (flag, p, threshold). A flag judged
    by degree beside another medium sign is read against the second-sign bar it had to pass."""
    from pipeline.model.lexical import second_signal

    tax = taxonomy()
    bar, judged = second_signal()
    base = None  # the level of the flags as they are: worked out only for a flag near its bar
    out = []
    for flag, p in triage.risk_flag_proba.items():
        thr = thresholds.get(flag)
        if thr is None or (abs(p - thr) > margin and (flag not in judged or abs(p - bar) > margin)):
            continue
        if flag in judged and any(f != flag and f in tax.medium_flags for f in triage.risk_flags):
            thr = max(thr, bar)
            if abs(p - thr) > margin:
                continue
        if base is None:
            base = tax.risk_floor(triage.risk_flags)
        flipped = [f for f in triage.risk_flags if f != flag] if flag in triage.risk_flags else triage.risk_flags + [flag]
        if tax.risk_floor(tax.resolve_flags(flipped)) != base:
            out.append((flag, p, thr))
    return out


def review_reasons(triage: Triage, settings: "PlaybookSettings", thresholds: dict[str, float],
                   flagged_by_rules: list[tuple["Rule", str]], steps: dict[str, Step]) -> list[str]:
    tax = taxonomy()
    reasons = []
    if triage.cause_proba and triage.cause_proba[0] < settings.review_cause_below:
        reasons.append(f"主要原因把握不足：{tax.name(triage.cause[0])} 概率 {triage.cause_proba[0]:.2f}"
                       f"（低于 {settings.review_cause_below:.2f}），请核对")
    elif len(triage.cause_proba) > 1 and triage.cause_proba[0] - triage.cause_proba[1] < settings.review_cause_margin:
        reasons.append(f"主要原因与次要原因难分：{tax.name(triage.cause[0])} {triage.cause_proba[0]:.2f}，"
                       f"{tax.name(triage.cause[1])} {triage.cause_proba[1]:.2f}；请确认客户要解决的是哪一项")
    for flag, p, thr in level_hinges_on(triage, thresholds, settings.review_flag_margin):
        state = "已计入" if flag in triage.risk_flags else "未计入"
        reasons.append(f"风险等级取决于把握不足的信号：{tax.name(flag)}（{state}，概率 {p:.2f}，阈值 {thr:.2f}），请确认")
    levels = triage.risk_level_proba or {}
    learned = levels.get(triage.risk_level)
    if learned is not None and learned < settings.review_level_below:
        likely = max(levels, key=levels.get)  # which way to check: up or down
        reasons.append(f"风险等级存疑：按信号判定为「{tax.name(triage.risk_level)}」，但模型对全文的估计只给该等级 "
                       f"{learned:.2f}（低于 {settings.review_level_below:.2f}），更像「{tax.name(likely)}」"
                       f"（{levels[likely]:.2f}），请核对各项风险信号")
    if triage.truncated:
        reasons.append("记录过长，模型只读了前面部分，请通读全文")
    for rule, because in flagged_by_rules:
        reasons.append(f"请人工确认：{because_zh(because)}")
    return reasons
