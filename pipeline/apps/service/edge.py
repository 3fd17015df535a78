"""The edge of every request (pure ASGI, before routing).

In order: request id; Host check; throttle of clients whose tokens keep failing (429); auth (bearer
token or page session, 401); cross-site refusal and CSRF check on unsafe methods (403); body limit
(413). On the way out every response gets the request id and the security headers, and one masked
JSON log line is written per request; an unexpected error is logged masked (parameters and
tracebacks included) and answered 500 without detail.
"""
from __future__ import annotations

import hmac
import json
import math
import re
import time
import traceback
import uuid
from dataclasses import dataclass

from fastapi import HTTPException

from pipeline.apps.service.logs import log, log_line
from pipeline.apps.service.metrics import Metrics
from pipeline.apps.service.security import (CSRF_HEADER, SESSION_COOKIE, FailedAuth, Sessions, cross_site, host_name,
                                            match_token)
from pipeline.apps.service.settings import ServiceSettings

__all__ = ["Edge", "OPEN_ROUTES"]

#: answered without auth and whatever the Host header (probes address a pod by its IP)
OPEN_ROUTES = frozenset({"/healthz", "/readyz"})
#: answered without auth: the page's shell and files (no case data in them), and the login itself
_PUBLIC = frozenset({("GET", "/"), ("GET", "/docs"), ("GET", "/redoc"), ("POST", "/v1/session")})
_SAFE_METHODS = frozenset({"GET", "HEAD", "OPTIONS"})
KNOWN_ROUTES = ("/v1/triage", "/v1/triage/batch", "/healthz", "/readyz", "/v1/model", "/metrics",
                "/v1/admin/reload", "/v1/cases", "/v1/stats/agreement", "/v1/taxonomy", "/v1/supervisor",
                "/v1/labelling", "/", "/openapi.json", "/docs", "/redoc", "/v1/session", "/v1/session/logout")
_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:-]{1,128}$")
_CASE_ROUTE = {False: "/v1/cases/{id}", True: "/v1/cases/{id}/labels"}
_SECURITY_HEADERS = [(b"x-content-type-options", b"nosniff"), (b"x-frame-options", b"DENY"),
                     (b"referrer-policy", b"no-referrer")]


class _TooLarge(HTTPException):
    """Raised while reading a body past the limit; FastAPI passes HTTPExceptions through."""

    def __init__(self, limit: int) -> None:
        super().__init__(413, detail=f"request body is larger than {limit} bytes")


@dataclass
class _Refusal:
    status: int
    detail: str
    headers: list[tuple[bytes, bytes]]


def _route_label(path: str) -> str:
    """The route a metric and a log line name: never the raw path (ids would explode the label set)."""
    if path in KNOWN_ROUTES:
        return path
    if path.startswith("/static/"):
        return "/static"
    if path.startswith("/v1/cases/"):
        return _CASE_ROUTE[path.endswith("/labels")]
    return "other"


def _cookie(headers: dict[str, str], name: str) -> str | None:
    for part in headers.get("cookie", "").split(";"):
        key, _, value = part.strip().partition("=")
        if key == name:
            return value
    return None


