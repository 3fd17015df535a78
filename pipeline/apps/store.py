"""The case store: every triage kept for audit, handlers' corrections kept beside it.

    store = CaseStore()                      # $TOUSU_DATABASE_URL, else SQLite in the user's data folder
    store.record([TriageRecord(...)])        # one transaction; the case row is created or updated
    store.correct("C-1", {"risk_level": "high"}, author="王丽", channel="page")
    store.list_cases(risk_level="high", since=date(2026, 11, 1))
    store.export_corrected(since=date(2026, 11, 1))   # label-file rows for `tousu retrain --new`
    store.agreement(by="week")               # model vs handler, per head and period

Tables (the schema is owned by the Alembic migrations in pipeline/migrations):
  cases        one row per case id: the latest triage's risk and cause, the
               handler's current labels once corrected, status open/resolved.
               `risk_level` is the level the queue should use: the handler's
               when corrected, else the model's latest.
  triages      every assessment ever made: masked text and a keyed hash (HMAC-SHA256)
               of the original, model version, the full JSON (heads with
               probabilities, facts, plan), the predicted labels, timing.
  corrections  every correction: who, when, through which channel, the labels
               before and after, which heads changed, and the triage it
               corrected. Nothing is ever updated in place here.

Writes are safe with several processes: SQLite runs in WAL mode and every
write transaction starts with BEGIN IMMEDIATE (writers queue on the busy
timeout instead of failing on a lock upgrade); PostgreSQL writes upsert the
case row with ON CONFLICT. Original note text is never stored, only the
masked text and its keyed hash.

Privacy
- The hash of the original is an HMAC keyed with a secret kept outside the
  database (`secret_key`: $TOUSU_SECRET, else `secret.key` created mode 0600 in
  the user's data folder): without the key, guessing phone or ID numbers
  against it is no faster than guessing blind. The API never returns it.
- Every free-text field a person writes (a correction's comment and author)
  is masked with mask_pii before it is stored, like the note.
- Text that no backend can store the same way (NUL, lone surrogates, over-long
  ids) is refused with StoreError on every backend alike.
- The engine hides statement parameters from its error messages, so a failing
  statement never carries a note or a number into a log.
- A new SQLite file is created mode 0600.
"""
from __future__ import annotations

import base64
import hashlib
import hmac
import json
import os
import queue
import threading
import time
from collections import defaultdict
from concurrent.futures import Future
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta, timezone
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterator, Sequence

import sqlalchemy as sa
from sqlalchemy import (
    JSON,
    Boolean,
    Date,
    DateTime,
    Float,
    ForeignKey,
    Integer,
    String,
    Text,
    event,
)
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.engine import Connection, Engine
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from pipeline.io import LABEL_FIELDS, LIST_FIELDS, as_list, label_problems
from pipeline.text.pii import mask_pii

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
ENV_URL = "TOUSU_DATABASE_URL"
CHANNELS = ("page", "api", "cli")
PERIODS = ("day", "week", "month")
#: a secondary cause joins the predicted labels at this probability (the main cause always does)
SECONDARY_CAUSE_MIN = 0.25
MAX_PAGE = 500
_PG_LOCK = 7_274_889_101  # advisory lock id serialising migrations on PostgreSQL
_Json = JSON(none_as_null=True).with_variant(JSONB(none_as_null=True), "postgresql")
#: triage columns `get` leaves out: keyed hashes of the original text serve matching, not reading
_NEVER_SHOWN = frozenset({"text_hmac", "dedupe_key"})


class StoreError(ValueError):
    """A request the store refuses: unknown case, bad labels, bad filter. The message says which."""


class CaseNotFound(StoreError):
    pass


# ------------------------------------------------------------------ schema (kept equal to the migrations by a test)

class Base(DeclarativeBase):
    pass


class CaseRow(Base):
    __tablename__ = "cases"

    case_id: Mapped[str] = mapped_column(String(128), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(), index=True)
    updated_at: Mapped[datetime] = mapped_column(DateTime())
    received_on: Mapped[date | None] = mapped_column(Date())
    last_triage_id: Mapped[int | None] = mapped_column(Integer())
    risk_level: Mapped[str] = mapped_column(String(16), index=True)
    main_cause: Mapped[str] = mapped_column(String(64), index=True)
    review: Mapped[bool] = mapped_column(Boolean())
    status: Mapped[str] = mapped_column(String(16), index=True, server_default="open")
    labels: Mapped[dict | None] = mapped_column(_Json)
    corrected_at: Mapped[datetime | None] = mapped_column(DateTime(), index=True)
    corrected_by: Mapped[str | None] = mapped_column(String(128))
    resolved_at: Mapped[datetime | None] = mapped_column(DateTime())
    resolved_by: Mapped[str | None] = mapped_column(String(128))
    n_corrections: Mapped[int] = mapped_column(Integer(), server_default="0")


