"""Route: the supervisor's view of the case store: the report's alerts and charts, and the queue by deadline.

Nothing here counts or warns on its own: the view is `tousu report --store` (pipeline.apps.report builds it,
pipeline.apps.report_html draws its charts) read as JSON, plus the open cases in order of their regulatory
decision date (report.deadline_queue, which the deadline alerts are cut from).
"""
from __future__ import annotations

import threading
from datetime import date
from typing import Any

from fastapi import APIRouter, Query

from pipeline.apps.service.deps import ScorerDep, StoreDep

router = APIRouter(tags=["cases"])
#: pyplot keeps global state: two requests drawing at once in the thread pool would draw on each other's figures
_DRAWING = threading.Lock()


def supervisor_view(store, *, since: date | None = None, until: date | None = None, as_of: date | None = None,
                    queue_limit: int = 100, with_charts: bool = True) -> dict[str, Any]:
    """The report on the store's cases as the page draws it. `as_of`: as `tousu report --as-of` (default: alert
    windows end on the latest date in the store, deadlines count from today)."""
    from pipeline.apps.report import AlertSettings, NotTaggedError, build_report, deadline_queue, prepare, store_frame
    from pipeline.contract.taxonomy import taxonomy

    today = as_of or date.today()
    frame = store_frame(store, since=since, until=until)
    try:
        cases = prepare(frame, store.url, text_column="text", id_column="id", date_column="date", is_store=True)
    except NotTaggedError:  # an empty store (or range): nothing to count, nothing to warn about
        return {"n": 0, "as_of": None, "today": today.isoformat(), "period": {"start": None, "end": None}, "alerts": [],
                "notes": ["案件库中还没有案件。"], "risk": {}, "groups": [], "charts": {},
                "queue": {"cases": [], "total": 0, "overdue": 0}}
    report = build_report(cases, AlertSettings(), as_of=as_of, today=today)
    tax = taxonomy()
    queue = deadline_queue(cases, today)
    for row in queue:
        row["cause_name"] = tax.name(row["cause"]) if row["cause"] in tax.causes else row["cause"]
    return {"n": report.n, "as_of": report.as_of, "today": today.isoformat(), "period": report.period,
            "alerts": [a.to_json() for a in report.alerts], "notes": report.notes, "risk": report.risk,
            "groups": [{"id": g, "name": tax.name(g), "n": n} for g, n in report.groups.items()],
            "charts": _charts(report) if with_charts else {},
            "queue": {"cases": queue[:queue_limit], "total": len(queue), "overdue": sum(q["overdue"] for q in queue)}}


def _charts(report) -> dict[str, str]:
    """The report's own charts, as data: URIs (the page's CSP allows images from data:)."""
    from pipeline import charts
    from pipeline.apps.report_html import cause_chart, group_chart, group_colours, trend_chart

    colours = group_colours()
    with _DRAWING:
        figures = {"groups": group_chart(report, colours), "causes": cause_chart(report, colours, top=10),
                   "trend": trend_chart(report, colours)}
        return {name: charts.data_uri(fig) for name, fig in figures.items() if fig is not None}


@router.get("/v1/supervisor", summary="The report's alerts and charts over the case store, and open cases by deadline")
async def supervisor(store: StoreDep, scorer: ScorerDep, since: date | None = None, until: date | None = None,
                     as_of: date | None = Query(default=None, description="as `tousu report --as-of`"),
                     limit: int = Query(default=100, ge=1, le=500, description="rows of the deadline queue"),
                     charts: bool = Query(default=True, description="false: counts and alerts only")) -> dict:
    """What a supervisor checks first: what needs attention now, and what is late or nearly so."""
    return await scorer.in_thread(supervisor_view, store, since=since, until=until, as_of=as_of, queue_limit=limit,
                                  with_charts=charts)
