"""What the centre learns from its complaints: counts, trends, breakdowns and early warnings.

The input is any `tousu tag` output (the pred_ columns) or the case store.
`build_report` turns it into a `Report`: counts by cause group, cause, risk
level, flag and mindset; a weekly trend; a breakdown per `--by` column; the
causes rising most against the previous period; the highest-risk cases; a
few masked sample notes per top cause; and the alerts, which lead the page.

Alerts (the seed's early-warning plan for group complaints):

- spike: a cause, or all complaints, in one value of a `--by` column (a
  branch, a product) whose count in the last `window_days` is far above
  both its own baseline and what the other values did meanwhile. The test
  is a one-sided exact binomial test conditional on the cell's total over
  window and baseline: under no spike, each of the cell's n cases falls in
  the window with probability p0 = max(window share of the days, window
  share of the other values' cases of the same cause, shrunk toward the
  days' share with a prior worth PRIOR_CASES cases), so a centre-wide rise
  (or a cause rising everywhere) is not one branch's spike. A cell
  alerts when its window count is at least `min_count`, at least
  `min_ratio` times the expected n*p0, and P(X >= count) <= alpha / m,
  where m is every cell tested (values x (causes + all)), a Bonferroni
  correction. A value's "all complaints" alert is kept only when it stays
  significant without the causes that alerted on their own.
- repeat: one customer with `repeat_min` or more cases in the last
  `repeat_days`, keyed by the customer column, else by an HMAC-SHA256 (key
  from pipeline.secret) of a personal number the facts extractor found in
  the note; the number itself is never shown or kept.
- deadline: a case-store case still open within `deadline_days` of, or
  past, its regulatory decision date (received date, else the day it was
  stored, plus the playbook's decision days).
"""
from __future__ import annotations

import hashlib
import hmac
import re
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass, field
from datetime import date, datetime, timedelta
from typing import Any, Iterable, Sequence

import numpy as np
import pandas as pd

from pipeline.contract.taxonomy import RISK_LEVELS, taxonomy
from pipeline.io import ERROR_COLUMN, CaseFileError, as_list
from pipeline.text.pii import mask_pii

__all__ = ["AlertSettings", "Alert", "Report", "ReportUsageError", "NotTaggedError", "prepare", "build_report",
           "spike_alerts", "repeat_alerts", "deadline_alerts", "deadline_queue", "store_frame", "parse_dates", "DATE_GUESSES"]

#: date columns tried, in order, when --date-column is not given
DATE_GUESSES = ("received", "received_on", "received_date", "date", "created_at", "受理日期", "投诉日期", "来电日期",
                "日期", "受理时间", "投诉时间")
NO_VALUE = "（空）"
ALL = "全部"
_PERSONAL_KINDS = ("phone", "id_number", "bank_card")
_KIND_NAMES = {"phone": "电话", "id_number": "身份证", "bank_card": "银行卡"}
#: the others' window share is shrunk toward the window's share of the days with a prior worth this many cases,
#: so one case elsewhere in the window (and none before) does not make the null "half of everything is recent"
PRIOR_CASES = 10
_LEVEL_RANK = {lvl: i for i, lvl in enumerate(RISK_LEVELS)}
_DIGIT_RUN = r"[0-9０-９](?:[ \-－　]?[0-9０-９]){6,}"
_TZ_SUFFIX = re.compile(r"(?<=\d)(Z|[+-]\d{2}:?\d{2})$")


class ReportUsageError(ValueError):
    """An option names something the input does not have (exit 2); the message lists what it has."""


class NotTaggedError(CaseFileError):
    """The input has no pred_ columns: it was never tagged."""


@dataclass(frozen=True)
class AlertSettings:
    """Thresholds of the early warning; every one is a `tousu report` option."""

    window_days: int = 3
    baseline_days: int = 56
    min_count: int = 5
    min_ratio: float = 2.0
    alpha: float = 0.01
    repeat_min: int = 3
    repeat_days: int = 30
    deadline_days: int = 3
    rising_days: int = 28

    def __post_init__(self) -> None:
        for name in ("window_days", "baseline_days", "min_count", "repeat_min", "repeat_days", "rising_days"):
            if getattr(self, name) < 1:
                raise ReportUsageError(f"{name} must be at least 1")
        if not 0 < self.alpha < 1:
            raise ReportUsageError("alpha must be between 0 and 1")
        if self.min_ratio < 1:
            raise ReportUsageError("min_ratio must be at least 1")