class TriageRow(Base):
    __tablename__ = "triages"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(128), ForeignKey("cases.case_id"), index=True)
    created_at: Mapped[datetime] = mapped_column(DateTime(), index=True)
    source: Mapped[str] = mapped_column(String(16))
    model_version: Mapped[str] = mapped_column(String(64))
    text_masked: Mapped[str] = mapped_column(Text())
    text_hmac: Mapped[str] = mapped_column(String(64))  # keyed: see secret_key(); '' for rows kept before 0003
    predicted: Mapped[dict] = mapped_column(_Json)
    result: Mapped[dict] = mapped_column(_Json)
    risk_level: Mapped[str] = mapped_column(String(16))
    processing_ms: Mapped[float | None] = mapped_column(Float())
    dedupe_key: Mapped[str | None] = mapped_column(String(64), unique=True)


class CorrectionRow(Base):
    __tablename__ = "corrections"

    id: Mapped[int] = mapped_column(Integer(), primary_key=True, autoincrement=True)
    case_id: Mapped[str] = mapped_column(String(128), ForeignKey("cases.case_id"), index=True)
    triage_id: Mapped[int | None] = mapped_column(Integer(), ForeignKey("triages.id"))
    created_at: Mapped[datetime] = mapped_column(DateTime(), index=True)
    author: Mapped[str] = mapped_column(String(128))
    channel: Mapped[str] = mapped_column(String(16))
    before: Mapped[dict] = mapped_column(_Json)
    after: Mapped[dict | None] = mapped_column(_Json)  # None: the correction only resolved or reopened the case
    changed: Mapped[list] = mapped_column(_Json)
    resolved: Mapped[bool | None] = mapped_column(Boolean())
    comment: Mapped[str | None] = mapped_column(Text())


# ------------------------------------------------------------------ records in and out

@dataclass
class TriageRecord:
    """One assessment to keep. `text` is the original note: the store keeps only its masked form and hash."""

    case_id: str
    text: str
    result: dict[str, Any]  # render.plan_to_json: {"triage", "facts", "plan"}
    model_version: str
    source: str = "serve"  # serve | tag | score
    received: date | None = None
    processing_ms: float | None = None
    dedupe_key: str | None = None  # same key twice is stored once (re-running `tag --store`)


def keep_results(sink, results: Sequence, case_ids: Sequence[str], texts: Sequence[str], model_version: str, *,
                 source: str, received: Sequence[date | None] | None = None, processing_ms: float | None = None,
                 dedupe: bool = False, timeout: float | None = None) -> list[int | None]:
    """Keep flow Results in the store (a CaseStore or a GroupCommitter): the one place triages are written.

    `dedupe`: a case scored again with the same text and model is stored once (re-running `tag --store`).
    """
    days = list(received) if received is not None else [None] * len(results)
    records = [
        TriageRecord(case_id, text, result.to_json(), model_version, source=source, received=day,
                     processing_ms=processing_ms,
                     dedupe_key=keyed_hash(json.dumps([case_id, model_version, text])) if dedupe else None)
        for result, case_id, text, day in zip(results, case_ids, texts, days)
    ]
    return sink.record(records) if timeout is None else sink.record(records, timeout=timeout)


@dataclass
class CasePage:
    cases: list[dict[str, Any]]
    next_cursor: str | None


@dataclass
class Correction:
    case_id: str
    correction_id: int
    changed: list[str]
    before: dict[str, Any]
    after: dict[str, Any]
    status: str
    author: str
    created_at: str


@dataclass
class AgreementRow:
    period: str  # first day of the period, ISO
    n: int
    agree: dict[str, float] = field(default_factory=dict)  # head -> share of corrected cases where model == handler


def utcnow() -> datetime:
    """Naive UTC: one convention for SQLite and PostgreSQL alike."""
    return datetime.now(timezone.utc).replace(tzinfo=None)


def predicted_labels(result: dict[str, Any]) -> dict[str, Any]:
    """The model's labels in the label-file format, read from a triage's JSON.

    The triage lists three causes; only the main one and those at SECONDARY_CAUSE_MIN or more are labels.
    """
    t = result["triage"]
    causes = [c["id"] for i, c in enumerate(t["cause"]) if i == 0 or (c.get("proba") or 0) >= SECONDARY_CAUSE_MIN]
    return {"cause": causes, "risk_level": t["risk_level"]["id"],
            "risk_flags": [f["id"] for f in t["risk_flags"]], "mindset": [m["id"] for m in t["mindset"]]}


