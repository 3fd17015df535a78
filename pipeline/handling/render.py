"""What the handler and other programs see: a JSON record and a text card.

`plan_to_json` gives one dict per note with a fixed field order (triage,
facts, plan), so that files written from it diff cleanly between versions.
`render_card` gives the handler a simplified-Chinese card to act on at once:
what the complaint is about, how risky it is and why, what the customer
wants, the facts, the steps in order, what to avoid, who owns it and when
the customer must hear back. Personal numbers are masked in both.
"""
from __future__ import annotations

from typing import Any

from pipeline.contract.records import Evidence, Fact, Facts, HandlingPlan, Triage
from pipeline.contract.taxonomy import taxonomy
from pipeline.handling.channel import CHANNEL_NAMES
from pipeline.handling.facts import FACT_NAMES
from pipeline.handling.review import because_zh
from pipeline.text.pii import mask_pii

OWNER_NAMES = {"frontline": "一线处理人员", "supervisor": "主管", "senior_specialist": "资深投诉专员"}
DEPARTMENT_NAMES = {"legal": "法务", "brand_pr": "品牌公关", "regulator_liaison": "监管联络", "security": "安保"}
SECTION_NAMES = {
    "general": "一般流程", "negotiation": "协商谈判", "mindset": "客户心理", "perception": "心理效应",
    "major": "重大投诉", "special_customer": "特殊客户", "compensation": "赔偿标准", "apology": "认错与道歉",
    "deadline": "处理时限", "beyond_course": "补充规则",
}
_P = 3  # decimals kept for probabilities in JSON


def _name(label: str) -> str:
    return taxonomy().name_or_id(label)


def _round(p: float | None) -> float | None:
    return None if p is None else round(float(p), _P)


def _evidence_json(ev: Evidence) -> dict[str, Any]:
    return {"start": ev.start, "end": ev.end, "text": mask_pii(ev.text), "source": ev.source,
            "as_written": mask_pii(ev.as_written or ev.text)}


def _triage_json(t: Triage) -> dict[str, Any]:
    return {
        "cause": [
            {"id": c, "name": _name(c), "group": g, "proba": _round(p)}
            for c, g, p in zip(t.cause, t.cause_group or [c.split("_", 1)[0] for c in t.cause], t.cause_proba)
        ],
        "risk_level": {"id": t.risk_level, "name": _name(t.risk_level), "reason": t.risk_reason,
                       "learned_proba": _round(t.risk_level_proba.get(t.risk_level))},
        "risk_level_proba": {k: _round(v) for k, v in t.risk_level_proba.items()},
        "risk_flags": [
            {"id": f, "name": _name(f), "proba": _round(t.risk_flag_proba.get(f)), "said_outright": f in t.said_outright,
             "evidence": [_evidence_json(e) for e in t.flag_evidence.get(f, [])]}
            for f in t.risk_flags
        ],
        "mindset": [{"id": m, "name": _name(m), "proba": _round(t.mindset_proba.get(m))} for m in t.mindset],
        "uncertain": list(t.uncertain),
        "reconciliation": t.reconciliation,
        "truncated": t.truncated,
        "is_transcript": t.is_transcript,
    }


def _fact_json(f: Fact) -> dict[str, Any]:
    return {"kind": f.kind, "value": f.value, "start": f.start, "end": f.end, "text": mask_pii(f.text)}


def _step_json(s) -> dict[str, Any]:
    return {"id": s.id, "section": s.section, "text": s.text, **({"short": s.short} if s.short else {})}


def _plan_json(p: HandlingPlan) -> dict[str, Any]:
    r = p.reply_due
    return {
        "owner": p.owner,
        "owner_name": OWNER_NAMES.get(p.owner, p.owner),
        "departments": list(p.departments),
        "department_names": [DEPARTMENT_NAMES.get(d, d) for d in p.departments],
        "reply_due": {
            "first_reply_hours": r.first_reply_hours, "decision_due": r.decision_due,
            "decision_days": r.decision_days, "complex_due": r.complex_due, "extended_due": r.extended_due,
            "customer_deadline_days": r.customer_deadline_days, "extension": r.extension,
        },
        "review": p.review,
        "review_reasons": list(p.review_reasons),
        "channel": p.channel,
        "enquiry": p.enquiry,
        "now": [_step_json(s) for s in p.now],
        "then": [_step_json(s) for s in p.then],
        "reference": [_step_json(s) for s in p.reference],
        "steps": [_step_json(s) for s in p.steps],
        "avoid": [_step_json(s) for s in p.avoid],
        "fired": [{"rule": f.rule, "tier": f.tier, "because": f.because, "because_zh": because_zh(f.because),
                   "confidence": _round(f.confidence)} for f in p.fired],
    }


def plan_to_json(triage: Triage, facts: Facts, plan: HandlingPlan) -> dict[str, Any]:
    """One note's result as a JSON-ready dict with a stable field order."""
    return {"triage": _triage_json(triage), "facts": [_fact_json(f) for f in facts.items], "plan": _plan_json(plan)}


# ---------------------------------------------------------------- text card


def _pct(p: float | None) -> str:
    """Two decimals; a ranked cause or mindset far below the first reads <0.01, not 0.00, which a handler
    took for 'ruled out' or a fault."""
    if p is None:
        return ""
    return f" {p:.2f}" if p >= 0.005 else " <0.01"


def _flag_pct(t: Triage, flag: str) -> str:
    """A flag's probability, or 原文明说 where the note says it outright and the model alone would not have."""
    return " 原文明说" if flag in t.said_outright else _pct(t.risk_flag_proba.get(flag))