@dataclass
class Alert:
    """One early warning; `detail` holds the kind's own fields (p-value, case ids, due date ...)."""

    kind: str  # spike | repeat | deadline
    by: str | None
    value: str | None
    cause: str | None  # a cause id; None for all complaints
    count: int
    baseline: float | None  # spike: the count expected without a spike; repeat: the threshold
    window: dict[str, Any] | None
    detail: dict[str, Any] = field(default_factory=dict)

    def to_json(self) -> dict[str, Any]:
        out = {k: v for k, v in asdict(self).items() if k != "detail"}
        out["cause_name"] = _name(self.cause) if self.cause else "全部投诉"
        out.update(self.detail)
        return out


@dataclass
class Cases:
    """The input as the report reads it: one row per tagged note, labels as ids, dates parsed."""

    frame: pd.DataFrame  # id, text, cause, causes, group, level, flags, mindset, cause_proba, date, by columns ...
    source: str
    date_column: str | None
    date_guessed: bool
    by: list[str]
    customer_column: str | None
    n_errors: int
    n_missing_date: int
    n_bad_date: int
    bad_date_examples: list[str]
    is_store: bool = False


@dataclass
class Report:
    """Everything the page and `--json` show."""

    source: str
    n: int
    n_errors: int
    n_no_date: int
    n_bad_date: int
    bad_date_examples: list[str]
    date_column: str | None
    date_guessed: bool
    by: list[str]
    period: dict[str, str | None]
    as_of: str | None
    settings: AlertSettings
    risk: dict[str, int]
    groups: dict[str, int]
    causes: dict[str, int]
    flags: dict[str, int]
    mindsets: dict[str, int]
    weekly: pd.DataFrame  # index: first day of each 7-day period ending on as_of; columns: cause groups
    breakdowns: dict[str, pd.DataFrame]  # by column -> one row per value
    rising: list[dict[str, Any]]
    rising_periods: dict[str, str] | None
    top_risk: list[dict[str, Any]]
    samples: dict[str, list[str]]
    alerts: list[Alert]
    notes: list[str]
    customer_key: str | None  # where repeat complainants come from
    is_store: bool = False

    def to_json(self) -> dict[str, Any]:
        """The `--json` object: n, period, alerts first; then what the alerts were judged with."""
        return {"n": self.n, "period": self.period, "alerts": [a.to_json() for a in self.alerts],
                "no_date": self.n_no_date, "unparseable_dates": self.n_bad_date, "errors": self.n_errors,
                "source": self.source, "by": self.by, "date_column": self.date_column, "as_of": self.as_of,
                "settings": asdict(self.settings), "notes": self.notes}


def _name(label: str) -> str:
    try:
        return taxonomy().name(label)
    except KeyError:
        return label


# ------------------------------------------------------------------ reading the input

def _columns_sentence(df: pd.DataFrame) -> str:
    cols = [str(c) for c in df.columns]
    shown = ", ".join(cols[:40]) + (f" ... ({len(cols)} in all)" if len(cols) > 40 else "")
    return f"the columns are: {shown}"


def parse_dates(values: Iterable[Any]) -> tuple[pd.Series, int, int, list[str]]:
    """Days (datetime64, midnight) from mixed date text; returns (days, missing, unparseable, examples).

    ISO dates and date-times, 2026/3/1, 2026年3月1日 and Excel's own date cells parse; an empty cell is
    missing; anything else is unparseable. Both become NaT and count as "no date" in the report.
    """
    raw = pd.Series(list(values), dtype=object)
    text = raw.map(lambda v: "" if v is None or (isinstance(v, float) and v != v) else str(v).strip())
    missing = text.isin(["", "nan", "NaT", "None", "null"])
    clean = (text.str.replace("年", "-", regex=False).str.replace("月", "-", regex=False)
             .str.replace("日", "", regex=False).str.replace("/", "-", regex=False).str.replace(_TZ_SUFFIX, "", regex=True))
    days = pd.to_datetime(clean.where(~missing), errors="coerce", format="ISO8601")
    retry = days.isna() & ~missing
    if retry.any():
        days[retry] = pd.to_datetime(clean[retry], errors="coerce", format="mixed")
    days = days.dt.normalize()
    bad = days.isna() & ~missing
    examples = list(dict.fromkeys(text[bad].head(50)))[:5]
    return days, int(missing.sum()), int(bad.sum()), examples


