"""Real-time scoring: an HTTP service around the promoted model, and the handler's page.

    create_app(models_root=None, settings=None) -> FastAPI
    app_factory()                                 (for `uvicorn --factory`, several workers)

Routes
  POST /v1/triage           one note -> triage, facts, plan (the JSON of `tousu score --json`)
  POST /v1/triage/batch     {"notes": [...]}, at most Settings.max_batch notes
  GET  /healthz             the process is up (always 200, no auth)
  GET  /readyz              200 when a model is loaded, else 503 (no auth)
  GET  /v1/model            the loaded version and its manifest's metrics
  GET  /metrics             Prometheus text format
  POST /v1/admin/reload     load the promoted model again and swap it in
  GET  /v1/cases            stored cases, newest first: ?risk_level=high&status=open&since=2026-11-01&cursor=...
  GET  /v1/cases/{id}       one case: every triage and every correction
  POST /v1/cases/{id}/labels  a handler's correction (and/or resolved); author from the token's name or X-Tousu-User
                            (UTF-8, percent-encoded: X-Tousu-User: %E7%8E%8B%E4%B8%BD)
  GET  /v1/stats/agreement  model vs handlers per head and period (?by=week&since=...)
  GET  /v1/taxonomy         the label ids with their Chinese names (for forms)
  GET  /                    the handler's page (pipeline/static), no external resources
  GET  /openapi.json, /docs FastAPI's defaults

Safety and bounds
- The model is only ever the registry's promoted one, loaded by
  `registry.load_model`, which checks the manifest's signature and every
  file's sha256 before unpickling.
  No request can name a model path (unknown body fields are refused).
- Bodies over `max_body_bytes` get 413 (checked on Content-Length and while
  reading); notes over `max_note_chars` get 422; batches over `max_batch` 413.
- The model runs in a thread pool; a request that takes longer than
  `timeout_s` gets 504 (the worker thread finishes in the background).
- Every response carries X-Request-ID (the caller's if it is sane, else a new
  one). One JSON log line per request (request_id, route, status,
  elapsed_ms); every string in a log line goes through `mask_pii`.
- With TOUSU_API_TOKEN set, every route except /healthz and /readyz needs
  `Authorization: Bearer <token>` (401 otherwise). TOUSU_API_TOKENS="name:token,..."
  gives each caller a token of their own; the name is the author of their
  corrections.
- Every triage is kept in the case store (pipeline.apps.store; $TOUSU_DATABASE_URL,
  default SQLite in the user's data folder) with masked text only. A store
  that fails does not fail the triage: the answer says `stored: false`,
  tousu_errors_total{kind="store"} counts it and the log line says why. CORS is off unless
  Settings.cors_origins names origins.
- Reload swaps the (model, manifest) pair under a lock; a request takes the
  pair once at its start, so in-flight requests finish on the old model.
  With several uvicorn workers each worker holds its own model: call reload
  once per worker (or restart) after promoting.
"""
from __future__ import annotations

import asyncio
import hmac
import json
import logging
import os
import re
import threading
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from datetime import date, datetime
from pathlib import Path
from typing import Any
from urllib.parse import unquote

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.middleware.cors import CORSMiddleware
from fastapi.responses import FileResponse, JSONResponse, PlainTextResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel, ConfigDict, Field

from pipeline.text.pii import mask_pii

STATIC_DIR = Path(__file__).resolve().parent / "static"
log = logging.getLogger("tousu.service")

OPEN_ROUTES = frozenset({"/healthz", "/readyz"})
KNOWN_ROUTES = ("/v1/triage", "/v1/triage/batch", "/healthz", "/readyz", "/v1/model", "/metrics",
                "/v1/admin/reload", "/v1/cases", "/v1/stats/agreement", "/v1/taxonomy", "/", "/openapi.json", "/docs",
                "/redoc")
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CASE_ROUTE = {False: "/v1/cases/{id}", True: "/v1/cases/{id}/labels"}
USER_HEADER = "x-tousu-user"