def _fact_value(f: Fact) -> str:
    v = f.value
    if f.kind == "amount":
        return f"{v:,.2f}".rstrip("0").rstrip(".") + "元"
    if f.kind == "age":
        return f"{v}岁（{f.text}）" if not f.text.startswith(str(v)) else f"{v}岁"
    if f.kind == "percent":
        return f"{v:g}%"
    if f.kind == "deadline":
        return f"{f.text}（{v}天）" if v is not None else f"{f.text}（天数待定）"
    if f.kind == "group_size":
        return f"{v}人（{f.text}）"
    if f.kind == "prior_complaints":
        return f"{v}次（{f.text}）"
    if f.kind == "cue":
        return f"“{f.text}”"
    return mask_pii(str(v))


def _facts_lines(facts: Facts) -> list[str]:
    kinds: dict[str, list[str]] = {}
    for f in facts.items:
        val = _fact_value(f)
        if val not in kinds.setdefault(f.kind, []):
            kinds[f.kind].append(val)
    if not kinds:
        return ["  （未提取到）"]
    order = [k for k in FACT_NAMES if k in kinds]
    return [f"  {FACT_NAMES[k]}：" + "、".join(kinds[k]) for k in order]


def _flag_lines(t: Triage) -> list[str]:
    if not t.risk_flags:
        return ["风险标记：无"]
    lines = ["风险标记："]
    for f in t.risk_flags:
        ev = "；".join(f"“{mask_pii(e.text)}”" for e in t.flag_evidence.get(f, []))
        lines.append(f"  - {_name(f)}〔{f}〕{_flag_pct(t, f)}" + (f"  依据：{ev}" if ev else ""))
    return lines


def _due_line(p: HandlingPlan) -> list[str]:
    r = p.reply_due
    lines = [f"  首次回复：{r.first_reply_hours}小时内"]
    if r.customer_deadline_days is not None:
        lines.append(f"  客户给出的期限：{r.customer_deadline_days}天内")
    if r.decision_due:
        lines.append(f"  处理决定：{r.decision_due}前（{r.decision_days}日）；复杂案件最迟{r.complex_due}；"
                     f"经批准延长最迟{r.extended_due}")
    elif r.decision_days is None:
        pass  # an enquiry: no complaint decision deadline
    else:
        lines.append(f"  处理决定：收到投诉后{r.decision_days}日内（未给出收到日期）")
    lines.append(f"  说明：{r.extension}")
    return lines


def _step_lines(steps: list, start: int, box: bool) -> list[str]:
    mark = "☐ " if box else ""
    return [f"  {mark}{i}. {s.text}" for i, s in enumerate(steps, start)]


def reference_line(plan: HandlingPlan) -> str:
    """The general process as one line: 倾听 → 记录 → 复述确认 → 致歉答复 → 登记."""
    return " → ".join(s.short or s.text[:8] for s in plan.reference)


def render_card(triage: Triage, facts: Facts, plan: HandlingPlan) -> str:
    """A plain-text card in simplified Chinese, ordered for acting in ten seconds: level and why,
    who owns it and when to reply, what to do now, then the rest; the triage behind it last."""
    t = triage
    out = ["━━━━━━━━ 投诉处理卡 ━━━━━━━━"]
    out.append(f"{_name(t.risk_level)}：{t.risk_reason or '—'}")
    depts = "、".join(DEPARTMENT_NAMES[d] for d in plan.departments) or "无"
    out.append(f"负责人：{OWNER_NAMES[plan.owner]}；协同部门：{depts}；渠道：{CHANNEL_NAMES.get(plan.channel, plan.channel)}"
               + ("；咨询" if plan.enquiry else ""))
    r = plan.reply_due
    due = f"首次回复：{r.first_reply_hours}小时内"
    if r.customer_deadline_days is not None:
        due += f"；客户期限：{r.customer_deadline_days}天内"
    if r.decision_due:
        due += f"；处理决定：{r.decision_due}前"
    out.append(due)
    if plan.review:
        out.append("【需人工复核】" + "；".join(plan.review_reasons))
    out.append("■ 现在就做")
    out += _step_lines(plan.now, 1, box=True) or ["  （无）"]
    if plan.then:
        out.append("■ 接着做")
        out += _step_lines(plan.then, len(plan.now) + 1, box=False)
    if plan.avoid:
        out.append("■ 切勿")
        out += [f"  × {s.text}" for s in plan.avoid]
    if plan.reference:
        out.append(f"■ 一般流程：{reference_line(plan)}")
    out.append("── 分诊依据 ──")
    causes = "；".join(f"{_name(c)}{_pct(p)}" for c, p in zip(t.cause, t.cause_proba))
    out.append(f"投诉原因：{causes or '未判定'}")
    if not t.risk_flags:
        out.append("风险标记：无")
    else:
        out.append("风险标记：")
        for f in t.risk_flags:
            ev = "；".join(f"“{mask_pii(e.text)}”" for e in t.flag_evidence.get(f, []))
            out.append(f"  - {_name(f)}{_flag_pct(t, f)}" + (f"  依据：{ev}" if ev else ""))
    minds = "；".join(f"{_name(m)}{_pct(t.mindset_proba.get(m))}" for m in t.mindset)
    out.append(f"客户心理：{minds or '无明显情绪诉求（咨询）'}")
    out.append("关键事实：")
    out += _facts_lines(facts)
    out.append("答复时限：")
    out += _due_line(plan)
    out.append("规则依据：")
    out += [f"  - {f.rule}：{because_zh(f.because)}" for f in plan.fired]
    return "\n".join(out)