def prepare(df: pd.DataFrame, source: str, *, text_column: str = "text", id_column: str = "id",
            date_column: str | None = None, by: Sequence[str] = (), customer_column: str | None = None,
            is_store: bool = False) -> Cases:
    """Check the input and options, and read the tagged rows into the report's shape.

    Raises NotTaggedError (no pred_ columns) or ReportUsageError (a named column is not there).
    """
    if "pred_cause" not in df.columns or "pred_risk_level" not in df.columns:
        raise NotTaggedError(f"{source}: no pred_ columns (pred_cause, pred_risk_level); run `tousu tag` on it "
                             "first and give its output to `tousu report`.")
    for option, col in [("--by", c) for c in by] + [("--date-column", date_column), ("--customer-column", customer_column)]:
        if col is not None and col not in df.columns:
            raise ReportUsageError(f"{option} column '{col}' is not in {source}; {_columns_sentence(df)}.")
    guessed = False
    if date_column is None:
        date_column = next((c for c in DATE_GUESSES if c in df.columns), None)
        guessed = date_column is not None
    n_all = len(df)
    err = df[ERROR_COLUMN].fillna("").astype(str).str.strip() != "" if ERROR_COLUMN in df.columns else pd.Series(False, index=df.index)
    causes = [as_list(v) for v in df["pred_cause"]]
    ok = (~err.to_numpy(dtype=bool)) & np.array([bool(c) for c in causes], dtype=bool)
    if not ok.any():
        raise NotTaggedError(f"{source}: nothing to report on: no row has a prediction"
                             + (" (every row has an error)." if len(df) else " (no rows)."))
    df = df.loc[ok].reset_index(drop=True)
    causes = [c for c, keep in zip(causes, ok) if keep]
    n = len(df)
    tax = taxonomy()
    out = pd.DataFrame(index=range(n))
    out["id"] = ([str(v) for v in df[id_column]] if id_column in df.columns
                 else [f"第{i + 1}行" for i in np.flatnonzero(ok)])
    out["text"] = df[text_column].map(lambda v: v if isinstance(v, str) else "") if text_column in df.columns else ""
    out["causes"] = causes
    out["cause"] = [c[0] for c in causes]
    out["group"] = [tax.group_of(c) for c in out["cause"]]
    out["level"] = df["pred_risk_level"].astype(str).str.strip()
    out["flags"] = [as_list(v) for v in df["pred_risk_flags"]] if "pred_risk_flags" in df.columns else [[] for _ in range(n)]
    out["mindset"] = [as_list(v) for v in df["pred_mindset"]] if "pred_mindset" in df.columns else [[] for _ in range(n)]
    if "pred_cause_proba" in df.columns:
        out["cause_proba"] = [float(p[0]) if p else np.nan for p in (as_list(v) for v in df["pred_cause_proba"])]
    else:
        out["cause_proba"] = np.nan
    if date_column is not None:
        out["date"], missing, bad, examples = parse_dates(df[date_column])
    else:
        out["date"] = pd.Series(pd.NaT, index=out.index, dtype="datetime64[ns]")
        missing, bad, examples = n, 0, []
    for col in by:
        out[f"by:{col}"] = [NO_VALUE if v is None or (isinstance(v, float) and v != v) or not str(v).strip()
                            else str(v).strip() for v in df[col]]
    if customer_column:
        out["customer"] = [None if v is None or (isinstance(v, float) and v != v) or not str(v).strip()
                           else str(v).strip() for v in df[customer_column]]
    for extra in ("status", "decision_due", "received"):
        if is_store and extra in df.columns:
            out[extra] = list(df[extra])
    return Cases(out, source, date_column, guessed, list(by), customer_column, n_all - n, missing, bad, examples,
                 is_store=is_store)


