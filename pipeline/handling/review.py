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
from pipeline.handling.channel import CHANNEL_NAMES
from pipeline.handling.facts import FACT_NAMES

if TYPE_CHECKING:
    from pipeline.handling.playbook import PlaybookSettings, Rule

__all__ = ["review_reasons", "level_hinges_on", "because_zh"]

_ID = re.compile(r"\b[a-z]+(?:_[a-z]+)+\b|\b(?:remedy|respect|venting|recognition|revenge|other|anger|high|medium|low)\b")
_HEADS = {"cause": "投诉原因", "risk_level": "风险等级", "mindset": "客户心理"}
_TRIAGE_ATTRS = {"reconciliation": "需要对账核实", "truncated": "原文过长，只读了前面部分", "is_transcript": "通话记录"}
_AGG = {"max": "（最大）", "min": "（最小）", "count": "（条数）", "any": "", "sum": "（合计）"}
_OPS = {">=": "≥", "<=": "≤", "==": "=", "!=": "≠", ">": ">", "<": "<"}
_PART = [  # one trace part (what a condition wrote) -> the words a handler reads
    (re.compile(r"^always$"), lambda m: "一律适用"),
    (re.compile(r"^enquiry (true|false)$"), lambda m: "单纯咨询" if m[1] == "true" else "不是单纯咨询"),
    (re.compile(r"^risk_level (\w+)$"), lambda m: f"风险等级为「{_names_in(m[1])}」"),
    (re.compile(r"^channel (\w+)$"), lambda m: f"渠道：{CHANNEL_NAMES.get(m[1], m[1])}"),
    (re.compile(r"^cue \w+ '(.*)'$"), lambda m: f"原文线索「{m[1]}」"),
    (re.compile(r"^uncertain (\w+)$"), lambda m: f"模型对{_HEADS.get(m[1], m[1])}没有把握"),
    (re.compile(r"^triage (\w+)$"), lambda m: _TRIAGE_ATTRS.get(m[1], m[1])),
    (re.compile(r"^top (\w+) (p=\S+ < \S+)$"), lambda m: f"{_HEADS.get(m[1], m[1])}最高概率 {m[2]}"),
    (re.compile(r"^fact (\w+)(?: (\w+))?=(\S+)(?: (\S+) (\S+))?$"), lambda m: _fact(*m.groups())),
    (re.compile(r"^cause_group (\w+)(.*)$"), lambda m: f"{taxonomy().name_or_id(m[1])}{m[2]}"),
    (re.compile(r"^flag (\w+) said$"), lambda m: f"{taxonomy().name_or_id(m[1])}（原文明说）"),
    (re.compile(r"^not (.*)$"), lambda m: f"未判定为「{_atom(m[1])}」"),
]


def _names_in(text: str) -> str:
    """Every label id in a piece of trace replaced by its Chinese name."""
    tax = taxonomy()
    return _ID.sub(lambda m: tax.name_or_id(m[0]), text)


def _fact(kind: str, agg: str | None, value: str, op: str | None, bound: str | None) -> str:
    what = FACT_NAMES.get(kind, kind) + (_AGG.get(agg, agg) if agg else "")
    value = value[:-2] if value.endswith(".0") else value  # 45000.0 -> 45000
    return f"{what} {value}" + (f" {_OPS.get(op, op)} {bound}" if op else "")


def _atom(text: str) -> str:
    """A described condition (`flag=self_harm_threat`, `cause=[a|b]`) in a handler's words."""
    words = re.sub(r"\b(?:flag|cause_group|cause|mindset|risk_level|channel|cue|fact)=", "", text).strip("[]{}")
    return "、".join(CHANNEL_NAMES.get(w) or _names_in(w) for w in re.split(r"[|,]", words))


def because_zh(text: str) -> str:
    """A rule trace as a handler reads it: Chinese names for labels, channels and fact kinds, no condition
    keywords (the machine form stays in the JSON's `because`)."""
    out = []
    for part in text.split("; "):
        for pattern, say in _PART:
            m = pattern.match(part)
            if m:
                out.append(say(m))
                break
        else:  # a label with its probability: "flag media_threat p=0.93 ≥ 0.40", "cause_group contract p=0.71"
            part = re.sub(r"^(?:flag|cause_group|cause|mindset) ", "", part)
            out.append(_names_in(part))
    return "；".join(out)


def level_hinges_on(triage: Triage, thresholds: dict[str, float], margin: float) -> list[tuple[str, float, float]]:
    """Flags close to their threshold whose flip would change the level: (flag, p, threshold). A flag judged
    by degree beside another medium sign is read against the second-sign bar it had to pass."""
    from pipeline.model.lexical import second_signal, second_signal_bar

    tax = taxonomy()
    judged = second_signal()[1]
    bar = second_signal_bar(bool(getattr(triage, "is_transcript", False)))
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
