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
from pipeline.text.pii import mask_pii

OWNER_NAMES = {"frontline": "一线处理人员", "supervisor": "主管", "senior_specialist": "资深投诉专员"}
DEPARTMENT_NAMES = {"legal": "法务", "brand_pr": "品牌公关", "regulator_liaison": "监管联络", "security": "安保"}
SECTION_NAMES = {
    "general": "一般流程", "negotiation": "协商谈判", "mindset": "客户心理", "perception": "心理效应",
    "major": "重大投诉", "special_customer": "特殊客户", "compensation": "赔偿标准", "apology": "认错与道歉",
    "deadline": "处理时限", "beyond_course": "补充规则",
}
FACT_NAMES = {
    "amount": "金额", "age": "年龄", "date": "日期", "percent": "百分比", "policy_number": "保单号",
    "phone": "电话", "id_number": "身份证号", "bank_card": "银行卡号", "email": "邮箱", "deadline": "客户期限",
    "group_size": "人数", "prior_complaints": "此前投诉次数", "product": "产品", "cue": "线索",
}
_P = 3  # decimals kept for probabilities in JSON


def _name(label: str) -> str:
    try:
        return taxonomy().name(label)
    except KeyError:
        return label


def _round(p: float | None) -> float | None:
    return None if p is None else round(float(p), _P)


def _evidence_json(ev: Evidence) -> dict[str, Any]:
    return {"start": ev.start, "end": ev.end, "text": mask_pii(ev.text), "source": ev.source}


def _triage_json(t: Triage) -> dict[str, Any]:
    return {
        "cause": [
            {"id": c, "name": _name(c), "group": g, "proba": _round(p)}
            for c, g, p in zip(t.cause, t.cause_group or [c.split("_", 1)[0] for c in t.cause], t.cause_proba)
        ],
        "risk_level": {"id": t.risk_level, "name": _name(t.risk_level),
                       "proba": _round(t.risk_level_proba.get(t.risk_level))},
        "risk_level_proba": {k: _round(v) for k, v in t.risk_level_proba.items()},
        "risk_flags": [
            {"id": f, "name": _name(f), "proba": _round(t.risk_flag_proba.get(f)),
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


def _plan_json(p: HandlingPlan) -> dict[str, Any]:
    r = p.reply_due
    return {
        "owner": p.owner,
        "departments": list(p.departments),
        "reply_due": {
            "first_reply_hours": r.first_reply_hours, "decision_due": r.decision_due,
            "decision_days": r.decision_days, "complex_due": r.complex_due, "extended_due": r.extended_due,
            "customer_deadline_days": r.customer_deadline_days, "extension": r.extension,
        },
        "review": p.review,
        "review_reasons": list(p.review_reasons),
        "steps": [{"id": s.id, "section": s.section, "text": s.text} for s in p.steps],
        "avoid": [{"id": s.id, "section": s.section, "text": s.text} for s in p.avoid],
        "fired": [{"rule": f.rule, "because": f.because, "confidence": _round(f.confidence)} for f in p.fired],
    }


def plan_to_json(triage: Triage, facts: Facts, plan: HandlingPlan) -> dict[str, Any]:
    """One note's result as a JSON-ready dict with a stable field order."""
    return {"triage": _triage_json(triage), "facts": [_fact_json(f) for f in facts.items], "plan": _plan_json(plan)}


# ---------------------------------------------------------------- text card


def _pct(p: float | None) -> str:
    return "" if p is None else f" {p:.2f}"


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
        return f"“{f.text}”〔{v}〕"
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
        lines.append(f"  - {_name(f)}〔{f}〕{_pct(t.risk_flag_proba.get(f))}" + (f"  依据：{ev}" if ev else ""))
    return lines


def _due_line(p: HandlingPlan) -> list[str]:
    r = p.reply_due
    lines = [f"  首次回复：{r.first_reply_hours}小时内"]
    if r.customer_deadline_days is not None:
        lines.append(f"  客户给出的期限：{r.customer_deadline_days}天内")
    if r.decision_due:
        lines.append(f"  处理决定：{r.decision_due}前（{r.decision_days}日）；复杂案件最迟{r.complex_due}；"
                     f"经批准延长最迟{r.extended_due}")
    else:
        lines.append(f"  处理决定：收到投诉后{r.decision_days}日内（未给出收到日期）")
    lines.append(f"  说明：{r.extension}")
    return lines


def render_card(triage: Triage, facts: Facts, plan: HandlingPlan) -> str:
    """A plain-text card in simplified Chinese for the complaint handler."""
    t = triage
    out = ["━━━━━━━━ 投诉处理卡 ━━━━━━━━"]
    if plan.review:
        out.append("【需人工复核】" + "；".join(plan.review_reasons))
    causes = "；".join(f"{_name(c)}〔{c}〕{_pct(p)}" for c, p in zip(t.cause, t.cause_proba))
    out.append(f"投诉原因：{causes or '未判定'}")
    out.append(f"升级风险：{_name(t.risk_level)}〔{t.risk_level}〕{_pct(t.risk_level_proba.get(t.risk_level))}"
               + (f"（{t.reconciliation}）" if t.reconciliation else ""))
    out += _flag_lines(t)
    minds = "；".join(f"{_name(m)}〔{m}〕{_pct(t.mindset_proba.get(m))}" for m in t.mindset)
    out.append(f"客户心理：{minds or '无明显情绪诉求（咨询）'}")
    out.append("关键事实：")
    out += _facts_lines(facts)
    depts = "、".join(f"{DEPARTMENT_NAMES[d]}〔{d}〕" for d in plan.departments) or "无"
    out.append(f"负责人：{OWNER_NAMES[plan.owner]}〔{plan.owner}〕；协同部门：{depts}")
    out.append("答复时限：")
    out += _due_line(plan)
    out.append("处理步骤：")
    out += [f"  {i}. 【{SECTION_NAMES.get(s.section, s.section)}】{s.text}" for i, s in enumerate(plan.steps, 1)]
    out.append("切勿：")
    out += [f"  × {s.text}" for s in plan.avoid] or ["  （无）"]
    out.append("触发规则：")
    out += [f"  - {f.rule}：{f.because}" + (f"（置信度 {f.confidence:.2f}）" if f.confidence is not None else "")
            for f in plan.fired]
    return "\n".join(out)
