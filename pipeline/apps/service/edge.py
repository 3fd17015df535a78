"""The edge of every request (pure ASGI, before routing): request id, auth, body limit, metrics, the log line."""
from __future__ import annotations

import hmac
import json
import re
import time
import uuid

from fastapi import HTTPException

from pipeline.apps.service.logs import log, log_line
from pipeline.apps.service.metrics import Metrics
from pipeline.apps.service.settings import ServiceSettings

__all__ = ["Edge", "OPEN_ROUTES"]

OPEN_ROUTES = frozenset({"/healthz", "/readyz"})
KNOWN_ROUTES = ("/v1/triage", "/v1/triage/batch", "/healthz", "/readyz", "/v1/model", "/metrics",
                "/v1/admin/reload", "/v1/cases", "/v1/stats/agreement", "/v1/taxonomy", "/", "/openapi.json", "/docs",
                "/redoc")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CASE_ROUTE = {False: "/v1/cases/{id}", True: "/v1/cases/{id}/labels"}


class _TooLarge(HTTPException):
    """Raised while reading a body past the limit; FastAPI passes HTTPExceptions through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"request body is larger than {limit} bytes")


class Edge:
    """Request id, auth, body limit, metrics and the per-request log line."""

    def __init__(self, app, *, settings: ServiceSettings, metrics: Metrics) -> None:
        self.app = app
        self.settings = settings
        self.tokens = dict(settings.api_tokens)  # name -> token
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
            log.exception(log_line({"event": "unhandled", "request_id": rid, "error": f"{type(exc).__name__}: {exc}"}))
            if not status_box["started"]:
                await reply(500, {"detail": "internal error", "request_id": rid})
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.observe(route, scope.get("method", ""), status_box["status"], elapsed)
            log.info(log_line({"request_id": rid, "method": scope.get("method"), "route": route,
                                "status": status_box["status"], "elapsed_ms": round(elapsed * 1000, 2), **log_extra}))