def store_frame(store, since: date | datetime | None = None, until: date | datetime | None = None) -> pd.DataFrame:
    """The case store as a tagged table: the handler's labels where corrected, else the model's.

    Reads through CaseStore.export_audit (cases updated in the range). `date` is the received date,
    else the day the case was stored; `decision_due` adds the playbook's decision days to it.
    """
    from pipeline.handling.playbook import default_playbook

    days = default_playbook().settings.decision_days
    rows = store.export_audit(since=since, until=until)
    out = []
    for r in rows:
        labels = r.get("labels") or {}
        stored = str(r.get("created_at") or "")[:10]
        day = r.get("received_on") or stored or None
        due = (date.fromisoformat(day) + timedelta(days=days)).isoformat() if day else None
        out.append({"id": r["case_id"], "text": r.get("text") or "",
                    "pred_cause": labels.get("cause") or r["pred_cause"],
                    "pred_risk_level": labels.get("risk_level") or r["pred_risk_level"],
                    "pred_risk_flags": labels["risk_flags"] if "risk_flags" in labels else r["pred_risk_flags"],
                    "pred_mindset": labels["mindset"] if "mindset" in labels else r["pred_mindset"],
                    "date": day, "received": day, "decision_due": due, "status": r.get("status"),
                    "corrected": "是" if r.get("corrected_at") else "否", "model_version": r.get("model_version"),
                    "risk_level": r.get("risk_level")})
    columns = ["id", "text", "pred_cause", "pred_risk_level", "pred_risk_flags", "pred_mindset", "date", "received",
               "decision_due", "status", "corrected", "model_version", "risk_level"]
    return pd.DataFrame(out, columns=columns)


# ------------------------------------------------------------------ alerts

def _window(start: pd.Timestamp, end: pd.Timestamp) -> dict[str, Any]:
    return {"start": start.date().isoformat(), "end": end.date().isoformat(), "days": int((end - start).days) + 1}