# ------------------------------------------------------------------ the secret and checks on free text

MAX_ID_CHARS = 128
MAX_COMMENT_CHARS = 2000


def secret_key() -> bytes:
    """The key of every keyed hash: the installation's secret (pipeline/secret.py: $TOUSU_SECRET, else
    `secret.key` in the user's data folder, made 0600 on first use). It never goes into the database, so a
    copy of the database alone cannot be searched for numbers. Changing it makes earlier hashes unmatchable
    (a re-run of `tag --store` then stores its cases again)."""
    from pipeline.secret import SecretError
    from pipeline.secret import secret_key as installation_secret

    try:
        return installation_secret()
    except SecretError as exc:
        raise StoreError(str(exc)) from None


def keyed_hash(text: str) -> str:
    """HMAC-SHA256 of `text` under secret_key(), hex."""
    return hmac.new(secret_key(), text.encode("utf-8", "surrogatepass"), hashlib.sha256).hexdigest()


def text_problem(value: str | None, what: str, max_chars: int | None = None) -> str | None:
    """Why `value` cannot be stored the same way on every backend (None: it can).

    PostgreSQL refuses NUL in text; neither backend can encode a lone surrogate as UTF-8.
    """
    if value is None:
        return None
    if max_chars is not None and len(value) > max_chars:
        return f"{what} is {len(value)} characters long; at most {max_chars} are accepted"
    if "\x00" in value:
        return f"{what} contains a NUL character"
    try:
        value.encode("utf-8")
    except UnicodeEncodeError:
        return f"{what} contains a lone surrogate (not valid Unicode text)"
    return None


# ------------------------------------------------------------------ engine and migrations

def default_url() -> str:
    """$TOUSU_DATABASE_URL, else a SQLite file in the user's data folder (created on first use)."""
    if os.environ.get(ENV_URL):
        return os.environ[ENV_URL]
    from pipeline.paths import user_data_dir

    return f"sqlite:///{user_data_dir() / 'cases.db'}"


def _normalise_url(url: str) -> str:
    # plain postgresql:// means psycopg2 to SQLAlchemy; we ship psycopg 3
    for prefix in ("postgresql://", "postgres://"):
        if url.startswith(prefix):
            return "postgresql+psycopg://" + url[len(prefix):]
    return url


def _dumps(value: Any) -> str:
    """Compact UTF-8 JSON, Chinese as itself rather than \\uXXXX: a stored triage takes about 30% less space."""
    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))


def make_engine(url: str | None = None) -> Engine:
    url = _normalise_url(url or default_url())
    if url.startswith("sqlite"):
        path = sa.engine.make_url(url).database
        if path and path != ":memory:":
            Path(path).expanduser().parent.mkdir(mode=0o700, parents=True, exist_ok=True)
            _create_private(Path(path).expanduser())
        engine = sa.create_engine(url, connect_args={"timeout": 60, "check_same_thread": False}, json_serializer=_dumps,
                                  hide_parameters=True)

        @event.listens_for(engine, "connect")
        def _on_connect(dbapi_conn, _record):
            dbapi_conn.isolation_level = None  # we issue BEGIN ourselves (below)
            cur = dbapi_conn.cursor()
            cur.execute("PRAGMA journal_mode=WAL")
            cur.execute("PRAGMA synchronous=NORMAL")
            cur.execute("PRAGMA foreign_keys=ON")
            cur.execute("PRAGMA busy_timeout=60000")
            cur.close()

        @event.listens_for(engine, "begin")
        def _on_begin(conn):
            mode = conn.get_execution_options().get("sqlite_begin", "DEFERRED")
            conn.exec_driver_sql(f"BEGIN {mode}")

        return engine
    return sa.create_engine(url, pool_pre_ping=True, json_serializer=_dumps, hide_parameters=True)


def _create_private(path: Path) -> None:
    """Create the SQLite file mode 0600 before SQLite opens it (SQLite gives its -wal and -shm files the same mode)."""
    try:
        os.close(os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))
    except FileExistsError:
        pass


def _alembic_config(engine: Engine):
    from alembic.config import Config

    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    cfg.set_main_option("sqlalchemy.url", engine.url.render_as_string(hide_password=False).replace("%", "%%"))
    return cfg


@lru_cache(maxsize=1)
def head_revision() -> str:
    """The newest migration; read once per process (every store open compares against it)."""
    from alembic.script import ScriptDirectory

    cfg = _alembic_config(sa.create_engine("sqlite://"))
    return ScriptDirectory.from_config(cfg).get_current_head()