@dataclass
class Settings:
    max_body_bytes: int = 1_000_000
    max_note_chars: int = 20_000
    max_batch: int = 64
    timeout_s: float = 10.0
    threads: int = 4
    api_token: str | None = None          # None: read TOUSU_API_TOKEN when the app is created
    api_tokens: dict[str, str] | None = None  # name -> token; None: read TOUSU_API_TOKENS ("name:token,...")
    store: bool = True                    # keep every triage in the case store
    database_url: str | None = None       # None: $TOUSU_DATABASE_URL or the default SQLite file
    cors_origins: tuple[str, ...] = ()    # empty: no CORS headers at all
    extra: dict = field(default_factory=dict)


# ------------------------------------------------------------------ request / response bodies

class Note(BaseModel):
    model_config = ConfigDict(extra="forbid")

    text: str = Field(description="The complaint note (simplified, traditional or mixed Chinese).")
    id: str | None = Field(default=None, description="Your case id; echoed back.")
    received: date | None = Field(default=None, description="Date received (ISO, YYYY-MM-DD); default today. "
                                                            "Sets the reply deadlines.")
    extra: dict[str, Any] | None = Field(default=None, description="Any object; echoed back untouched.")


class Batch(BaseModel):
    model_config = ConfigDict(extra="forbid")

    notes: list[Note] = Field(description="The notes, at most Settings.max_batch of them.")


class Labels(BaseModel):
    model_config = ConfigDict(extra="forbid")

    cause: list[str] | None = Field(default=None, description="Cause ids, main first (1 to 3).")
    risk_level: str | None = Field(default=None, description="low, medium or high.")
    risk_flags: list[str] | None = Field(default=None, description="Flag ids (may be empty).")
    mindset: list[str] | None = Field(default=None, description="Mindset ids, main first (0 to 2).")
    resolved: bool | None = Field(default=None, description="true: mark the case resolved; false: reopen it.")
    comment: str | None = Field(default=None, max_length=2000, description="Why, in the handler's words.")