def spike_alerts(cases: Cases, settings: AlertSettings, as_of: pd.Timestamp | None = None) -> tuple[list[Alert], list[str]]:
    """Spikes per (--by value, cause) and (--by value, all complaints); see the module docstring for the test.

    Without --by the whole centre is the one value and a cause is compared with the other causes.
    Returns the alerts (strongest first) and notes on what could not be tested.
    """
    from scipy.special import bdtrc  # P(X > k) for X ~ Binomial(n, p); scipy.stats costs seconds to import

    def tail(w, n, p0):  # P(X >= w)
        return np.where(np.asarray(w) > 0, bdtrc(np.asarray(w) - 1, n, p0), 1.0)

    f = cases.frame
    dated = f[f["date"].notna()]
    if dated.empty:
        return [], ["没有可用的日期，未做激增预警（用 --date-column 指定日期列）。"]
    end = as_of if as_of is not None else dated["date"].max()
    w_start = end - pd.Timedelta(days=settings.window_days - 1)
    b_start = w_start - pd.Timedelta(days=settings.baseline_days)
    first = max(b_start, dated["date"].min())
    b_days = int((w_start - first).days)
    if b_days < settings.window_days:
        return [], [f"数据只覆盖 {b_days + settings.window_days} 天，不足以建立基线，未做激增预警。"]
    p_time = settings.window_days / (settings.window_days + b_days)
    sel = dated[(dated["date"] >= first) & (dated["date"] <= end)]
    in_w = (sel["date"] >= w_start).to_numpy()
    n_causes = len(taxonomy().cause_ids)
    families = cases.by or [None]
    cells = []  # per family: a frame of candidate cells
    m = 0
    for col in families:
        value = sel[f"by:{col}"] if col else pd.Series(ALL, index=sel.index)
        base = pd.DataFrame({"value": value.to_numpy(), "cause": sel["cause"].to_numpy(), "w": in_w.astype(int), "b": (~in_w).astype(int)})
        m += base["value"].nunique() * (n_causes + 1)
        per_cause = base.groupby(["value", "cause"], sort=False)[["w", "b"]].sum().reset_index()
        per_value = base.groupby("value", sort=False)[["w", "b"]].sum().reset_index()
        per_value["cause"] = None
        if col:
            tot = per_cause.groupby("cause")[["w", "b"]].sum()
            o_w = per_cause["cause"].map(tot["w"]) - per_cause["w"]
            o_b = per_cause["cause"].map(tot["b"]) - per_cause["b"]
            all_w, all_b = per_value["w"].sum(), per_value["b"].sum()
            v_ow, v_ob = all_w - per_value["w"], all_b - per_value["b"]
            per_value["p0"] = np.maximum(p_time, (v_ow + PRIOR_CASES * p_time) / (v_ow + v_ob + PRIOR_CASES))
        else:
            all_w, all_b = per_cause["w"].sum(), per_cause["b"].sum()
            o_w, o_b = all_w - per_cause["w"], all_b - per_cause["b"]
            per_value["p0"] = p_time
        per_cause["p0"] = np.maximum(p_time, (o_w + PRIOR_CASES * p_time) / (o_w + o_b + PRIOR_CASES))
        both = pd.concat([per_cause, per_value], ignore_index=True)
        both["by"] = col
        cells.append(both)
    table = pd.concat(cells, ignore_index=True)
    table["n"] = table["w"] + table["b"]
    table["expected"] = table["n"] * table["p0"]
    table["p"] = tail(table["w"], table["n"], table["p0"])
    threshold = settings.alpha / m

    def hit(w, expected, p) -> bool:
        return w >= settings.min_count and w >= settings.min_ratio * expected and p <= threshold

    window = _window(w_start, end)
    alerts: list[Alert] = []
    found = table[[hit(w, e, p) for w, e, p in zip(table["w"], table["expected"], table["p"])]]
    cause_hits = found[found["cause"].notna()]
    for r in found.itertuples(index=False):
        detail: dict[str, Any] = {}
        w, n, p0, p = int(r.w), int(r.n), float(r.p0), float(r.p)
        cause = None if pd.isna(r.cause) else r.cause
        if cause is None:  # all complaints: only what the cause spikes do not already explain
            same_by = cause_hits["by"].isna() if r.by is None else cause_hits["by"] == r.by
            own = cause_hits[same_by & (cause_hits["value"] == r.value)]
            if len(own):
                w -= int(own["w"].sum())
                n -= int(own["n"].sum())
                p = float(tail(w, n, p0)) if n > 0 else 1.0
                if not hit(w, n * p0, p):
                    continue
                detail["excluding_causes"] = list(own["cause"])
        expected = n * p0
        detail.update({"p_value": float(f"{p:.3g}"), "threshold": float(f"{threshold:.3g}"),
                       "ratio": round(w / expected, 1) if expected else None, "baseline_count": n - w,
                       "baseline_window": _window(first, w_start - pd.Timedelta(days=1)),
                       "test": "one-sided exact binomial, Bonferroni over %d cells" % m})
        alerts.append(Alert("spike", r.by, r.value if r.by else ALL, cause, w, round(expected, 2), window, detail))
    alerts.sort(key=lambda a: (a.detail["p_value"], -a.count))
    return alerts, []


def _personal_keys(texts: Sequence[str]) -> dict[int, list[tuple[str, str]]]:
    """Row -> [(kind, HMAC-SHA256 hex)] for each unmasked phone, ID-card or bank-card number the facts extractor finds."""
    from pipeline.handling.facts import extract_facts
    from pipeline.secret import secret_key
    from pipeline.text.normalisation import simplified_halfwidth

    series = pd.Series(list(texts), dtype=object).fillna("")
    # every phone, ID-card or bank-card number is a run of 7+ digits (single spaces or hyphens allowed between):
    # only those notes go through the facts extractor
    candidates = np.flatnonzero(series.str.contains(_DIGIT_RUN, regex=True).to_numpy())
    out: dict[int, list[tuple[str, str]]] = {}
    key: bytes | None = None
    for i in candidates:
        text = series.iat[i]
        s = simplified_halfwidth(text)
        for fact in extract_facts(text).items:
            if fact.kind not in _PERSONAL_KINDS:
                continue
            number = s[fact.start:fact.end]
            if "*" in number:  # already masked: many numbers share a mask, so it identifies no one
                continue
            norm = re.sub(r"[^0-9A-Za-z]", "", number).upper()
            if len(norm) < 7:
                continue
            key = key or secret_key()
            digest = hmac.new(key, f"{fact.kind}:{norm}".encode(), hashlib.sha256).hexdigest()
            out.setdefault(int(i), []).append((fact.kind, digest))
    return out


