"""Routes for people: the handler's page, the API docs page, and the page's login (token -> session cookie).

The page and the docs are static shells served from pipeline/apps/static with no external resource;
they hold no case data, so they load without a token and ask for one (the login form) when the API says 401.
"""
from __future__ import annotations

from pathlib import Path

from fastapi import APIRouter, HTTPException, Request
from fastapi.responses import FileResponse, JSONResponse

from pipeline.apps.service.schemas import SessionLogin
from pipeline.apps.service.security import Sessions, match_token
from pipeline.apps.service.deps import SettingsDep

STATIC_DIR = Path(__file__).resolve().parent.parent / "static"
#: the page and the docs load scripts and styles from this service only, and no other site may frame them
PAGE_CSP = ("default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; base-uri 'none'; "
            "form-action 'self'; object-src 'none'")

router = APIRouter(tags=["page"])


def _html(name: str) -> FileResponse:
    return FileResponse(STATIC_DIR / name, media_type="text/html; charset=utf-8",
                        headers={"Content-Security-Policy": PAGE_CSP})


@router.get("/", include_in_schema=False)
async def page() -> FileResponse:
    return _html("index.html")


@router.get("/docs", include_in_schema=False)
@router.get("/redoc", include_in_schema=False)
async def docs() -> FileResponse:
    """The API reference, drawn from /openapi.json by a script served here (FastAPI's default loads a CDN)."""
    return _html("docs.html")


def _sessions(request: Request) -> Sessions | None:
    return request.app.state.sessions


@router.get("/v1/session", summary="Who the caller is, and the page's CSRF token")
async def whoami(request: Request, settings: SettingsDep) -> dict:
    state = request.scope["state"]
    if not settings.api_tokens:
        return {"auth": "none", "user": None, "csrf": None}
    return {"auth": state["auth"], "user": state["user"], "csrf": state.get("csrf")}


@router.post("/v1/session", summary="Log the page in: exchange a token for an HttpOnly session cookie")
async def login(body: SessionLogin, request: Request, settings: SettingsDep) -> JSONResponse:
    sessions = _sessions(request)
    if sessions is None:
        raise HTTPException(409, detail="no tokens are configured here, so the page needs no login")
    client = (request.scope.get("client") or ("unknown",))[0]
    failed = request.app.state.failed_auth
    wait = failed.retry_after(client)
    if wait is not None:
        raise HTTPException(429, detail="too many wrong tokens from this address; try again later",
                            headers={"Retry-After": str(max(1, int(wait) + 1))})
    user = match_token(dict(settings.api_tokens), body.token.strip())
    if user is None:
        failed.failed(client)
        raise HTTPException(401, detail="wrong token")
    value, session = sessions.issue(user)
    reply = JSONResponse({"auth": "session", "user": user, "csrf": session.csrf, "expires": session.expires})
    reply.headers["set-cookie"] = sessions.cookie(value, secure=request.url.scheme == "https")
    return reply


@router.post("/v1/session/logout", summary="End the page's session")
async def logout(request: Request) -> JSONResponse:
    reply = JSONResponse({"auth": "none", "user": None, "csrf": None})
    reply.headers["set-cookie"] = Sessions.clear_cookie(secure=request.url.scheme == "https")
    return reply
