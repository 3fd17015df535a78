"""FastAPI dependencies: each route asks for what it uses, read from `request.app.state`.

`create_app` puts one of each on the app's state; nothing is captured in closures, so a router
can be read (and tested) on its own.
"""
from __future__ import annotations

from typing import Annotated, Any

from fastapi import Depends, HTTPException, Request

from pipeline.apps.service.holder import ModelHolder
from pipeline.apps.service.metrics import Metrics
from pipeline.apps.service.scoring import Scorer
from pipeline.apps.service.settings import ServiceSettings

__all__ = ["SettingsDep", "HolderDep", "MetricsDep", "ScorerDep", "StoreDep", "loaded_model", "store_state"]


def get_settings(request: Request) -> ServiceSettings:
    return request.app.state.settings


def get_holder(request: Request) -> ModelHolder:
    return request.app.state.holder


def get_metrics(request: Request) -> Metrics:
    return request.app.state.metrics


def get_scorer(request: Request) -> Scorer:
    return request.app.state.scorer


def get_store(request: Request):
    """The case store, or 503 saying why there is none."""
    store = request.app.state.store
    if store is None:
        raise HTTPException(503, detail="the case store is off or could not be opened: "
                                        f"{request.app.state.store_error or 'started with store disabled'}")
    return store


def loaded_model(holder: ModelHolder) -> tuple[Any, dict]:
    """The (model, manifest) pair a request uses from its start to its end, or 503.

    Called inside the route, after the body is checked, so a bad body is a 422 even without a model.
    """
    pair = holder.get()
    if pair is None:
        raise HTTPException(503, detail=f"no model loaded: {holder.last_error or 'none promoted'}")
    return pair


def store_state(request: Request) -> str:
    """ok, off (started with the store disabled) or error (it could not be opened)."""
    if request.app.state.store is not None:
        return "ok"
    return "off" if not request.app.state.settings.store else "error"


SettingsDep = Annotated[ServiceSettings, Depends(get_settings)]
HolderDep = Annotated[ModelHolder, Depends(get_holder)]
MetricsDep = Annotated[Metrics, Depends(get_metrics)]
ScorerDep = Annotated[Scorer, Depends(get_scorer)]
StoreDep = Annotated[Any, Depends(get_store)]
