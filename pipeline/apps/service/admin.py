"""Routes for operators: liveness, readiness, the loaded model, Prometheus metrics, hot reload."""
from __future__ import annotations

import asyncio

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import JSONResponse, PlainTextResponse

from pipeline.apps.service.deps import HolderDep, MetricsDep, loaded_model, store_state
from pipeline.apps.service.logs import log, log_line

router = APIRouter(tags=["admin"])


@router.get("/healthz", summary="Liveness")
async def healthz() -> dict:
    return {"status": "ok"}


@router.get("/readyz", summary="Readiness: a model is loaded")
async def readyz(request: Request, holder: HolderDep):
    if holder.get() is None:
        return JSONResponse({"status": "not ready", "detail": holder.last_error or "no model"}, status_code=503)
    return {"status": "ready", "model_version": holder.version, "store": store_state(request)}


@router.get("/v1/model", summary="The loaded model's version and metrics")
async def model_info(holder: HolderDep) -> dict:
    m = loaded_model(holder)[1]
    return {"version": m["version"], "created": m.get("created"), "n_train": m.get("n_train"),
            "note": m.get("note"), "metrics": m.get("metrics", {})}


@router.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
async def prometheus(holder: HolderDep, metrics: MetricsDep) -> PlainTextResponse:
    return PlainTextResponse(metrics.render(holder.version), media_type="text/plain; version=0.0.4; charset=utf-8")


@router.post("/v1/admin/reload", summary="Load the promoted model from the registry and swap it in")
async def reload_model(holder: HolderDep, metrics: MetricsDep) -> dict:
    from pipeline.model.registry import ModelError

    try:
        old, new = await asyncio.get_running_loop().run_in_executor(None, holder.reload)
    except (ModelError, OSError) as exc:
        metrics.error("reload")
        raise HTTPException(409 if holder.get() else 503,
                            detail=f"reload refused: {exc}; still serving {holder.version or 'no model'}") from None
    metrics.reloaded()
    log.info(log_line({"event": "reload", "old_version": old, "new_version": new}))
    return {"old_version": old, "new_version": new, "changed": old != new}
