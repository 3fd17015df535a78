"""The engine: (Triage, Facts) -> HandlingPlan, in three tiers a handler can act on in ten seconds.

`now` holds at most five steps, the most urgent first: safety (self-harm,
violence), then the escalation each flag needs (brand PR, regulator liaison,
legal, group early warning), then the one step that matters most for this
cause and mindset. `then` is the rest of the handling; `reference` is the
general process, collapsed to one line. Tier, urgency and confidence gates
are data in the playbook; this module only orders what fired.
"""
from __future__ import annotations

import datetime as dt
from typing import Any, Iterable

from pipeline.contract.records import Facts, FiredRule, HandlingPlan, ReplyDue, Step, Triage
from pipeline.handling.gates import note_keys
from pipeline.handling.playbook import DEPARTMENTS, OWNERS, Context, Playbook, PlaybookSettings, Rule, default_playbook
from pipeline.handling.review import review_reasons

__all__ = ["plan"]


def _dedupe(items: Iterable[Step], taken: set[str] | None = None) -> list[Step]:
    seen: set[str] = set(taken or ())
    out = []
    for s in items:
        if s.id not in seen:
            seen.add(s.id)
            out.append(s)
    return out


def _owner(fired: list[Rule], triage: Triage, settings: PlaybookSettings) -> str:
    level = max((OWNERS.index(r.owner) for r in fired), default=0)
    floor = settings.owner_floor.get(triage.risk_level)
    if floor:
        level = max(level, OWNERS.index(floor))
    return OWNERS[level]


def _departments(fired: list[Rule]) -> list[str]:
    wanted = {d for r in fired for d in r.departments}
    return [d for d in DEPARTMENTS if d in wanted]


def _reply_due(settings: PlaybookSettings, triage: Triage, facts: Facts, received: dt.date | None,
               enquiry: bool) -> ReplyDue:
    """First reply by risk level, capped by a customer's own deadline; regulatory dates from `received`.

    A plain enquiry has no complaint decision deadline: it is answered, or called back at a stated time."""
    hours = settings.reply_hours.get(triage.risk_level, settings.reply_hours["medium"])
    days = [f.value for f in facts.items if f.kind == "deadline" and isinstance(f.value, (int, float))]
    customer_days = int(min(days)) if days else None
    if customer_days is not None:
        hours = min(hours, max(settings.min_reply_hours, customer_days * 24))
    if isinstance(received, dt.datetime):
        received = received.date()
    if enquiry:
        return ReplyDue(first_reply_hours=hours, decision_due=None, decision_days=None,
                        extension="咨询：能当场答复的当场答复；不能的告诉客户具体回电时间。",
                        customer_deadline_days=customer_days)

    def due(n: int) -> str | None:
        return (received + dt.timedelta(days=n)).isoformat() if received else None

    return ReplyDue(
        first_reply_hours=hours,
        decision_due=due(settings.decision_days),
        decision_days=settings.decision_days,
        extension=settings.extension_text,
        complex_due=due(settings.complex_days),
        extended_due=due(settings.complex_days + settings.extension_days),
        customer_deadline_days=customer_days,
    )


def _minus_urgency(rule: Rule) -> float:
    return -rule.urgency


def _tiers(by_urgency: list[Rule], pb: Playbook) -> tuple[list[Step], list[Step], list[Step]]:
    """Steps of the fired rules (most urgent first, firing order breaking ties) into now / then / reference."""
    now_rules = [r for r in by_urgency if r.tier == "now"]
    focus_rules = [r for r in by_urgency if r.tier == "focus" and r.steps]
    now = _dedupe(pb.steps[s] for r in now_rules for s in r.steps)
    overflow = now[pb.settings.max_now:]
    now = now[:pb.settings.max_now]
    focus_first = focus_rules[0].steps[0] if focus_rules else None
    if focus_first and len(now) < pb.settings.max_now and focus_first not in {s.id for s in now}:
        now.append(pb.steps[focus_first])
    later = [pb.steps[s] for r in by_urgency if r.tier in ("then", "focus") for s in r.steps]
    then = _dedupe(overflow + later, taken={s.id for s in now})[:pb.settings.max_then]
    reference = _dedupe(pb.steps[s] for r in by_urgency if r.tier == "reference" for s in r.steps)
    return now, then, reference


def plan(triage: Triage, facts: Facts, received: dt.date | None = None, playbook: Playbook | None = None, *,
         channel: str = "unknown", enquiry: bool = False,
         flag_thresholds: dict[str, float] | None = None) -> HandlingPlan:
    """The handling plan for one triaged note. Pure: no I/O after the first load."""
    pb = playbook or default_playbook()
    ctx = Context(triage, facts, channel=channel, enquiry=enquiry, gates=pb.settings.gates)
    fired: list[Rule] = []
    records: list[FiredRule] = []
    flagged_by_rules: list[tuple[Rule, str]] = []
    rules, index = pb.rules, pb.index
    alike: dict[int, Any] = {}  # a condition several rules share, tested once per note
    for i in index.candidates(note_keys(ctx)):  # the rules that can fire, in firing order
        rule, first = rules[i], index.alike[i]
        if first is None:
            hit = rule.test(ctx)
        elif first in alike:
            hit = alike[first]
        else:
            hit = alike[first] = rule.test(ctx)
        if hit is None:
            continue
        fired.append(rule)
        because, conf = "; ".join(dict.fromkeys(hit[0])), hit[1]
        records.append(FiredRule(rule=rule.id, because=because, confidence=conf, tier=rule.tier))
        if rule.review:
            flagged_by_rules.append((rule, because))
    by_urgency = sorted(fired, key=_minus_urgency)  # a stable sort: firing order breaks ties
    now, then, reference = _tiers(by_urgency, pb)
    reasons = review_reasons(triage, pb.settings, flag_thresholds or {}, flagged_by_rules, pb.steps)
    return HandlingPlan(
        steps=now + then,
        avoid=_dedupe(pb.avoid[a] for r in by_urgency for a in r.avoid)[:pb.settings.max_avoid],
        owner=_owner(fired, triage, pb.settings),
        departments=_departments(fired),
        reply_due=_reply_due(pb.settings, triage, facts, received, enquiry),
        fired=records,
        review=bool(reasons),
        review_reasons=reasons,
        now=now,
        then=then,
        reference=reference,
        channel=channel,
        enquiry=enquiry,
    )
