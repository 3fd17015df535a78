"""The service's one settings object: read from the environment once, then passed explicitly.

`tousu serve` builds a ServiceSettings from its options and the environment.
With one worker it hands the object straight to `create_app`. Uvicorn's
worker processes can only be started from an import string, so with several
workers the CLI serialises the object into TOUSU_SERVICE_SETTINGS in the
environment it gives the uvicorn process it starts (its own os.environ is
never written); each worker's `app_factory` rebuilds the identical object
with `ServiceSettings.from_env()`.

Read by `from_env` (TOUSU_SERVICE_SETTINGS, when present, wins over all):
  TOUSU_API_TOKEN          one token, named "api"
  TOUSU_API_TOKENS         "name:token,name:token": one token per caller
  TOUSU_DATABASE_URL       the case store (default: SQLite in the user's data folder)
  TOUSU_NO_STORE=1         keep no triages
  TOUSU_MODELS_DIR         the model registry
  TOUSU_MAX_BODY_BYTES, TOUSU_MAX_NOTE_CHARS, TOUSU_MAX_BATCH, TOUSU_TIMEOUT_S, TOUSU_THREADS
  TOUSU_CORS_ORIGINS       comma-separated origins allowed to call from a browser (default none)
  TOUSU_ALLOWED_HOSTS      comma-separated Host names the service answers to ("*": any); default:
                           the loopback names and the bind address
  TOUSU_SESSION_HOURS      how long a page login lasts (default 12)
"""
from __future__ import annotations

import json
import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

__all__ = ["ServiceSettings", "SettingsError", "SETTINGS_ENV"]

#: the serialised settings `tousu serve` hands to its uvicorn workers
SETTINGS_ENV = "TOUSU_SERVICE_SETTINGS"
SINGLE_TOKEN_NAME = "api"
LOOPBACK_HOSTS = ("localhost", "127.0.0.1", "::1")
_ANY_ADDRESS = ("0.0.0.0", "::", "")


class SettingsError(ValueError):
    """The environment or the options describe settings that cannot work; the message says which."""