class _TooLarge(HTTPException):
    """Raised while reading a body past the limit; FastAPI passes HTTPExceptions through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"request body is larger than {limit} bytes")


# ------------------------------------------------------------------ metrics

class Metrics:
    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self.latency_count: dict[str, int] = {}
        self.predictions: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.reloads = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self.lock:
            key = (route, method, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            buckets = self.latency.setdefault(route, [0] * len(LATENCY_BUCKETS))
            for i, b in enumerate(LATENCY_BUCKETS):
                if seconds <= b:
                    buckets[i] += 1
            self.latency_sum[route] = self.latency_sum.get(route, 0.0) + seconds
            self.latency_count[route] = self.latency_count.get(route, 0) + 1
            if status >= 500:
                self.errors[f"http_{status}"] = self.errors.get(f"http_{status}", 0) + 1

    def predicted(self, level: str) -> None:
        with self.lock:
            self.predictions[level] = self.predictions.get(level, 0) + 1

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def render(self, version: str | None) -> str:
        def lbl(**kw) -> str:
            return "{" + ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                                  for k, v in kw.items()) + "}"

        out = ["# HELP tousu_requests_total HTTP requests by route, method and status.",
               "# TYPE tousu_requests_total counter"]
        with self.lock:
            for (route, method, status), n in sorted(self.requests.items()):
                out.append(f"tousu_requests_total{lbl(route=route, method=method, status=status)} {n}")
            out += ["# HELP tousu_request_seconds Request latency.", "# TYPE tousu_request_seconds histogram"]
            for route, buckets in sorted(self.latency.items()):
                for b, n in zip(LATENCY_BUCKETS, buckets):
                    out.append(f"tousu_request_seconds_bucket{lbl(route=route, le=b)} {n}")
                out.append(f"tousu_request_seconds_bucket{lbl(route=route, le='+Inf')} {self.latency_count[route]}")
                out.append(f"tousu_request_seconds_sum{lbl(route=route)} {self.latency_sum[route]:.6f}")
                out.append(f"tousu_request_seconds_count{lbl(route=route)} {self.latency_count[route]}")
            out += ["# HELP tousu_predictions_total Notes scored, by predicted risk level.",
                    "# TYPE tousu_predictions_total counter"]
            for level in ("low", "medium", "high"):
                out.append(f"tousu_predictions_total{lbl(risk_level=level)} {self.predictions.get(level, 0)}")
            out += ["# HELP tousu_errors_total Server-side errors by kind.", "# TYPE tousu_errors_total counter"]
            for kind, n in sorted(self.errors.items()):
                out.append(f"tousu_errors_total{lbl(kind=kind)} {n}")
            out += ["# HELP tousu_model_reloads_total Successful model reloads.", "# TYPE tousu_model_reloads_total counter",
                    f"tousu_model_reloads_total {self.reloads}"]
        out += ["# HELP tousu_model_info The loaded model version (1 when one is loaded).", "# TYPE tousu_model_info gauge",
                f"tousu_model_info{lbl(version=version or '')} {1 if version else 0}"]
        return "\n".join(out) + "\n"


# ------------------------------------------------------------------ the loaded model

class ModelHolder:
    """The (model, manifest) pair in use; replaced whole, never mutated."""

    def __init__(self, root: Path | None) -> None:
        self.root = root
        self.lock = threading.Lock()
        self.current: tuple[Any, dict] | None = None
        self.last_error: str | None = None

    def _load(self) -> tuple[Any, dict]:
        from pipeline.model.registry import load_model

        return load_model(root=self.root)

    def load_initial(self) -> None:
        from pipeline.model.registry import ModelError

        try:
            pair = self._load()
        except (ModelError, OSError) as exc:
            self.last_error = str(exc)
            log.warning(_log_line({"event": "model_not_loaded", "error": str(exc)}))
            return
        with self.lock:
            self.current = pair

    def get(self) -> tuple[Any, dict] | None:
        return self.current  # one attribute read: atomic

    def reload(self) -> tuple[str | None, str]:
        """Load the promoted model and swap it in; on failure the old one stays."""
        with self.lock:  # one reload at a time; readers never wait on this lock
            old = self.current[1]["version"] if self.current else None
            pair = self._load()
            self.current = pair
            self.last_error = None
            return old, pair[1]["version"]

    @property
    def version(self) -> str | None:
        cur = self.current
        return cur[1]["version"] if cur else None


def _mask(value: Any) -> Any:
    if isinstance(value, str):
        return mask_pii(value)
    if isinstance(value, dict):
        return {k: _mask(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_mask(v) for v in value]
    return value


def _log_line(record: dict) -> str:
    return json.dumps(_mask(record), ensure_ascii=False, default=str)


# ------------------------------------------------------------------ edge middleware (pure ASGI)

class _Edge:
    """Request id, auth, body limit, metrics and the per-request log line."""

    def __init__(self, app, *, settings: Settings, tokens: dict[str, str], metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.tokens = tokens  # name -> token
        self.metrics = metrics

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope.get("path", "")
        route = path if path in KNOWN_ROUTES else ("/static" if path.startswith("/static/") else _CASE_ROUTE.get(
            path.endswith("/labels"), "other") if path.startswith("/v1/cases/") else "other")
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status_box = {"status": 500, "started": False}
        log_extra: dict = {}
        scope["state"]["log"] = log_extra

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                status_box["started"] = True
                hdrs = list(message.get("headers", []))
                hdrs.append((b"x-request-id", rid.encode("latin-1")))
                hdrs.append((b"x-content-type-options", b"nosniff"))
                message = {**message, "headers": hdrs}
            await send(message)

        async def reply(status: int, body: dict, extra_headers: list | None = None):
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            await send_wrapped({"type": "http.response.start", "status": status,
                                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                            (b"content-length", str(len(payload)).encode())] + (extra_headers or [])})
            await send_wrapped({"type": "http.response.body", "body": payload})

        try:
            if self.tokens and path not in OPEN_ROUTES and scope.get("method") != "OPTIONS":
                auth = headers.get("authorization", "")
                given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
                # compare against every token (no early exit), so timing says nothing about which matched
                matched = [name for name, tok in self.tokens.items() if hmac.compare_digest(given.encode(), tok.encode())]
                if not given or not matched:
                    await reply(401, {"detail": "missing or wrong bearer token (Authorization: Bearer <TOUSU_API_TOKEN>)"},
                                [(b"www-authenticate", b"Bearer")])
                    return
                scope["state"]["user"] = matched[0]
            limit = self.settings.max_body_bytes
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > limit):
                await reply(413, {"detail": f"request body is larger than {limit} bytes"})
                return
            seen = 0

            async def receive_limited():
                nonlocal seen
                message = await receive()
                if message["type"] == "http.request":
                    seen += len(message.get("body", b""))
                    if seen > limit:
                        raise _TooLarge(limit)
                return message

            try:
                await self.app(scope, receive_limited, send_wrapped)
            except _TooLarge:
                if status_box["started"]:
                    raise
                await reply(413, {"detail": f"request body is larger than {limit} bytes"})
        except Exception as exc:  # noqa: BLE001 - the log line and a 500, never a traceback to the caller
            self.metrics.error("unhandled")
            log.exception(_log_line({"event": "unhandled", "request_id": rid, "error": f"{type(exc).__name__}: {exc}"}))
            if not status_box["started"]:
                await reply(500, {"detail": "internal error", "request_id": rid})
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.observe(route, scope.get("method", ""), status_box["status"], elapsed)
            log.info(_log_line({"request_id": rid, "method": scope.get("method"), "route": route,
                                "status": status_box["status"], "elapsed_ms": round(elapsed * 1000, 2), **log_extra}))


# ------------------------------------------------------------------ scoring

def _score(model, notes: list[Note]) -> list:
    from pipeline.flow import triage_notes

    return triage_notes(model, [n.text for n in notes], received=[n.received or date.today() for n in notes])


def new_case_id() -> str:
    """For notes sent without an id: sortable by day, unique without coordination between workers."""
    return f"{date.today():%Y%m%d}-{uuid.uuid4().hex[:12]}"


def _tokens(settings: Settings) -> dict[str, str]:
    """name -> token, from Settings or TOUSU_API_TOKEN (name "api") and TOUSU_API_TOKENS ("name:token,...")."""
    if settings.api_tokens is not None:
        tokens = dict(settings.api_tokens)
    else:
        tokens = {}
        for pair in (os.environ.get("TOUSU_API_TOKENS") or "").split(","):
            name, _, tok = pair.strip().partition(":")
            if name.strip() and tok.strip():
                tokens[name.strip()] = tok.strip()
    single = settings.api_token if settings.api_token is not None else (os.environ.get("TOUSU_API_TOKEN") or None)
    if single:
        tokens.setdefault("api", single)
    return tokens


def create_app(models_root: Path | None = None, settings: Settings | None = None) -> FastAPI:
    """The service. `models_root`: the registry (default: $TOUSU_MODELS_DIR or models/)."""
    settings = settings or Settings()
    tokens = _tokens(settings)
    holder = ModelHolder(Path(models_root) if models_root else None)
    metrics = Metrics()
    executor = ThreadPoolExecutor(max_workers=max(1, settings.threads), thread_name_prefix="tousu-score")
    holder.load_initial()
    store, store_error = _open_store(settings, metrics)
    writer = None
    if store is not None:
        from pipeline.apps.store import GroupCommitter

        writer = GroupCommitter(store)

    @asynccontextmanager
    async def lifespan(_app):
        yield
        executor.shutdown(wait=False, cancel_futures=True)
        if writer is not None:
            writer.close()
        if store is not None:
            store.close()

    app = FastAPI(title="tousu", lifespan=lifespan, version="0.1.0",
                  description="Triage of Chinese insurance complaint notes: cause, escalation risk, mindset "
                              "and a handling plan.")
    app.state.holder, app.state.metrics, app.state.settings, app.state.store = holder, metrics, settings, store
    app.state.store_error = store_error

    def check_note(note: Note, where: list) -> None:
        if len(note.text) > settings.max_note_chars:
            raise HTTPException(422, detail=[{"loc": where + ["text"], "type": "too_long",
                                              "msg": f"the note is {len(note.text)} characters long; at most "
                                                     f"{settings.max_note_chars} are accepted. Split it or shorten it."}])
        if not note.text.strip():
            raise HTTPException(422, detail=[{"loc": where + ["text"], "type": "empty", "msg": "the note is empty."}])

    def score_and_store(model, version: str, notes: list[Note], case_ids: list[str]) -> tuple[list[dict], str | None]:
        t0 = time.perf_counter()
        done = _score(model, notes)
        results = [r.to_json() for r in done]
        if writer is None:
            return results, "the case store is off"
        from pipeline.apps.store import keep_results

        ms = (time.perf_counter() - t0) * 1000 / len(notes)
        try:
            keep_results(writer, done, case_ids, [n.text for n in notes], version, source="serve",
                         received=[n.received for n in notes], processing_ms=round(ms, 2), timeout=settings.timeout_s)
        except Exception as exc:  # noqa: BLE001 - the handler still gets the triage; the failure is counted and logged
            metrics.error("store")
            return results, f"{type(exc).__name__}: {exc}"[:300]
        return results, None

    async def run_model(request: Request, notes: list[Note]) -> tuple[list[dict], list[str], bool, str, float]:
        pair = holder.get()
        if pair is None:
            raise HTTPException(503, detail=f"no model loaded: {holder.last_error or 'none promoted'}")
        model, manifest = pair
        case_ids = [n.id if n.id and n.id.strip() else new_case_id() for n in notes]
        t0 = time.perf_counter()
        fut = executor.submit(score_and_store, model, manifest["version"], notes, case_ids)
        try:
            results, store_error = await asyncio.wait_for(asyncio.wrap_future(fut), timeout=settings.timeout_s)
        except asyncio.TimeoutError:
            metrics.error("timeout")
            raise HTTPException(504, detail=f"scoring took longer than {settings.timeout_s:g} s") from None
        for r in results:
            metrics.predicted(r["triage"]["risk_level"]["id"])
        request.scope["state"]["log"].update({"model_version": manifest["version"], "notes": len(notes),
                                              "ids": case_ids[:10]})
        if store_error and store is not None:
            request.scope["state"]["log"]["store_error"] = store_error
        return results, case_ids, store_error is None, manifest["version"], round((time.perf_counter() - t0) * 1000, 2)

    @app.post("/v1/triage", summary="Triage one note")
    async def triage_one(note: Note, request: Request) -> dict:
        check_note(note, ["body"])
        results, case_ids, stored, version, ms = await run_model(request, [note])
        return {"id": note.id, "case_id": case_ids[0], "stored": stored, **results[0], "model_version": version,
                "elapsed_ms": ms, "extra": note.extra}

    @app.post("/v1/triage/batch", summary="Triage several notes (at most Settings.max_batch)")
    async def triage_batch(batch: Batch, request: Request) -> dict:
        if len(batch.notes) > settings.max_batch:
            raise HTTPException(413, detail=f"{len(batch.notes)} notes in one batch; at most {settings.max_batch} "
                                            "are accepted. Send several batches.")
        for i, note in enumerate(batch.notes):
            check_note(note, ["body", "notes", i])
        if not batch.notes:
            return {"results": [], "model_version": holder.version, "elapsed_ms": 0.0}
        results, case_ids, stored, version, ms = await run_model(request, batch.notes)
        return {"results": [{"id": n.id, "case_id": c, **r, "extra": n.extra} for n, c, r in zip(batch.notes, case_ids, results)],
                "stored": stored, "model_version": version, "elapsed_ms": ms}

    @app.get("/healthz", summary="Liveness")
    async def healthz() -> dict:
        return {"status": "ok"}

    @app.get("/readyz", summary="Readiness: a model is loaded")
    async def readyz():
        if holder.get() is None:
            return JSONResponse({"status": "not ready", "detail": holder.last_error or "no model"}, status_code=503)
        return {"status": "ready", "model_version": holder.version,
                "store": "ok" if store is not None else ("off" if not settings.store else "error")}

    @app.get("/v1/model", summary="The loaded model's version and metrics")
    async def model_info() -> dict:
        pair = holder.get()
        if pair is None:
            raise HTTPException(503, detail=f"no model loaded: {holder.last_error or 'none promoted'}")
        m = pair[1]
        return {"version": m["version"], "created": m.get("created"), "n_train": m.get("n_train"),
                "note": m.get("note"), "metrics": m.get("metrics", {})}

    @app.get("/metrics", summary="Prometheus metrics", response_class=PlainTextResponse)
    async def prometheus() -> PlainTextResponse:
        return PlainTextResponse(metrics.render(holder.version), media_type="text/plain; version=0.0.4; charset=utf-8")

    @app.post("/v1/admin/reload", summary="Load the promoted model from the registry and swap it in")
    async def reload_model() -> dict:
        from pipeline.model.registry import ModelError

        try:
            old, new = await asyncio.get_running_loop().run_in_executor(None, holder.reload)
        except (ModelError, OSError) as exc:
            metrics.error("reload")
            raise HTTPException(409 if holder.get() else 503,
                                detail=f"reload refused: {exc}; still serving {holder.version or 'no model'}") from None
        with metrics.lock:
            metrics.reloads += 1
        log.info(_log_line({"event": "reload", "old_version": old, "new_version": new}))
        return {"old_version": old, "new_version": new, "changed": old != new}

    # -------------------------------------------------------------- the case store

    def need_store():
        if store is None:
            raise HTTPException(503, detail="the case store is off or could not be opened: "
                                            f"{app.state.store_error or 'started with store disabled'}")
        return store

    async def in_thread(fn, *args, **kwargs):
        return await asyncio.get_running_loop().run_in_executor(executor, lambda: fn(*args, **kwargs))

    @app.get("/v1/cases", summary="Stored cases, newest first, filtered and paginated")
    async def list_cases(risk_level: list[str] | None = Query(default=None, description="low, medium, high (repeatable)"),
                         status: str | None = Query(default=None, description="open or resolved"),
                         corrected: bool | None = Query(default=None, description="true: only corrected cases"),
                         cause: str | None = Query(default=None, description="main cause id"),
                         since: date | datetime | None = Query(default=None, description="updated on or after (date or datetime)"),
                         until: date | datetime | None = Query(default=None, description="updated before; a date includes that day"),
                         limit: int = Query(default=50, ge=1, le=500), cursor: str | None = None) -> dict:
        from pipeline.apps.store import StoreError

        try:
            page = await in_thread(need_store().list_cases, risk_level=risk_level, status=status, corrected=corrected,
                                   cause=cause, since=since, until=until, limit=limit, cursor=cursor)
        except StoreError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        return {"cases": page.cases, "next_cursor": page.next_cursor}

    @app.get("/v1/cases/{case_id}", summary="One stored case with every triage and correction")
    async def get_case(case_id: str) -> dict:
        from pipeline.apps.store import CaseNotFound

        try:
            return await in_thread(need_store().get, case_id)
        except CaseNotFound as exc:
            raise HTTPException(404, detail=str(exc)) from None

    @app.post("/v1/cases/{case_id}/labels", summary="A handler's correction of a stored case")
    async def correct_case(case_id: str, body: Labels, request: Request) -> dict:
        from dataclasses import asdict

        from pipeline.apps.store import CaseNotFound, StoreError

        user = request.scope["state"].get("user")
        # header values are latin-1 on the wire: non-ASCII names come percent-encoded (encodeURIComponent)
        header = unquote(request.headers.get(USER_HEADER) or "").strip()
        author = header if user in (None, "api") and header else user
        if not author:
            raise HTTPException(422, detail="say who is correcting: send the X-Tousu-User header "
                                            "(or use a named token from TOUSU_API_TOKENS)")
        labels = {k: v for k, v in body.model_dump(exclude={"resolved", "comment"}).items() if v is not None}
        channel = "page" if request.headers.get("x-tousu-channel") == "page" else "api"
        try:
            done = await in_thread(need_store().correct, case_id, labels, author=author, channel=channel,
                                   resolved=body.resolved, comment=body.comment)
        except CaseNotFound as exc:
            raise HTTPException(404, detail=str(exc)) from None
        except StoreError as exc:
            raise HTTPException(422, detail=str(exc)) from None
        request.scope["state"]["log"].update({"case_id": case_id, "author": author, "changed": done.changed})
        return asdict(done)

    @app.get("/v1/stats/agreement", summary="How often handlers kept the model's labels, per head and period")
    async def agreement(since: date | None = None, until: date | None = None,
                        by: str = Query(default="week", pattern="^(day|week|month)$")) -> dict:
        rows = await in_thread(need_store().agreement, since=since, until=until, by=by)
        n = sum(r.n for r in rows)
        overall = {k: round(sum(r.agree[k] * r.n for r in rows) / n, 3) for k in ("cause", "risk_level", "risk_flags", "mindset")} if n else {}
        return {"by": by, "periods": [{"period": r.period, "n": r.n, "agree": r.agree} for r in rows],
                "overall": {"n": n, "agree": overall}}

    @app.get("/v1/taxonomy", summary="Label ids with their Chinese names, for correction forms")
    async def label_names() -> dict:
        from pipeline.contract.taxonomy import taxonomy

        tax = taxonomy()
        return {"causes": [{"id": c, "name": v["name"], "group": tax.group_of(c), "group_name": tax.name(tax.group_of(c))}
                           for c, v in tax.causes.items()],
                "risk_levels": [{"id": k, "name": v["name"]} for k, v in tax.risk_levels.items()],
                "risk_flags": [{"id": k, "name": v["name"]} for k, v in tax.flags.items()],
                "mindsets": [{"id": k, "name": v["name"]} for k, v in tax.mindsets.items()]}

    @app.get("/", include_in_schema=False)
    async def page() -> FileResponse:
        return FileResponse(STATIC_DIR / "index.html", media_type="text/html; charset=utf-8",
                            headers={"Content-Security-Policy": "default-src 'self'; img-src 'self' data:"})

    app.mount("/static", StaticFiles(directory=STATIC_DIR), name="static")

    if settings.cors_origins:
        app.add_middleware(CORSMiddleware, allow_origins=list(settings.cors_origins),
                           allow_methods=["GET", "POST"], allow_headers=["Authorization", "Content-Type", "X-Request-ID"])
    app.add_middleware(_Edge, settings=settings, tokens=tokens, metrics=metrics)
    return app


def _open_store(settings: Settings, metrics: Metrics):
    """(the case store, None), or (None, why) when it is off or cannot be opened: the service still triages."""
    if not settings.store:
        return None, None
    from pipeline.apps.store import CaseStore

    try:
        return CaseStore(settings.database_url), None
    except Exception as exc:  # noqa: BLE001 - a broken database must not stop triage
        metrics.error("store_open")
        error = f"{type(exc).__name__}: {exc}"[:300]
        log.warning(_log_line({"event": "store_not_opened", "error": error}))
        return None, error


def _configure_logging() -> None:
    if not log.handlers:
        handler = logging.StreamHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        log.addHandler(handler)
        log.setLevel(logging.INFO)
        log.propagate = False


def app_factory() -> FastAPI:
    """For `uvicorn --factory pipeline.apps.service:app_factory` (each worker builds its own app)."""
    _configure_logging()
    s = Settings()
    for name, attr, cast in (("TOUSU_MAX_BODY_BYTES", "max_body_bytes", int), ("TOUSU_MAX_NOTE_CHARS", "max_note_chars", int),
                             ("TOUSU_MAX_BATCH", "max_batch", int), ("TOUSU_TIMEOUT_S", "timeout_s", float),
                             ("TOUSU_THREADS", "threads", int)):
        if os.environ.get(name):
            setattr(s, attr, cast(os.environ[name]))
    if os.environ.get("TOUSU_NO_STORE") == "1":
        s.store = False
    return create_app(settings=s)
