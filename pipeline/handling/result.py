"""One note's outcome, and the three ways people and programs read it.

A `Result` is what `pipeline.flow.triage_notes` returns for each note: the
model's triage, the facts pulled from the text and the handling plan. It
renders itself to the JSON record (`tousu score --json`, the service, the
case store), to a row of `tousu tag` columns and to the handler's card.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from pipeline.contract.records import Facts, HandlingPlan, Triage
from pipeline.contract.taxonomy import taxonomy
from pipeline.handling.render import OWNER_NAMES

__all__ = ["Result", "TAG_COLUMNS", "PLAN_COLUMNS", "PLAN_MODES"]

TAG_COLUMNS = ("pred_cause", "pred_cause_name", "pred_cause_proba", "pred_cause_group", "pred_risk_level",
               "pred_risk_level_name", "risk_reason", "pred_risk_flags", "pred_risk_flags_name", "pred_mindset",
               "pred_mindset_name", "channel", "review", "review_reasons")
_SUMMARY = ("plan_now", "plan_owner", "plan_owner_name", "plan_departments", "plan_steps", "reply_first_hours",
            "decision_due")
PLAN_COLUMNS = {
    "none": (),
    "summary": _SUMMARY,
    "full": _SUMMARY + ("plan_step_texts", "plan_avoid", "plan_fired", "facts"),
}
PLAN_MODES = tuple(PLAN_COLUMNS)


@dataclass
class Result:
    """The triage of one note, with its facts and plan (both None when the plan was not asked for)."""

    triage: Triage
    facts: Facts | None = None
    plan: HandlingPlan | None = None
    channel: str = "unknown"

    def to_json(self) -> dict[str, Any]:
        """The JSON record: triage, facts, plan, with a stable field order."""
        from pipeline.handling.render import plan_to_json

        return plan_to_json(self.triage, self.facts or Facts(), self._need_plan())

    def card(self) -> str:
        """The handler's card, in Chinese."""
        from pipeline.handling.render import render_card

        return render_card(self.triage, self.facts or Facts(), self._need_plan())

    def tag_row(self, plan_mode: str = "summary") -> dict[str, Any]:
        """The `tousu tag` columns for this note (ids, lists as lists)."""
        t = self.triage
        tax = taxonomy()
        row: dict[str, Any] = {
            "pred_cause": t.cause, "pred_cause_name": [tax.name(c) for c in t.cause],
            "pred_cause_proba": t.cause_proba, "pred_cause_group": t.cause_group,
            "pred_risk_level": t.risk_level, "pred_risk_level_name": tax.name(t.risk_level), "risk_reason": t.risk_reason,
            "pred_risk_flags": t.risk_flags, "pred_risk_flags_name": [tax.name(f) for f in t.risk_flags],
            "pred_mindset": t.mindset, "pred_mindset_name": [tax.name(m) for m in t.mindset],
            "channel": self.channel,
        }
        if plan_mode == "none" or self.plan is None:
            row["review"] = None
            row["review_reasons"] = []
            return row
        p = self.plan
        row.update({
            "review": bool(p.review), "review_reasons": list(p.review_reasons),
            "plan_now": [s.text for s in p.now],
            "plan_owner": p.owner, "plan_owner_name": OWNER_NAMES.get(p.owner, p.owner),
            "plan_departments": list(p.departments), "plan_steps": [s.id for s in p.steps],
            "reply_first_hours": p.reply_due.first_reply_hours, "decision_due": p.reply_due.decision_due,
        })
        if plan_mode == "full":
            row.update({
                "plan_step_texts": [s.text for s in p.steps], "plan_avoid": [a.text for a in p.avoid],
                "plan_fired": [f.rule for f in p.fired],
                "facts": [f"{f.kind}={f.value}" for f in (self.facts or Facts()).items],
            })
        return row

    def _need_plan(self) -> HandlingPlan:
        if self.plan is None:
            raise ValueError("this result was made without a plan (triage_notes(..., with_plan=False))")
        return self.plan