@dataclass(frozen=True)
class ServiceSettings:
    """Everything the service is configured with; nothing else is read from the environment later."""

    host: str = "127.0.0.1"                   # bind address (uvicorn)
    port: int = 8000
    workers: int = 1
    models_dir: str | None = None             # None: pipeline.paths.models_dir()
    max_body_bytes: int = 1_000_000
    max_note_chars: int = 20_000
    max_batch: int = 64
    timeout_s: float = 10.0
    threads: int = 4
    api_tokens: Mapping[str, str] = field(default_factory=dict)  # name -> token; empty: no auth
    store: bool = True                        # keep every triage in the case store
    database_url: str | None = None           # None: the store's default ($TOUSU_DATABASE_URL or user data)
    cors_origins: tuple[str, ...] = ()        # empty: no CORS headers at all
    allowed_hosts: tuple[str, ...] = ()       # Host header names answered; empty: loopback + bind address; "*": any
    session_hours: float = 12.0               # a page login (session cookie) lasts this long
    auth_failures: int = 10                   # failed tokens from one client within auth_window_s ...
    auth_window_s: float = 60.0               # ... and it gets 429 until the window has room again

    def __post_init__(self) -> None:
        object.__setattr__(self, "api_tokens", dict(self.api_tokens))
        object.__setattr__(self, "cors_origins", tuple(self.cors_origins))
        object.__setattr__(self, "allowed_hosts", tuple(h.strip().lower() for h in self.allowed_hosts if h.strip()))
        for name in ("max_body_bytes", "max_note_chars", "max_batch", "threads", "workers", "auth_failures"):
            if getattr(self, name) < 1:
                raise SettingsError(f"{name} must be at least 1, got {getattr(self, name)}")
        for name in ("timeout_s", "session_hours", "auth_window_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"{name} must be positive, got {getattr(self, name)}")
        for name, token in self.api_tokens.items():
            if not name or not token:
                raise SettingsError("every API token needs a name and a value")
        if len(set(self.api_tokens.values())) < len(self.api_tokens):
            raise SettingsError("two token names share one token, so a caller's name would be ambiguous; give each its own")

    def hosts(self) -> frozenset[str]:
        """The Host names answered: allowed_hosts, else the loopback names and the bind address."""
        if self.allowed_hosts:
            return frozenset(self.allowed_hosts)
        bound = () if self.host in _ANY_ADDRESS else (self.host.lower().strip("[]"),)
        return frozenset(LOOPBACK_HOSTS + bound)

    @classmethod
    def from_env(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "ServiceSettings":
        """Settings from the environment (`environ`, default os.environ), then `overrides` on top."""
        env = os.environ if environ is None else environ
        if env.get(SETTINGS_ENV):
            return replace(cls.from_json(env[SETTINGS_ENV]), **overrides)
        values: dict[str, Any] = {"api_tokens": _tokens_from_env(env)}
        for var, name, cast in (("TOUSU_MAX_BODY_BYTES", "max_body_bytes", int), ("TOUSU_MAX_NOTE_CHARS", "max_note_chars", int),
                                ("TOUSU_MAX_BATCH", "max_batch", int), ("TOUSU_TIMEOUT_S", "timeout_s", float),
                                ("TOUSU_THREADS", "threads", int)):
            if env.get(var):
                try:
                    values[name] = cast(env[var])
                except ValueError:
                    raise SettingsError(f"{var}={env[var]!r} is not a number") from None
        if env.get("TOUSU_NO_STORE") == "1":
            values["store"] = False
        if env.get("TOUSU_DATABASE_URL"):
            values["database_url"] = env["TOUSU_DATABASE_URL"]
        if env.get("TOUSU_MODELS_DIR"):
            values["models_dir"] = env["TOUSU_MODELS_DIR"]
        if env.get("TOUSU_CORS_ORIGINS"):
            values["cors_origins"] = tuple(o.strip() for o in env["TOUSU_CORS_ORIGINS"].split(",") if o.strip())
        if env.get("TOUSU_ALLOWED_HOSTS"):
            values["allowed_hosts"] = tuple(env["TOUSU_ALLOWED_HOSTS"].split(","))
        if env.get("TOUSU_SESSION_HOURS"):
            try:
                values["session_hours"] = float(env["TOUSU_SESSION_HOURS"])
            except ValueError:
                raise SettingsError(f"TOUSU_SESSION_HOURS={env['TOUSU_SESSION_HOURS']!r} is not a number") from None
        values.update(overrides)
        return cls(**values)

    def to_json(self) -> str:
        return json.dumps(asdict(self), ensure_ascii=False, sort_keys=True)

    @classmethod
    def from_json(cls, text: str) -> "ServiceSettings":
        try:
            raw = json.loads(text)
        except ValueError:
            raise SettingsError(f"{SETTINGS_ENV} is not JSON; it is written by `tousu serve`, not by hand") from None
        known = {f.name for f in fields(cls)}
        unknown = set(raw) - known
        if unknown:
            raise SettingsError(f"{SETTINGS_ENV} has unknown settings {sorted(unknown)}")
        return cls(**raw)

    def worker_env(self, base: Mapping[str, str]) -> dict[str, str]:
        """The environment for uvicorn's worker processes: `base` plus these settings, serialised."""
        return {**base, SETTINGS_ENV: self.to_json()}


def _tokens_from_env(env: Mapping[str, str]) -> dict[str, str]:
    """name -> token from TOUSU_API_TOKENS ("name:token,...") and TOUSU_API_TOKEN (named "api")."""
    tokens: dict[str, str] = {}
    for pair in (env.get("TOUSU_API_TOKENS") or "").split(","):
        name, _, tok = pair.strip().partition(":")
        if name.strip() and tok.strip():
            tokens[name.strip()] = tok.strip()
    single = env.get("TOUSU_API_TOKEN") or None
    if single:
        if SINGLE_TOKEN_NAME in tokens:
            raise SettingsError(f"TOUSU_API_TOKENS names a token '{SINGLE_TOKEN_NAME}', the name TOUSU_API_TOKEN "
                                "takes; rename that one or drop TOUSU_API_TOKEN")
        tokens[SINGLE_TOKEN_NAME] = single
    return tokens
