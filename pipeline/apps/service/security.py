"""Who is calling, and from where: tokens, page sessions, CSRF, allowed hosts, throttling of failed tokens.

- A caller with a token sends `Authorization: Bearer <token>`; the token's name is who they are.
- The page cannot keep a token safely, so it exchanges one (POST /v1/session) for a session cookie:
  HttpOnly (scripts cannot read it), SameSite=Strict (other sites cannot send it), signed with a key
  derived from the server's secret and bound to the token it came from (rotating the token ends the
  session). Every unsafe request made with the cookie must also carry `X-CSRF-Token`, a value derived
  from the cookie that the page receives in the login answer.
- Any unsafe request whose Origin (or Sec-Fetch-Site) says it comes from another site is refused, so a
  form on another site cannot post here even when no tokens are configured.
- The Host header must name this service (DNS rebinding), and a client whose tokens keep failing is
  answered 429 for a while.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import threading
import time
from collections import OrderedDict, deque
from dataclasses import dataclass
from urllib.parse import urlsplit

__all__ = ["Sessions", "Session", "FailedAuth", "host_name", "cross_site", "match_token",
           "SESSION_COOKIE", "CSRF_HEADER"]

SESSION_COOKIE = "tousu_session"
CSRF_HEADER = "x-csrf-token"


def match_token(tokens: dict[str, str], given: str) -> str | None:
    """The name whose token is `given`, comparing against every token (no early exit: timing says nothing)."""
    if not given:
        return None
    found = None
    for name, tok in tokens.items():
        if hmac.compare_digest(given.encode("utf-8", "surrogatepass"), tok.encode("utf-8", "surrogatepass")):
            found = name
    return found


@dataclass(frozen=True)
class Session:
    user: str
    csrf: str
    expires: int


class Sessions:
    """Signed, stateless session cookies (every worker with the same secret accepts them)."""

    def __init__(self, secret: bytes, tokens: dict[str, str], hours: float) -> None:
        self._key = hmac.new(secret, b"tousu session cookie v1", hashlib.sha256).digest()
        self._tokens = dict(tokens)
        self.max_age = int(hours * 3600)

    def _mac(self, payload: str) -> str:
        return hmac.new(self._key, payload.encode("utf-8"), hashlib.sha256).hexdigest()

    def _bound(self, payload: str, user: str) -> str:
        """The MAC over the payload and the user's current token: a new token ends old sessions."""
        return self._mac(payload + "|" + hashlib.sha256(self._tokens[user].encode("utf-8")).hexdigest())

    def issue(self, user: str, now: float | None = None) -> tuple[str, Session]:
        """(cookie value, session) for a user whose token was just checked."""
        expires = int((now if now is not None else time.time()) + self.max_age)
        payload = base64.urlsafe_b64encode(json.dumps([user, expires, os.urandom(12).hex()]).encode()).decode().rstrip("=")
        value = f"{payload}.{self._bound(payload, user)}"
        return value, Session(user, self._csrf(value), expires)

    def read(self, value: str | None, now: float | None = None) -> Session | None:
        """The session this cookie value proves, or None (forged, expired, or its token changed)."""
        if not value or value.count(".") != 1 or len(value) > 4096:
            return None
        payload, mac = value.split(".")
        try:
            user, expires, _nonce = json.loads(base64.urlsafe_b64decode(payload + "=" * (-len(payload) % 4)))
        except (ValueError, TypeError):
            return None
        if not isinstance(user, str) or user not in self._tokens or not isinstance(expires, int):
            return None
        if not hmac.compare_digest(mac, self._bound(payload, user)):
            return None
        if expires < (now if now is not None else time.time()):
            return None
        return Session(user, self._csrf(value), expires)

    def _csrf(self, cookie_value: str) -> str:
        return self._mac("csrf|" + cookie_value)

    def cookie(self, value: str, *, secure: bool) -> str:
        """The Set-Cookie header value for a new session."""
        return (f"{SESSION_COOKIE}={value}; Max-Age={self.max_age}; Path=/; HttpOnly; SameSite=Strict"
                + ("; Secure" if secure else ""))

    @staticmethod
    def clear_cookie(*, secure: bool) -> str:
        return f"{SESSION_COOKIE}=; Max-Age=0; Path=/; HttpOnly; SameSite=Strict" + ("; Secure" if secure else "")


class FailedAuth:
    """Failed tokens per client address in a sliding window; past the limit the client waits (429)."""

    def __init__(self, limit: int, window_s: float, max_clients: int = 10_000) -> None:
        self.limit = limit
        self.window_s = window_s
        self.max_clients = max_clients
        self._lock = threading.Lock()
        self._fails: OrderedDict[str, deque[float]] = OrderedDict()

    def retry_after(self, client: str, now: float | None = None) -> float | None:
        """Seconds this client must wait before trying a token again, or None."""
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._fails.get(client)
            if q is None:
                return None
            while q and q[0] <= now - self.window_s:
                q.popleft()
            if len(q) < self.limit:
                return None
            return max(0.0, q[0] + self.window_s - now)

    def failed(self, client: str, now: float | None = None) -> None:
        now = time.monotonic() if now is None else now
        with self._lock:
            q = self._fails.pop(client, None) or deque()
            q.append(now)
            while len(q) > self.limit:
                q.popleft()
            self._fails[client] = q  # most recent last: the oldest client is evicted first
            while len(self._fails) > self.max_clients:
                self._fails.popitem(last=False)


def host_name(host_header: str) -> str:
    """The name in a Host header, without port or IPv6 brackets, lower case."""
    host = host_header.strip().lower()
    if host.startswith("["):
        return host[1:host.find("]")] if "]" in host else host
    return host.rsplit(":", 1)[0] if host.count(":") == 1 else host


def cross_site(headers: dict[str, str], allowed_origins: tuple[str, ...]) -> bool:
    """True when the browser says this request comes from another site (and that origin is not allowed by CORS).

    The Origin's host and port must equal the Host header (which the allowed-hosts check has vetted). The
    scheme is not compared: behind a proxy that ends TLS the page's origin is https while the service sees http.
    """
    origin = headers.get("origin")
    if origin and origin != "null":
        if origin in allowed_origins:
            return False
        return urlsplit(origin).netloc.lower() != headers.get("host", "").lower()
    if origin == "null":
        return True
    return headers.get("sec-fetch-site") in ("cross-site", "same-site")
