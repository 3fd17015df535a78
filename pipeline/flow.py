"""The one place a note becomes a triage and a handling plan.

    text -> normalise -> Triager.triage -> extract_facts -> decide_risk -> channel, enquiry -> plan -> Result

`tousu score`, `tousu tag` (local and Dask), the service and the benchmark
all call `triage_notes`; none of them repeats the steps.
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from pipeline.handling.channel import infer_channel, is_enquiry
from pipeline.handling.facts import extract_facts
from pipeline.handling.plan import plan as make_plan
from pipeline.handling.result import Result
from pipeline.handling.risk import apply_risk
from pipeline.text.normalisation import NormalisedText, normalise

__all__ = ["triage_notes", "Result"]


def _per_note(value, n: int, what: str) -> list:
    values = list(value) if isinstance(value, (list, tuple)) else [value] * n
    if len(values) != n:
        raise ValueError(f"{n} notes but {len(values)} {what}")
    return values


def triage_notes(model, notes: Sequence[str | NormalisedText], *,
                 received: dt.date | Sequence[dt.date | None] | None = None,
                 channel: str | Sequence[str | None] | None = None,
                 with_plan: bool = True, evidence: bool = True) -> list[Result]:
    """Triage notes in one pass over the model; facts, the rule's risk level and a plan for each.

    `received`: the date the complaint came in (one for all notes, or one per note); it sets the
    regulatory decision date. None leaves the dated deadlines empty.
    `channel`: phone, counter, letter, regulator or online (one for all, or one per note); None or
    an empty value: read from the note.
    `evidence`: False leaves the flags' quoted spans out, for a caller that shows none (a tagged file).
    """
    docs = [n if isinstance(n, NormalisedText) else normalise(n) for n in notes]
    if not docs:
        return []
    days = _per_note(received, len(docs), "received dates")
    channels = _per_note(channel, len(docs), "channels")
    thresholds = getattr(model, "flag_thresholds_", {})
    results = []
    for doc, triage, day, given in zip(docs, model.triage(docs, evidence=evidence), days, channels):
        facts = extract_facts(doc.text, day, simplified=True)
        triage = apply_risk(triage, facts)
        how = given or infer_channel(doc.text, doc.is_transcript)
        if not with_plan:
            results.append(Result(triage, facts, None, channel=how))
            continue
        p = make_plan(triage, facts, day, channel=how, enquiry=is_enquiry(triage, doc.text),
                      flag_thresholds=thresholds)
        results.append(Result(triage, facts, p, channel=how))
    return results