class Edge:
    """Request id, Host check, throttle, auth, CSRF, body limit, security headers, metrics, the log line."""

    def __init__(self, app, *, settings: ServiceSettings, metrics: Metrics, sessions: Sessions | None,
                 failed_auth: FailedAuth) -> None:
        self.app = app
        self.settings = settings
        self.tokens = dict(settings.api_tokens)  # name -> token
        self.hosts = settings.hosts()
        self.metrics = metrics
        self.sessions = sessions
        self.failed_auth = failed_auth

    async def __call__(self, scope, receive, send):
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        path = scope.get("path", "")
        route = _route_label(path)
        headers = {k.decode("latin-1").lower(): v.decode("latin-1") for k, v in scope.get("headers", [])}
        rid = headers.get("x-request-id", "")
        if not _REQUEST_ID.match(rid):
            rid = uuid.uuid4().hex
        scope.setdefault("state", {})["request_id"] = rid
        status_box = {"status": 500, "started": False}
        log_extra: dict = {}
        scope["state"]["log"] = log_extra
        no_store = not path.startswith("/static/")

        async def send_wrapped(message):
            if message["type"] == "http.response.start":
                status_box["status"] = message["status"]
                status_box["started"] = True
                hdrs = [(k, v) for k, v in message.get("headers", []) if not (no_store and k.lower() == b"cache-control")]
                hdrs += [(b"x-request-id", rid.encode("latin-1"))] + _SECURITY_HEADERS
                if not any(k.lower() == b"content-security-policy" for k, _ in hdrs):
                    hdrs.append((b"content-security-policy", b"frame-ancestors 'none'"))
                if no_store:  # case data must not stay in a shared or browser cache
                    hdrs.append((b"cache-control", b"no-store"))
                message = {**message, "headers": hdrs}
            await send(message)

        async def reply(status: int, body: dict, extra_headers: list | None = None):
            payload = json.dumps(body, ensure_ascii=False).encode("utf-8")
            await send_wrapped({"type": "http.response.start", "status": status,
                                "headers": [(b"content-type", b"application/json; charset=utf-8"),
                                            (b"content-length", str(len(payload)).encode())] + (extra_headers or [])})
            await send_wrapped({"type": "http.response.body", "body": payload})

        try:
            refusal = self._refuse(scope, headers, path)
            if refusal is not None:
                await reply(refusal.status, {"detail": refusal.detail}, refusal.headers)
                return
            too_large = {"detail": f"request body is larger than {self.settings.max_body_bytes} bytes"}
            length = headers.get("content-length")
            if length is not None and (not length.isdigit() or int(length) > self.settings.max_body_bytes):
                await reply(413, too_large)
                return
            try:
                await self.app(scope, self._limited(receive), send_wrapped)
            except _TooLarge:
                if status_box["started"]:
                    raise
                await reply(413, too_large)
        except Exception as exc:  # noqa: BLE001 - the log line and a 500, never a traceback to the caller
            self.metrics.error("unhandled")
            # masked like every log line: a statement's parameters or a validation error's input never get out whole
            log.error(log_line({"event": "unhandled", "request_id": rid, "error": f"{type(exc).__name__}: {exc}",
                                "traceback": "".join(traceback.format_exception(exc))}))
            if not status_box["started"]:
                await reply(500, {"detail": "internal error", "request_id": rid})
        finally:
            elapsed = time.perf_counter() - start
            self.metrics.observe(route, scope.get("method", ""), status_box["status"], elapsed)
            log.info(log_line({"request_id": rid, "method": scope.get("method"), "route": route,
                               "status": status_box["status"], "elapsed_ms": round(elapsed * 1000, 2), **log_extra}))

    def _limited(self, receive):
        """`receive`, raising _TooLarge once the body read so far passes max_body_bytes (a streamed body has no length)."""
        limit, seen = self.settings.max_body_bytes, 0

        async def receive_limited():
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > limit:
                    raise _TooLarge(limit)
            return message

        return receive_limited

    def _refuse(self, scope, headers: dict[str, str], path: str) -> _Refusal | None:
        """Why this request must not reach a route (None: it may); sets scope state `user` and `auth`."""
        method = scope.get("method", "")
        if path in OPEN_ROUTES:
            return None
        if "*" not in self.hosts and host_name(headers.get("host", "")) not in self.hosts:
            return _Refusal(400, "this service does not answer to that Host name; add it with --allowed-host "
                                 "or TOUSU_ALLOWED_HOSTS", [])
        state = scope["state"]
        state["user"], state["auth"] = None, "none"
        if self.tokens and method != "OPTIONS" and (method, path) not in _PUBLIC and not path.startswith("/static/"):
            refusal = self._authenticate(scope, headers, state)
            if refusal is not None:
                return refusal
        if method not in _SAFE_METHODS:
            if cross_site(headers, self.settings.cors_origins):
                return _Refusal(403, "a request from another site is refused here", [])
            if state["auth"] == "session" and not _csrf_ok(headers, state["csrf"]):
                return _Refusal(403, "missing or wrong X-CSRF-Token header for this session; reload the page", [])
        return None

    def _authenticate(self, scope, headers: dict[str, str], state: dict) -> _Refusal | None:
        client = (scope.get("client") or ("unknown",))[0]
        wait = self.failed_auth.retry_after(client)
        if wait is not None:
            return _Refusal(429, "too many wrong tokens from this address; try again later",
                            [(b"retry-after", str(max(1, math.ceil(wait))).encode())])
        auth = headers.get("authorization", "")
        if auth:
            given = auth[7:].strip() if auth[:7].lower() == "bearer " else ""
            user = match_token(self.tokens, given)
            if user is None:
                self.failed_auth.failed(client)
                return _Refusal(401, "missing or wrong bearer token (Authorization: Bearer <TOUSU_API_TOKEN>)",
                                [(b"www-authenticate", b"Bearer")])
            state["user"], state["auth"] = user, "token"
            return None
        session = self.sessions.read(_cookie(headers, SESSION_COOKIE)) if self.sessions else None
        if session is None:
            return _Refusal(401, "missing or wrong bearer token (Authorization: Bearer <TOUSU_API_TOKEN>), "
                                 "or no page session: log in at /", [(b"www-authenticate", b"Bearer")])
        state["user"], state["auth"], state["csrf"] = session.user, "session", session.csrf
        return None


def _csrf_ok(headers: dict[str, str], expected: str) -> bool:
    return hmac.compare_digest(headers.get(CSRF_HEADER, "").encode("latin-1"), expected.encode("latin-1"))
