"""The app factory: one ServiceSettings in, the FastAPI app out, its parts on `app.state`."""
from __future__ import annotations

from contextlib import asynccontextmanager
from pathlib import Path

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import JSONResponse
from fastapi.staticfiles import StaticFiles
from starlette.exceptions import HTTPException as StarletteHTTPException

from pipeline.apps.label_queue import LabelQueue
from pipeline.apps.service import admin, cases, labelling, page, supervisor, triage
from pipeline.apps.service.edge import Edge
from pipeline.apps.service.holder import ModelHolder
from pipeline.apps.service.logs import configure_logging, log, log_line, masked
from pipeline.apps.service.metrics import Metrics
from pipeline.apps.service.page import STATIC_DIR
from pipeline.apps.service.scoring import Scorer
from pipeline.apps.service.security import FailedAuth, Sessions
from pipeline.apps.service.settings import ServiceSettings

__all__ = ["create_app", "app_factory"]


def create_app(models_root: Path | str | None = None, settings: ServiceSettings | None = None) -> FastAPI:
    """The service. `settings` default: ServiceSettings.from_env(); `models_root` overrides settings.models_dir."""
    settings = settings if settings is not None else ServiceSettings.from_env()
    root = models_root if models_root is not None else settings.models_dir
    metrics = Metrics()
    holder = ModelHolder(Path(root) if root else None)
    holder.load_initial()
    store, store_error = _open_store(settings, metrics)
    writer = None
    if store is not None:
        from pipeline.apps.store import GroupCommitter

        writer = GroupCommitter(store)
    scorer = Scorer(threads=settings.threads, timeout_s=settings.timeout_s, metrics=metrics, writer=writer)

    @asynccontextmanager
    async def lifespan(_app: FastAPI):
        yield
        scorer.close()
        if store is not None:
            store.close()

    app = FastAPI(title="tousu", lifespan=lifespan, version="0.1.0", docs_url=None, redoc_url=None,
                  description="Triage of Chinese insurance complaint notes: cause, escalation risk, mindset "
                              "and a handling plan.")
    app.state.settings, app.state.holder, app.state.metrics = settings, holder, metrics
    app.state.store, app.state.store_error, app.state.scorer = store, store_error, scorer
    app.state.sessions = _sessions(settings)
    app.state.label_queue = LabelQueue()
    app.state.failed_auth = FailedAuth(settings.auth_failures, settings.auth_window_s)
    app.add_exception_handler(RequestValidationError, _invalid_request)
    app.add_exception_handler(StarletteHTTPException, _http_error)
    for module in (triage, admin, cases, supervisor, labelling, page):
        app.include_router(module.router)
    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")
    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins), allow_methods=["GET", "POST"],
                           allow_headers=["Authorization", "Content-Type", "X-Request-ID"])
    app.add_middleware(Edge, settings=settings, metrics=metrics, sessions=app.state.sessions,
                       failed_auth=app.state.failed_auth)
    return app


def _sessions(settings: ServiceSettings) -> Sessions | None:
    """Page sessions, signed with a key from the store's secret; none when no tokens are configured."""
    if not settings.api_tokens:
        return None
    from pipeline.apps.store import secret_key

    return Sessions(secret_key(), dict(settings.api_tokens), settings.session_hours)


async def _invalid_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
    """422 with where and why, but never the input itself (it may hold a personal number or unencodable text)."""
    detail = [{"loc": [masked(x) for x in e.get("loc", ())], "type": e.get("type"), "msg": masked(e.get("msg", ""))}
              for e in exc.errors()]
    return JSONResponse({"detail": detail}, status_code=422)


async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
    """Errors masked (a detail may quote a caller's id), and lone surrogates escaped so the answer can be sent."""
    return JSONResponse({"detail": masked(exc.detail)}, status_code=exc.status_code, headers=exc.headers)


def _open_store(settings: ServiceSettings, metrics: Metrics):
    """(the case store, None), or (None, why) when it is off or cannot be opened: the service still triages."""
    if not settings.store:
        return None, None
    from pipeline.apps.store import CaseStore

    try:
        return CaseStore(settings.database_url), None
    except Exception as exc:  # noqa: BLE001 - a broken database must not stop triage
        metrics.error("store_open")
        error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning(log_line({"event": "store_not_opened", "error": error}))
        return None, error


def app_factory() -> FastAPI:
    """For `uvicorn --factory pipeline.apps.service:app_factory`: each worker rebuilds the settings from its environment."""
    configure_logging()
    return create_app(settings=ServiceSettings.from_env())