def repeat_alerts(cases: Cases, settings: AlertSettings, as_of: pd.Timestamp | None = None) -> tuple[list[Alert], str | None, list[str]]:
    """Customers with `repeat_min` or more cases in the last `repeat_days`; returns (alerts, key source, notes)."""
    f = cases.frame
    notes: list[str] = []
    dated = f["date"].notna()
    if dated.any():
        end = as_of if as_of is not None else f.loc[dated, "date"].max()
        start = end - pd.Timedelta(days=settings.repeat_days - 1)
        rows = f.index[dated & (f["date"] >= start) & (f["date"] <= end)]
        window = _window(start, end)
    else:
        rows = f.index
        window = None
        notes.append("没有日期：重复投诉按全部案件统计，不限 30 天。")
    keys: dict[tuple[str, str], list[int]] = defaultdict(list)
    if cases.customer_column:
        source = cases.customer_column
        for i in rows:
            c = f.at[i, "customer"]
            if c:
                keys[("customer", c)].append(int(i))
    else:
        source = "personal_number"
        found = _personal_keys([f.at[i, "text"] for i in rows])
        for j, pairs in found.items():
            for kind, digest in dict.fromkeys(pairs):
                keys[(kind, digest)].append(int(rows[j]))
        if not found:
            notes.append("未指定 --customer-column，文本中也没有未脱敏的电话、身份证或银行卡号码，无法识别重复投诉人"
                         "（tousu tag 默认脱敏；用 --customer-column 指定客户号列）。")
    alerts: list[Alert] = []
    seen: set[frozenset] = set()
    for (kind, k), idx in keys.items():
        idx = sorted(set(idx))
        if len(idx) < settings.repeat_min or frozenset(idx) in seen:
            continue
        seen.add(frozenset(idx))
        part = f.loc[idx]
        cause = Counter(part["cause"]).most_common(1)[0][0]
        value = mask_pii(k) if kind == "customer" else f"{_KIND_NAMES[kind]}指纹 {k[:12]}"
        dates = part["date"].dropna()
        detail = {"case_ids": list(part["id"])[:20], "key": "customer_column" if kind == "customer" else f"hmac:{kind}",
                  "first": dates.min().date().isoformat() if len(dates) else None,
                  "last": dates.max().date().isoformat() if len(dates) else None,
                  "high_risk": int((part["level"] == "high").sum())}
        alerts.append(Alert("repeat", source, value, cause, len(idx), float(settings.repeat_min), window, detail))
    alerts.sort(key=lambda a: (-a.count, a.value or ""))
    return alerts, source, notes


def deadline_queue(cases: Cases, today: date) -> list[dict[str, Any]]:
    """Every open store case with a decision date, overdue first, then the nearest; the higher level first on a tie.

    The supervisor's queue on the page, and what the deadline alerts are cut from.
    """
    f = cases.frame
    if "status" not in f.columns or "decision_due" not in f.columns:
        return []
    rows = []
    for r in f.itertuples(index=False):
        if r.status != "open" or not r.decision_due:
            continue
        due = date.fromisoformat(str(r.decision_due)[:10])
        left = (due - today).days
        received = str(r.received)[:10] if getattr(r, "received", None) else None
        rows.append({"case_id": r.id, "cause": r.cause, "risk_level": r.level, "received": received,
                     "due": due.isoformat(), "days_left": left, "overdue": left < 0, "text": _excerpt(r.text, 80)})
    rows.sort(key=lambda x: (x["days_left"], -_LEVEL_RANK.get(x["risk_level"], 0), x["case_id"]))
    return rows


def deadline_alerts(cases: Cases, settings: AlertSettings, today: date) -> list[Alert]:
    """Open store cases due for a decision within `deadline_days` of today, or past it; soonest first."""
    alerts = []
    for q in deadline_queue(cases, today):
        if q["days_left"] > settings.deadline_days:
            break  # the queue is sorted by days left
        received = q["received"]
        window = {"start": received, "end": q["due"],
                  "days": (date.fromisoformat(q["due"]) - date.fromisoformat(received)).days if received else None}
        alerts.append(Alert("deadline", "case_id", q["case_id"], q["cause"], 1, None, window,
                            {"due": q["due"], "days_left": q["days_left"], "overdue": q["overdue"],
                             "risk_level": q["risk_level"]}))
    return alerts


# ------------------------------------------------------------------ the report