def current_revision(engine: Engine) -> str | None:
    from alembic.runtime.migration import MigrationContext

    with engine.connect() as conn:
        return MigrationContext.configure(conn).get_current_revision()


@contextmanager
def _write(engine: Engine) -> Iterator[Connection]:
    """A write transaction that takes the database's write lock up front."""
    with engine.connect() as conn:
        conn = conn.execution_options(sqlite_begin="IMMEDIATE")
        with conn.begin():
            yield conn


def upgrade(engine: Engine, revision: str = "head") -> str | None:
    """Bring the schema to `revision`; safe when several processes start at once."""
    from alembic import command

    cfg = _alembic_config(engine)
    with _write(engine) as conn:
        if engine.dialect.name == "postgresql":
            conn.exec_driver_sql(f"SELECT pg_advisory_xact_lock({_PG_LOCK})")
        cfg.attributes["connection"] = conn
        command.upgrade(cfg, revision)
    return current_revision(engine)


def _insert(engine: Engine):
    if engine.dialect.name == "postgresql":
        from sqlalchemy.dialects.postgresql import insert
    else:
        from sqlalchemy.dialects.sqlite import insert
    return insert


# ------------------------------------------------------------------ the store

class CaseStore:
    """Cases, their triages and corrections in one SQL database (SQLite or PostgreSQL)."""

    def __init__(self, url: str | None = None, *, migrate: bool = True) -> None:
        self.engine = make_engine(url)
        self.url = self.engine.url.render_as_string(hide_password=True)
        self._built: tuple | None = None
        if migrate and current_revision(self.engine) != head_revision():
            upgrade(self.engine)

    def close(self) -> None:
        self.engine.dispose()

    def __enter__(self) -> "CaseStore":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---------------------------------------------------------- writing triages

    def record(self, records: list[TriageRecord]) -> list[int | None]:
        """Keep these assessments in one transaction; returns each one's triage row id (None: dedupe key seen before).

        Set-wise: one upsert for the cases, one insert for the triages, one update for the case pointers,
        so a 1,000-row chunk from `tag --store` costs three statements, not three thousand.
        """
        if not records:
            return []
        for r in records:
            if not r.case_id or len(r.case_id) > MAX_ID_CHARS:
                raise StoreError(f"case id must be 1 to {MAX_ID_CHARS} characters, got {len(r.case_id or '')}")
            problem = text_problem(r.case_id, "case id") or text_problem(r.text, "the note") or \
                text_problem(r.model_version, "model version", 64)
            if problem:
                raise StoreError(problem)
        for attempt in range(5):
            try:
                with _write(self.engine) as conn:
                    return self._record_all(conn, records)
            except (sa.exc.OperationalError, sa.exc.IntegrityError) as exc:
                # SQLite: a lock held past the busy timeout; PostgreSQL: a deadlock, or a dedupe key
                # inserted by another process since we looked (the retry skips it)
                text = str(exc).lower()
                if not any(w in text for w in ("locked", "deadlock", "dedupe_key")) or attempt == 4:
                    raise
                time.sleep(0.1 * (attempt + 1))
        raise AssertionError("unreachable")

    def _statements(self) -> tuple:
        """The three write statements, built once per store (building an upsert costs more than running it)."""
        if self._built is None:
            insert = _insert(self.engine)
            cases, triages = CaseRow.__table__, TriageRow.__table__
            upsert = insert(cases)
            excluded = upsert.excluded
            upsert = upsert.on_conflict_do_update(index_elements=["case_id"], set_={
                "updated_at": excluded.updated_at,
                "received_on": sa.func.coalesce(excluded.received_on, cases.c.received_on),
                "main_cause": excluded.main_cause, "review": excluded.review,
                # the queue follows the handler once a case is corrected
                "risk_level": sa.case((cases.c.corrected_at.is_(None), excluded.risk_level), else_=cases.c.risk_level),
            })
            add = insert(triages).returning(triages.c.id, sort_by_parameter_order=True)
            point = cases.update().where(cases.c.case_id == sa.bindparam("cid")).values(last_triage_id=sa.bindparam("tid"))
            seen = sa.select(triages.c.dedupe_key).where(triages.c.dedupe_key.in_(sa.bindparam("keys", expanding=True)))
            self._built = (upsert, add, point, seen)
        return self._built

    def _record_all(self, conn: Connection, records: list[TriageRecord]) -> list[int | None]:
        upsert, add, point, seen_keys = self._statements()
        now = utcnow()
        keys = [r.dedupe_key for r in records if r.dedupe_key]
        seen = set(conn.execute(seen_keys, {"keys": keys}).scalars()) if keys else set()
        todo: list[tuple[int, TriageRecord, dict]] = []
        for i, r in enumerate(records):
            if r.dedupe_key and r.dedupe_key in seen:
                continue
            if r.dedupe_key:
                seen.add(r.dedupe_key)  # the same key twice in one batch is stored once too
            todo.append((i, r, predicted_labels(r.result)))
        ids: list[int | None] = [None] * len(records)
        if not todo:
            return ids
        case_rows: dict[str, dict] = {}  # one row per case id: the batch's last triage of a case wins
        for _, r, labels in todo:
            case_rows[r.case_id] = {
                "case_id": r.case_id, "created_at": now, "updated_at": now, "received_on": r.received,
                "risk_level": labels["risk_level"], "main_cause": labels["cause"][0],
                "review": bool(r.result.get("plan", {}).get("review", False)), "status": "open", "n_corrections": 0}
        conn.execute(upsert, list(case_rows.values()))
        rows = [{"case_id": r.case_id, "created_at": now, "source": r.source, "model_version": r.model_version,
                 "text_masked": mask_pii(r.text), "text_hmac": keyed_hash(r.text), "predicted": labels, "result": r.result,
                 "risk_level": labels["risk_level"], "processing_ms": r.processing_ms, "dedupe_key": r.dedupe_key}
                for _, r, labels in todo]
        new_ids = conn.execute(add, rows).scalars().all()
        last: dict[str, int] = {}
        for (i, r, _), tid in zip(todo, new_ids):
            ids[i] = int(tid)
            last[r.case_id] = max(int(tid), last.get(r.case_id, 0))
        conn.execute(point, [{"cid": c, "tid": t} for c, t in last.items()])
        return ids

    # ---------------------------------------------------------- corrections

    def correct(self, case_id: str, labels: dict[str, Any], *, author: str, channel: str = "api",
                resolved: bool | None = None, comment: str | None = None) -> Correction:
        """Apply a handler's labels (any of the four heads; the others stay as they are) and/or resolve the case.

        The first correction starts from the model's labels; the earlier prediction stays in `triages`.
        """
        author = (author or "").strip()
        if not author:
            raise StoreError("a correction needs its author (the auth token's name, the X-Tousu-User header or --author)")
        checks = [(case_id, "case id", MAX_ID_CHARS), (author, "author", MAX_ID_CHARS),
                  (comment, "comment", MAX_COMMENT_CHARS)] + [(v, k, 64) for k, vs in labels.items() for v in as_list(vs)]
        problem = next(filter(None, (text_problem(*check) for check in checks)), None)
        if problem:
            raise StoreError(problem)
        # free text a person typed is masked like the note before it is kept (and shown or exported again)
        author, comment = mask_pii(author), (mask_pii(comment) if comment else comment)
        if channel not in CHANNELS:
            raise StoreError(f"channel must be one of {list(CHANNELS)}")
        unknown = sorted(set(labels) - set(LABEL_FIELDS))
        if unknown:
            raise StoreError(f"unknown label field(s) {unknown}; the fields are {list(LABEL_FIELDS)}")
        if not labels and resolved is None:
            raise StoreError("nothing to change: give at least one of cause, risk_level, risk_flags, mindset or resolved")
        cases, triages, corrections = CaseRow.__table__, TriageRow.__table__, CorrectionRow.__table__
        with _write(self.engine) as conn:
            case = conn.execute(sa.select(cases).where(cases.c.case_id == case_id).with_for_update()).mappings().first()
            if case is None:
                raise CaseNotFound(f"no stored case '{case_id}'")
            predicted = conn.execute(sa.select(triages.c.predicted).where(triages.c.id == case["last_triage_id"])).scalar()
            before = dict(case["labels"] or predicted or {})
            after = dict(before)
            for k, v in labels.items():
                after[k] = as_list(v) if k in LIST_FIELDS else str(v or "").strip()
            problems = label_problems(after)
            if problems:
                raise StoreError("; ".join(f"{f}: {m}" for f, m in problems))
            changed = [k for k in LABEL_FIELDS if after.get(k) != before.get(k)]
            now = utcnow()
            status = case["status"] if resolved is None else ("resolved" if resolved else "open")
            values: dict[str, Any] = {"updated_at": now, "status": status, "n_corrections": case["n_corrections"] + 1}
            if labels:
                values.update(labels=after, corrected_at=now, corrected_by=author, risk_level=after["risk_level"],
                              main_cause=after["cause"][0])
            if resolved is not None:
                values.update(resolved_at=now if resolved else None, resolved_by=author if resolved else None)
            conn.execute(cases.update().where(cases.c.case_id == case_id).values(**values))
            cid = conn.execute(corrections.insert().values(
                case_id=case_id, triage_id=case["last_triage_id"], created_at=now, author=author, channel=channel,
                before=before, after=after if labels else None, changed=changed, resolved=resolved, comment=comment,
            ).returning(corrections.c.id)).scalar()
        return Correction(case_id, int(cid), changed, before, after, status, author, now.isoformat(timespec="seconds"))

    # ---------------------------------------------------------- reading

    def get(self, case_id: str) -> dict[str, Any]:
        """The case with every triage (oldest first) and every correction; keyed hashes are never shown."""
        problem = text_problem(case_id, "case id", MAX_ID_CHARS)
        if problem:
            raise StoreError(problem)
        cases, triages, corrections = CaseRow.__table__, TriageRow.__table__, CorrectionRow.__table__
        shown = [c for c in triages.columns if c.name not in _NEVER_SHOWN]
        with self.engine.connect() as conn:
            case = conn.execute(sa.select(cases).where(cases.c.case_id == case_id)).mappings().first()
            if case is None:
                raise CaseNotFound(f"no stored case '{case_id}'")
            tri = conn.execute(sa.select(*shown).where(triages.c.case_id == case_id).order_by(triages.c.id)).mappings().all()
            cor = conn.execute(sa.select(corrections).where(corrections.c.case_id == case_id)
                               .order_by(corrections.c.id)).mappings().all()
        out = _case_json(case)
        out["triages"] = [_jsonable(dict(t)) for t in tri]
        out["corrections"] = [_jsonable(dict(c)) for c in cor]
        return out

    def list_cases(self, *, risk_level: str | list[str] | None = None, status: str | None = None,
                   corrected: bool | None = None, cause: str | None = None, since: date | datetime | None = None,
                   until: date | datetime | None = None, limit: int = 50, cursor: str | None = None) -> CasePage:
        """Cases newest first (by last update), filtered; pass `next_cursor` back for the next page."""
        from pipeline.contract.taxonomy import RISK_LEVELS

        if not 1 <= limit <= MAX_PAGE:
            raise StoreError(f"limit must be 1 to {MAX_PAGE}")
        cases, triages = CaseRow.__table__, TriageRow.__table__
        q = sa.select(cases, triages.c.text_masked, triages.c.model_version).join(
            triages, triages.c.id == cases.c.last_triage_id, isouter=True)
        levels = [risk_level] if isinstance(risk_level, str) else list(risk_level or [])
        bad = [lv for lv in levels if lv not in RISK_LEVELS]
        if bad:
            raise StoreError(f"risk_level {bad} is not one of {list(RISK_LEVELS)}")
        if levels:
            q = q.where(cases.c.risk_level.in_(levels))
        if status is not None:
            if status not in ("open", "resolved"):
                raise StoreError("status must be 'open' or 'resolved'")
            q = q.where(cases.c.status == status)
        if corrected is not None:
            q = q.where(cases.c.corrected_at.is_not(None) if corrected else cases.c.corrected_at.is_(None))
        if cause:
            problem = text_problem(cause, "cause", 64)
            if problem:
                raise StoreError(problem)
            q = q.where(cases.c.main_cause == cause)
        q = _in_range(q, cases.c.updated_at, since, until)
        if cursor:
            at, cid = _read_cursor(cursor)
            q = q.where(sa.or_(cases.c.updated_at < at, sa.and_(cases.c.updated_at == at, cases.c.case_id < cid)))
        q = q.order_by(cases.c.updated_at.desc(), cases.c.case_id.desc()).limit(limit + 1)
        with self.engine.connect() as conn:
            rows = conn.execute(q).mappings().all()
        more = len(rows) > limit
        rows = rows[:limit]
        page = []
        for r in rows:
            item = _case_json(r)
            item["text"] = (r["text_masked"] or "")[:200]
            item["model_version"] = r["model_version"]
            page.append(item)
        nxt = _make_cursor(rows[-1]["updated_at"], rows[-1]["case_id"]) if more and rows else None
        return CasePage(page, nxt)

    def uncorrected(self, limit: int = 2000) -> tuple[list[dict[str, Any]], int]:
        """The newest `limit` cases no handler has labelled yet, with their latest triage (masked text, prediction),
        and how many there are in all: the labelling queue's pool."""
        cases, triages = CaseRow.__table__, TriageRow.__table__
        uncorrected = cases.c.corrected_at.is_(None)
        q = (sa.select(cases.c.case_id, cases.c.status, cases.c.received_on, cases.c.created_at, cases.c.last_triage_id,
                       triages.c.text_masked, triages.c.predicted, triages.c.result, triages.c.model_version)
             .join(triages, triages.c.id == cases.c.last_triage_id)
             .where(uncorrected).order_by(cases.c.created_at.desc(), cases.c.case_id.desc()).limit(limit))
        with self.engine.connect() as conn:
            rows = [_jsonable(dict(r)) for r in conn.execute(q).mappings()]
            total = int(conn.execute(sa.select(sa.func.count()).where(uncorrected)).scalar() or 0)
        return rows, total

    def counts(self) -> dict[str, int]:
        cases, triages, corrections = CaseRow.__table__, TriageRow.__table__, CorrectionRow.__table__
        with self.engine.connect() as conn:
            one = lambda q: int(conn.execute(q).scalar() or 0)  # noqa: E731
            return {"cases": one(sa.select(sa.func.count()).select_from(cases)),
                    "triages": one(sa.select(sa.func.count()).select_from(triages)),
                    "corrections": one(sa.select(sa.func.count()).select_from(corrections)),
                    "corrected_cases": one(sa.select(sa.func.count()).where(cases.c.corrected_at.is_not(None))),
                    "resolved_cases": one(sa.select(sa.func.count()).where(cases.c.status == "resolved"))}

    def _corrected_rows(self, since, until) -> list[dict[str, Any]]:
        """Corrected cases with the handler's labels and the prediction the handler saw."""
        cases, triages, corrections = CaseRow.__table__, TriageRow.__table__, CorrectionRow.__table__
        first = (sa.select(corrections.c.case_id, sa.func.min(corrections.c.id).label("first_id"))
                 .where(corrections.c.after.is_not(None)).group_by(corrections.c.case_id).subquery())
        q = (sa.select(cases.c.case_id, cases.c.labels, cases.c.corrected_at, cases.c.corrected_by,
                       triages.c.predicted, triages.c.text_masked, triages.c.model_version)
             .join(first, first.c.case_id == cases.c.case_id)
             .join(corrections, corrections.c.id == first.c.first_id)
             .join(triages, triages.c.id == corrections.c.triage_id)
             .where(cases.c.corrected_at.is_not(None)))
        q = _in_range(q, cases.c.corrected_at, since, until)
        with self.engine.connect() as conn:
            return [dict(r) for r in conn.execute(q.order_by(cases.c.corrected_at, cases.c.case_id)).mappings()]

    def export_corrected(self, since: date | datetime | None = None, until: date | datetime | None = None) -> list[dict[str, Any]]:
        """Corrected cases as label-file rows (masked text, the handler's current labels), oldest first.

        Heads the handler left alone count as confirmed: the handler saw them and kept them.
        """
        out = []
        for r in self._corrected_rows(since, until):
            labels = r["labels"]
            out.append({"id": r["case_id"], "text": r["text_masked"], **{k: labels[k] for k in LABEL_FIELDS},
                        "source": "case_store", "corrected_by": r["corrected_by"],
                        "corrected_at": r["corrected_at"].isoformat(timespec="seconds"),
                        "model_version": r["model_version"]})
        return out

    def export_audit(self, since: date | datetime | None = None, until: date | datetime | None = None) -> list[dict[str, Any]]:
        """Every case updated in the range: the latest prediction beside the handler's labels and status."""
        cases, triages = CaseRow.__table__, TriageRow.__table__
        q = (sa.select(cases, triages.c.predicted, triages.c.text_masked, triages.c.text_hmac, triages.c.model_version,
                       triages.c.created_at.label("triaged_at"))
             .join(triages, triages.c.id == cases.c.last_triage_id))
        q = _in_range(q, cases.c.updated_at, since, until)
        out = []
        with self.engine.connect() as conn:
            for r in conn.execute(q.order_by(cases.c.created_at, cases.c.case_id)).mappings():
                row = _case_json(r)
                row.update(text=r["text_masked"], text_hmac=r["text_hmac"], model_version=r["model_version"],
                           triaged_at=r["triaged_at"].isoformat(timespec="seconds"),
                           **{f"pred_{k}": r["predicted"][k] for k in LABEL_FIELDS})
                out.append(row)
        return out

    def agreement(self, since: date | datetime | None = None, until: date | datetime | None = None,
                  by: str = "week") -> list[AgreementRow]:
        """Per period: how often the model's first prediction equalled the handler's labels, per head.

        cause and mindset compare the main label; risk_level the level; risk_flags the whole set.
        """
        if by not in PERIODS:
            raise StoreError(f"by must be one of {list(PERIODS)}")
        sums: dict[date, dict[str, int]] = defaultdict(lambda: defaultdict(int))
        for r in self._corrected_rows(since, until):
            p, h = r["predicted"], r["labels"]
            bucket = sums[_period_start(r["corrected_at"].date(), by)]
            bucket["n"] += 1
            bucket["cause"] += p["cause"][:1] == h["cause"][:1]
            bucket["risk_level"] += p["risk_level"] == h["risk_level"]
            bucket["risk_flags"] += set(p["risk_flags"]) == set(h["risk_flags"])
            bucket["mindset"] += p["mindset"][:1] == h["mindset"][:1]
        return [AgreementRow(day.isoformat(), s["n"], {k: round(s[k] / s["n"], 3) for k in LABEL_FIELDS})
                for day, s in sorted(sums.items())]


