"""Route: the labelling queue (the store's unlabelled cases, the most useful to label first).

Each answer goes back through POST /v1/cases/{id}/labels like any correction, so `tousu retrain --from-store`
reads it and the case leaves the queue.
"""
from __future__ import annotations

from fastapi import APIRouter, HTTPException, Query, Request

from pipeline.apps.service.deps import HolderDep, ScorerDep, StoreDep, loaded_model
from pipeline.apps.service.schemas import CaseId

router = APIRouter(tags=["cases"])
MAX_SKIP = 500


@router.get("/v1/labelling", summary="Uncorrected cases in `tousu suggest`'s order, for the page's labelling queue")
async def labelling_queue(request: Request, store: StoreDep, scorer: ScorerDep, holder: HolderDep,
                          limit: int = Query(default=20, ge=1, le=100),
                          skip: list[CaseId] | None = Query(default=None, description="case ids passed over (repeatable)")
                          ) -> dict:
    """The next cases to label, most useful first; `remaining` counts every uncorrected case in the store."""
    if skip and len(skip) > MAX_SKIP:
        raise HTTPException(422, detail=f"at most {MAX_SKIP} skipped case ids")
    model, manifest = loaded_model(holder)
    queue = request.app.state.label_queue
    return await scorer.in_thread(queue.ranked, store, model, manifest["version"], limit, frozenset(skip or ()))
