"""Routes on the case store: the queue, one case, a handler's correction, agreement, the label names."""
from __future__ import annotations

from dataclasses import asdict
from datetime import date, datetime
from typing import Annotated
from urllib.parse import unquote

from fastapi import APIRouter, HTTPException, Path, Query, Request

from pipeline.apps.service.deps import ScorerDep, SettingsDep, StoreDep
from pipeline.apps.service.schemas import CaseId, LabelId, Labels, Text

router = APIRouter(tags=["cases"])
PathCaseId = Annotated[CaseId, Path(description="The case id (at most 128 characters)")]

#: the author of a correction when no tokens are configured (UTF-8, percent-encoded: %E7%8E%8B%E4%B8%BD)
USER_HEADER = "x-tousu-user"


@router.get("/v1/cases", summary="Stored cases, newest first, filtered and paginated")
async def list_cases(store: StoreDep, scorer: ScorerDep,
                     risk_level: list[LabelId] | None = Query(default=None, description="low, medium, high (repeatable)"),
                     status: LabelId | None = Query(default=None, description="open or resolved"),
                     corrected: bool | None = Query(default=None, description="true: only corrected cases"),
                     cause: LabelId | None = Query(default=None, description="main cause id"),
                     since: date | datetime | None = Query(default=None, description="updated on or after (date or datetime)"),
                     until: date | datetime | None = Query(default=None, description="updated before; a date includes that day"),
                     limit: int = Query(default=50, ge=1, le=500),
                     cursor: Annotated[Text, Query(max_length=1024)] | None = None) -> dict:
    from pipeline.apps.store import StoreError

    try:
        page = await scorer.in_thread(store.list_cases, risk_level=risk_level, status=status, corrected=corrected,
                                      cause=cause, since=since, until=until, limit=limit, cursor=cursor)
    except StoreError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    return {"cases": page.cases, "next_cursor": page.next_cursor}


@router.get("/v1/cases/{case_id}", summary="One stored case with every triage and correction")
async def get_case(case_id: PathCaseId, store: StoreDep, scorer: ScorerDep) -> dict:
    from pipeline.apps.store import CaseNotFound, StoreError

    try:
        return await scorer.in_thread(store.get, case_id)
    except CaseNotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    except StoreError as exc:
        raise HTTPException(422, detail=str(exc)) from None


def correction_author(request: Request, tokens_configured: bool) -> str:
    """Who corrects: with tokens configured, the name of the caller's token (or page session), nothing else;
    without tokens, the X-Tousu-User header (422 without one)."""
    from pipeline.apps.store import MAX_ID_CHARS, text_problem

    if tokens_configured:
        return request.scope["state"]["user"]  # the edge let no one through without a token or session
    try:  # header values are latin-1 on the wire: non-ASCII names come percent-encoded (encodeURIComponent)
        author = unquote(request.headers.get(USER_HEADER) or "", errors="strict").strip()
    except UnicodeDecodeError:
        raise HTTPException(422, detail="the X-Tousu-User header is not percent-encoded UTF-8") from None
    if not author:
        raise HTTPException(422, detail="say who is correcting: send the X-Tousu-User header "
                                        "(or use a named token from TOUSU_API_TOKENS)")
    problem = text_problem(author, "the X-Tousu-User header", MAX_ID_CHARS)
    if problem:
        raise HTTPException(422, detail=problem)
    return author


@router.post("/v1/cases/{case_id}/labels", summary="A handler's correction of a stored case")
async def correct_case(case_id: PathCaseId, body: Labels, request: Request, settings: SettingsDep, store: StoreDep,
                       scorer: ScorerDep) -> dict:
    from pipeline.apps.store import CaseNotFound, StoreError

    author = correction_author(request, bool(settings.api_tokens))
    labels = {k: v for k, v in body.model_dump(exclude={"resolved", "comment"}).items() if v is not None}
    channel = "page" if request.headers.get("x-tousu-channel") == "page" else "api"
    try:
        done = await scorer.in_thread(store.correct, case_id, labels, author=author, channel=channel,
                                      resolved=body.resolved, comment=body.comment)
    except CaseNotFound as exc:
        raise HTTPException(404, detail=str(exc)) from None
    except StoreError as exc:
        raise HTTPException(422, detail=str(exc)) from None
    request.scope["state"]["log"].update({"case_id": case_id, "author": author, "changed": done.changed})
    return asdict(done)


@router.get("/v1/stats/agreement", summary="How often handlers kept the model's labels, per head and period")
async def agreement(store: StoreDep, scorer: ScorerDep, since: date | None = None, until: date | None = None,
                    by: str = Query(default="week", pattern="^(day|week|month)$")) -> dict:
    rows = await scorer.in_thread(store.agreement, since=since, until=until, by=by)
    n = sum(r.n for r in rows)
    overall = {k: round(sum(r.agree[k] * r.n for r in rows) / n, 3)
               for k in ("cause", "risk_level", "risk_flags", "mindset")} if n else {}
    return {"by": by, "periods": [{"period": r.period, "n": r.n, "agree": r.agree} for r in rows],
            "overall": {"n": n, "agree": overall}}


@router.get("/v1/taxonomy", summary="Label ids with their Chinese names, for correction forms")
async def label_names() -> dict:
    from pipeline.contract.taxonomy import taxonomy

    tax = taxonomy()
    return {"causes": [{"id": c, "name": v["name"], "group": tax.group_of(c), "group_name": tax.name(tax.group_of(c))}
                       for c, v in tax.causes.items()],
            "risk_levels": [{"id": k, "name": v["name"]} for k, v in tax.risk_levels.items()],
            "risk_flags": [{"id": k, "name": v["name"]} for k, v in tax.flags.items()],
            "mindsets": [{"id": k, "name": v["name"]} for k, v in tax.mindsets.items()]}