def _ordered(counter: Counter, order: Sequence[str]) -> dict[str, int]:
    known = {k: int(counter[k]) for k in order if counter.get(k)}
    rest = {k: int(v) for k, v in counter.most_common() if k not in known}
    return dict(sorted({**known, **rest}.items(), key=lambda kv: -kv[1]))


def _weekly(f: pd.DataFrame, end: pd.Timestamp | None) -> pd.DataFrame:
    """Counts per cause group in 7-day periods counted back from `end` (index: each period's first day).

    Periods end on the report's last day, so the latest one is always a whole week (a calendar week
    cut short by the data's end would look like a collapse); a first period the data only partly
    covers is left out.
    """
    dated = f[f["date"].notna() & (f["date"] <= end)] if end is not None else f.iloc[0:0]
    if dated.empty:
        return pd.DataFrame()
    back = ((end - dated["date"]).dt.days // 7).to_numpy()
    start = end - pd.to_timedelta(back * 7 + 6, unit="D")
    table = pd.crosstab(start, dated["group"].to_numpy())
    full = pd.date_range(end - pd.Timedelta(days=int(back.max()) * 7 + 6), end - pd.Timedelta(days=6), freq="7D")
    table = table.reindex(full, fill_value=0)
    if len(table) > 1 and table.index[0] < dated["date"].min():
        table = table.iloc[1:]
    order = [g for g in list(taxonomy().groups) if g in table.columns]
    return table[order]


def _breakdown(f: pd.DataFrame, col: str, top: int = 25) -> pd.DataFrame:
    key = f"by:{col}"
    table = pd.crosstab(f[key], f["group"])
    order = [g for g in list(taxonomy().groups) if g in table.columns]
    table = table[order]
    table["total"] = table.sum(axis=1)
    table["high"] = f[f["level"] == "high"].groupby(key).size().reindex(table.index, fill_value=0)
    top_cause = f.groupby(key)["cause"].agg(lambda s: s.value_counts().index[0])
    table["top_cause"] = top_cause.reindex(table.index)
    table = table.sort_values("total", ascending=False)
    if len(table) > top:
        rest = table.iloc[top - 1:]
        merged = rest[order + ["total", "high"]].sum()
        merged["top_cause"] = f[f[key].isin(rest.index)]["cause"].value_counts().index[0]
        table = pd.concat([table.iloc[:top - 1], pd.DataFrame([merged], index=[f"其他 {len(rest)} 个"])])
    return table


def _rising(f: pd.DataFrame, days: int, end: pd.Timestamp | None) -> tuple[list[dict[str, Any]], dict[str, str] | None]:
    dated = f[f["date"].notna()]
    if dated.empty or end is None:
        return [], None
    span = int((end - dated["date"].min()).days) + 1
    days = min(days, span // 2)
    if days < 1:
        return [], None
    cur_start = end - pd.Timedelta(days=days - 1)
    prev_start = cur_start - pd.Timedelta(days=days)
    cur = dated[(dated["date"] >= cur_start) & (dated["date"] <= end)]["cause"].value_counts()
    prev = dated[(dated["date"] >= prev_start) & (dated["date"] < cur_start)]["cause"].value_counts()
    rows = []
    for cause in set(cur.index) | set(prev.index):
        c, p = int(cur.get(cause, 0)), int(prev.get(cause, 0))
        if c < 3 or (c - p) < np.sqrt(c + p):  # at least one Poisson standard deviation up: not noise
            continue
        rows.append({"cause": cause, "previous": p, "current": c, "change": c - p,
                     "ratio": round(c / p, 2) if p else None, "z": (c - p) / np.sqrt(c + p)})
    rows.sort(key=lambda r: (-r["z"], -r["change"]))
    periods = {"previous": f"{prev_start.date()} ~ {(cur_start - pd.Timedelta(days=1)).date()}",
               "current": f"{cur_start.date()} ~ {end.date()}", "days": str(days)}
    return rows[:10], periods


def _excerpt(text: str, limit: int) -> str:
    text = mask_pii(re.sub(r"\s+", " ", text or "")).strip()
    return text if len(text) <= limit else text[:limit] + "……"


def _top_risk(f: pd.DataFrame, by: Sequence[str], limit: int = 20) -> list[dict[str, Any]]:
    tax = taxonomy()
    severity = {fl: (2 if v["severity"] == "high" else 1) for fl, v in tax.flags.items()}
    high = f[f["level"] == "high"]
    pool = high if len(high) >= limit else f
    score = pool["flags"].map(lambda fl: sum(severity.get(x, 1) for x in fl))
    order = pd.DataFrame({"level": pool["level"].map(_LEVEL_RANK).fillna(-1), "score": score,
                          "date": pool["date"].fillna(pd.Timestamp.min)}, index=pool.index)
    picked = order.sort_values(["level", "score", "date"], ascending=False).head(limit).index
    out = []
    for i in picked:
        r = f.loc[i]
        out.append({"id": r["id"], "date": r["date"].date().isoformat() if pd.notna(r["date"]) else "",
                    "by": {c: r[f"by:{c}"] for c in by}, "cause": r["cause"], "level": r["level"],
                    "flags": list(r["flags"]), "text": _excerpt(r["text"], 140)})
    return out


def _samples(f: pd.DataFrame, causes: Sequence[str], per: int = 3) -> dict[str, list[str]]:
    out = {}
    for cause in causes:
        part = f[(f["cause"] == cause) & (f["text"].str.len() > 0)]
        part = part.assign(_p=part["cause_proba"].fillna(0)).sort_values("_p", ascending=False, kind="stable")
        texts, seen = [], set()
        for t in part["text"]:
            e = _excerpt(t, 160)
            if e not in seen:
                seen.add(e)
                texts.append(e)
            if len(texts) >= per:
                break
        out[cause] = texts
    return out


def build_report(cases: Cases, settings: AlertSettings | None = None, *, as_of: date | None = None,
                 today: date | None = None) -> Report:
    """Count, compare and warn. `as_of`: the last day of the alert windows (default: the latest date in the data);
    `today`: the day deadlines are counted from (default: the real today)."""
    settings = settings or AlertSettings()
    tax = taxonomy()
    f = cases.frame
    notes: list[str] = []
    dated = f["date"].dropna()
    end = pd.Timestamp(as_of) if as_of is not None else (dated.max() if len(dated) else None)
    period = {"start": dated.min().date().isoformat() if len(dated) else None,
              "end": dated.max().date().isoformat() if len(dated) else None}
    if cases.date_column is None:
        notes.append("输入没有日期列（用 --date-column 指定），未画趋势、未做激增预警。")
    spikes, spike_notes = spike_alerts(cases, settings, end) if cases.date_column else ([], [])
    repeats, key_source, repeat_notes = repeat_alerts(cases, settings, end)
    deadlines = deadline_alerts(cases, settings, today or date.today()) if cases.is_store else []
    if cases.is_store and not cases.customer_column:
        repeat_notes = [n for n in repeat_notes if "未指定" not in n] + [
            "案件库只保存脱敏文本，无法按号码识别重复投诉人。"]
    notes += spike_notes + repeat_notes
    causes = _ordered(Counter(f["cause"]), tax.cause_ids)
    flags = Counter(x for fl in f["flags"] for x in fl)
    minds = Counter(m[0] if m else "none" for m in f["mindset"])
    rising, rising_periods = _rising(f, settings.rising_days, end)
    return Report(
        source=cases.source, n=len(f), n_errors=cases.n_errors, n_no_date=cases.n_missing_date + cases.n_bad_date,
        n_bad_date=cases.n_bad_date, bad_date_examples=cases.bad_date_examples, date_column=cases.date_column,
        date_guessed=cases.date_guessed, by=cases.by, period=period,
        as_of=end.date().isoformat() if end is not None else None, settings=settings,
        risk={lvl: int((f["level"] == lvl).sum()) for lvl in reversed(RISK_LEVELS)},
        groups=_ordered(Counter(f["group"]), tax.group_ids), causes=causes,
        flags={k: int(flags[k]) for k in tax.flag_ids if flags.get(k)}, mindsets=_ordered(minds, tax.mindset_ids),
        weekly=_weekly(f, end), breakdowns={c: _breakdown(f, c) for c in cases.by}, rising=rising,
        rising_periods=rising_periods, top_risk=_top_risk(f, cases.by),
        samples=_samples(f, list(causes)[:5]), alerts=spikes + repeats + deadlines, notes=notes,
        customer_key=key_source, is_store=cases.is_store)
