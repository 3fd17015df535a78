"""Real-time scoring: an HTTP service around the promoted model, and the handler's page.

    create_app(models_root=None, settings=None) -> FastAPI
    app_factory()                       (for `uvicorn --factory`; `tousu serve --workers N` uses it)
    ServiceSettings                     the one settings object (ServiceSettings.from_env())

One module per concern:
    settings.py   ServiceSettings: read from the environment once, passed explicitly
    app.py        create_app / app_factory: builds the parts, puts them on app.state, adds the routers
    edge.py       pure-ASGI middleware: request id, auth, body limit, metrics, the per-request log line
    deps.py       FastAPI dependencies reading app.state (settings, model holder, scorer, store)
    triage.py     router: POST /v1/triage, /v1/triage/batch
    cases.py      router: the case store's routes
    supervisor.py router: the supervisor's view (the report's alerts and charts over the store, the deadline queue)
    labelling.py  router: the labelling queue (uncorrected cases in `suggest`'s order)
    admin.py      router: /healthz, /readyz, /v1/model, /metrics, /v1/admin/reload
    page.py       router: the handler's page, the docs page, the page's login (/v1/session)
    security.py   tokens, signed session cookies, CSRF, allowed hosts, throttling of wrong tokens
    run.py        uvicorn with one worker (the settings object) or several (the settings serialised once)
    holder.py     the loaded model, swapped whole on reload
    scoring.py    the model and the store off the event loop (thread pool, time limit, group commit)
    metrics.py    Prometheus counters;  logs.py  masked JSON log lines;  schemas.py  request bodies

Routes
  POST /v1/triage           one note -> triage, facts, plan (the JSON of `tousu score --json`)
  POST /v1/triage/batch     {"notes": [...]}, at most ServiceSettings.max_batch notes
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
  GET  /v1/supervisor       `tousu report --store` as JSON: alerts, counts, its charts (data: URIs), and the open
                            cases by regulatory decision date, overdue first (?since=&until=&as_of=&limit=&charts=)
  GET  /v1/labelling        uncorrected cases, the most useful to label first (`tousu suggest`'s ranking)
                            (?limit=20&skip=ID...); answers go to POST /v1/cases/{id}/labels
  GET  /                    the handler's page (pipeline/apps/static), no external resources
  GET  /v1/session          who the caller is, and the page's CSRF token
  POST /v1/session          {"token": ...} -> an HttpOnly SameSite=Strict session cookie (the page's login)
  POST /v1/session/logout   end that session
  GET  /openapi.json        the OpenAPI document; /docs (and /redoc) draw it with a script served here

Safety and bounds
- The model is only ever the registry's promoted one, loaded by
  `registry.load_model`, which checks every file's sha256 before unpickling.
  No request can name a model path (unknown body fields are refused).
- Bodies over `max_body_bytes` get 413 (checked on Content-Length and while
  reading); notes over `max_note_chars` get 422; batches over `max_batch` 413.
- The model runs in a thread pool; a request that takes longer than
  `timeout_s` gets 504 (the worker thread finishes in the background).
- Every response carries X-Request-ID (the caller's if it is sane, else a new
  one). One JSON log line per request (request_id, route, status,
  elapsed_ms); every string in a log line goes through `mask_pii`.
- With TOUSU_API_TOKEN set, every route except /healthz, /readyz, the page's
  shell and the login needs `Authorization: Bearer <token>` or a page session
  (401 otherwise). TOUSU_API_TOKENS="name:token,..." gives each caller a token
  of their own. With tokens, the author of a correction is the token's name
  and nothing else; without tokens it is the X-Tousu-User header.
- The page exchanges a token for a session cookie (HttpOnly, SameSite=Strict,
  signed with a key derived from the store's secret and bound to the token);
  a POST made with the cookie must carry X-CSRF-Token. Any POST whose Origin or
  Sec-Fetch-Site says another site is refused (403), tokens or not.
- Only Host names in ServiceSettings.hosts() are answered (400 otherwise;
  health probes excepted): DNS rebinding reads nothing. Every response says
  X-Frame-Options: DENY, frame-ancestors 'none', Referrer-Policy: no-referrer;
  all but static files say Cache-Control: no-store. A client whose tokens fail
  `auth_failures` times in `auth_window_s` gets 429 until the window clears.
- Every string a caller sends is checked at the edge (schemas.py): NUL, lone
  surrogates and over-long ids or comments are 422 on SQLite and PostgreSQL
  alike. Error answers never echo the input, and are masked; so are log lines,
  tracebacks included.
- Every triage is kept in the case store (pipeline.apps.store; $TOUSU_DATABASE_URL,
  default SQLite in the user's data folder) with masked text only. A store
  that fails does not fail the triage: the answer says `stored: false`,
  tousu_errors_total{kind="store"} counts it and the log line says why. CORS is off unless
  ServiceSettings.cors_origins names origins.
- Reload swaps the (model, manifest) pair under a lock; a request takes the
  pair once at its start, so in-flight requests finish on the old model.
  With several uvicorn workers each worker holds its own model: call reload
  once per worker (or restart) after promoting.
"""
from pipeline.apps.service.app import app_factory, create_app
from pipeline.apps.service.scoring import new_case_id
from pipeline.apps.service.settings import ServiceSettings, SettingsError

__all__ = ["create_app", "app_factory", "new_case_id", "ServiceSettings", "SettingsError"]