# ------------------------------------------------------------------ group commit for the service

class GroupCommitter:
    """Many request threads, one transaction: group commit for `CaseStore.record`.

    A writer thread commits everything that queued up while its previous commit ran, then wakes each
    caller with its own row ids. A caller still returns only after its records are committed, so
    `stored: true` keeps meaning durable; under load one transaction carries many requests' triages
    (a set-wise write costs about a fifth of one write per record), and at low load a batch is one request.
    """

    def __init__(self, store: CaseStore, max_batch: int = 256) -> None:
        self.store = store
        self.max_batch = max_batch
        self._queue: queue.Queue = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="tousu-store-writer", daemon=True)
        self._thread.start()

    def record(self, records: list[TriageRecord], timeout: float = 60.0) -> list[int | None]:
        if not self._thread.is_alive():
            raise StoreError("the store writer has stopped")
        done: Future = Future()
        self._queue.put((records, done))
        return done.result(timeout)

    def close(self, timeout: float = 30.0) -> None:
        """Commit what is queued, then stop."""
        self._queue.put(None)
        self._thread.join(timeout)

    def _run(self) -> None:
        stopping = False
        while not stopping:
            item = self._queue.get()
            if item is None:
                break
            batch, size = [item], len(item[0])
            while size < self.max_batch:
                try:
                    nxt = self._queue.get_nowait()
                except queue.Empty:
                    break
                if nxt is None:
                    stopping = True
                    break
                batch.append(nxt)
                size += len(nxt[0])
            self._commit(batch)

    def _commit(self, batch: list[tuple[list[TriageRecord], Future]]) -> None:
        try:
            ids = self.store.record([r for records, _ in batch for r in records])
        except Exception as exc:  # noqa: BLE001 - handed to the callers
            if len(batch) == 1:
                batch[0][1].set_exception(exc)
                return
            for records, done in batch:  # one bad request must not fail its neighbours: each alone
                self._commit([(records, done)])
            return
        at = 0
        for records, done in batch:
            done.set_result(ids[at:at + len(records)])
            at += len(records)


