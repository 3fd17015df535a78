"""The one place a note becomes a triage and a handling plan.

    text -> normalise -> Triager.triage -> extract_facts -> plan -> Result

`tousu score`, `tousu tag` (local and Dask), the service and the benchmark
all call `triage_notes`; none of them repeats the steps.
"""
from __future__ import annotations

import datetime as dt
from typing import Sequence

from pipeline.handling.facts import extract_facts
from pipeline.handling.playbook import plan as make_plan
from pipeline.handling.result import Result
from pipeline.text.normalisation import NormalisedText, normalise

__all__ = ["triage_notes", "Result"]


def triage_notes(model, notes: Sequence[str | NormalisedText], *,
                 received: dt.date | Sequence[dt.date | None] | None = None,
                 with_plan: bool = True) -> list[Result]:
    """Triage notes in one pass over the model; facts and a plan for each unless `with_plan` is False.

    `received`: the date the complaint came in (one for all notes, or one per note); it sets the
    regulatory decision date. None leaves the dated deadlines empty.
    """
    docs = [n if isinstance(n, NormalisedText) else normalise(n) for n in notes]
    if not docs:
        return []
    days = list(received) if isinstance(received, (list, tuple)) else [received] * len(docs)
    if len(days) != len(docs):
        raise ValueError(f"{len(docs)} notes but {len(days)} received dates")
    results = []
    for doc, triage, day in zip(docs, model.triage(docs), days):
        if not with_plan:
            results.append(Result(triage))
            continue
        facts = extract_facts(doc.text, day)
        results.append(Result(triage, facts, make_plan(triage, facts, day)))
    return results