# ------------------------------------------------------------------ helpers

def _jsonable(row: dict[str, Any]) -> dict[str, Any]:
    return {k: (v.isoformat(timespec="seconds") if isinstance(v, datetime) else v.isoformat() if isinstance(v, date) else v)
            for k, v in row.items()}


def _case_json(row) -> dict[str, Any]:
    keys = [c.name for c in CaseRow.__table__.columns]
    return _jsonable({k: row[k] for k in keys})


def _in_range(q, column, since: date | datetime | None, until: date | datetime | None):
    """`since` inclusive; `until` exclusive, except that a plain date includes its whole day."""
    if since is not None:
        q = q.where(column >= _as_datetime(since))
    if until is not None:
        q = q.where(column < _as_datetime(until, end=True))
    return q


def _as_datetime(value: date | datetime, end: bool = False) -> datetime:
    """A date filter means whole days: `until` a date includes that day."""
    if isinstance(value, datetime):
        return value.astimezone(timezone.utc).replace(tzinfo=None) if value.tzinfo else value
    start = datetime(value.year, value.month, value.day)
    return start + timedelta(days=1) if end else start


def _period_start(day: date, by: str) -> date:
    if by == "day":
        return day
    if by == "week":
        return day - timedelta(days=day.weekday())
    return day.replace(day=1)


def _make_cursor(at: datetime, case_id: str) -> str:
    return base64.urlsafe_b64encode(f"{at.isoformat()}|{case_id}".encode()).decode().rstrip("=")


def _read_cursor(cursor: str) -> tuple[datetime, str]:
    try:
        raw = base64.urlsafe_b64decode(cursor + "=" * (-len(cursor) % 4)).decode()
        at, case_id = raw.split("|", 1)
        if text_problem(case_id, "cursor", MAX_ID_CHARS):
            raise ValueError(case_id)
        return datetime.fromisoformat(at), case_id
    except (ValueError, UnicodeDecodeError):
        raise StoreError("cursor is not one this service gave out; start again without it") from None
