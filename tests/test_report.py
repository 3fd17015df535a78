"""tousu report: the alerts' done-when figures, the page, bad input, the store's deadlines."""
from __future__ import annotations

import hashlib
import hmac
import json
import re
from datetime import date, timedelta

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner

import cli
from pipeline.apps.report import AlertSettings, build_report, parse_dates, prepare
from pipeline.contract.taxonomy import taxonomy

BRANCHES = ("东城支公司", "西城支公司", "海淀支公司", "朝阳支公司", "丰台支公司")
START = pd.Timestamp("2026-01-01")
TEXTS = ("理赔拖了一个多月还在要材料", "业务员说是存款，退保损失一半", "客服态度很差，打了好几次电话没人管",
         "回访电话问了一堆问题", "分红比说好的少很多")


def backlog(seed: int, plant: int = 20, n: int = 300, days: int = 60, cause: str = "contract_claims",
            at: str = "海淀支公司") -> pd.DataFrame:
    """`n` tagged notes over `days` days from five branches; `plant` of them `cause` at one branch in the last two days."""
    rng = np.random.default_rng(seed)
    causes = taxonomy().cause_ids
    weights = rng.dirichlet(np.ones(len(causes)))
    rows = []
    for i in range(n - plant):
        rows.append({"id": f"N{i}", "text": TEXTS[i % len(TEXTS)], "branch": BRANCHES[rng.integers(len(BRANCHES))],
                     "date": (START + pd.Timedelta(days=int(rng.integers(days)))).date().isoformat(),
                     "pred_cause": causes[rng.choice(len(causes), p=weights)],
                     "pred_risk_level": ("low", "medium", "high")[rng.integers(3)], "pred_risk_flags": "", "pred_mindset": ""})
    for j in range(plant):
        rows.append({"id": f"P{j}", "text": "我父亲住院的理赔被拒了，要求重新审核", "branch": at,
                     "date": (START + pd.Timedelta(days=days - 1 - int(rng.integers(2)))).date().isoformat(),
                     "pred_cause": cause, "pred_risk_level": "medium", "pred_risk_flags": "anger", "pred_mindset": "remedy"})
    return pd.DataFrame(rows)


def alerts_of(df: pd.DataFrame, **settings) -> list:
    cases = prepare(df, "backlog", date_column="date", by=["branch"])
    return build_report(cases, AlertSettings(**settings)).alerts


# ------------------------------------------------------------------ done when: the planted spike and the quiet backlogs

def test_a_planted_claims_spike_at_one_branch_is_an_alert_naming_the_branch_with_at_most_two_others():
    alerts = alerts_of(backlog(seed=7))
    spikes = [a for a in alerts if a.kind == "spike" and a.value == "海淀支公司" and a.cause == "contract_claims"]
    assert len(spikes) == 1, [a.to_json() for a in alerts]
    spike = spikes[0]
    assert spike.by == "branch" and spike.count >= 18 and spike.baseline < 5
    assert spike.window == {"start": "2026-02-27", "end": "2026-03-01", "days": 3}
    assert len(alerts) - 1 <= 2


@pytest.mark.parametrize("seed", [1, 2, 3])
def test_the_plant_is_found_in_other_backlogs_too(seed):
    alerts = alerts_of(backlog(seed=seed, at=BRANCHES[seed]))
    assert [(a.value, a.cause) for a in alerts if a.kind == "spike"][:1] == [(BRANCHES[seed], "contract_claims")]
    assert len(alerts) <= 3


def test_twenty_backlogs_without_a_plant_give_fewer_than_half_an_alert_each():
    counts = [len(alerts_of(backlog(seed=100 + s, plant=0))) for s in range(20)]
    assert sum(counts) / len(counts) < 0.5, counts


def test_a_centre_wide_rise_is_not_one_branchs_spike():
    """Every branch triples in the window: the others' window share is the null, so no branch alerts."""
    df = backlog(seed=11, plant=0)
    last = df[pd.to_datetime(df["date"]) >= START + pd.Timedelta(days=57)]
    surge = pd.concat([last] * 3, ignore_index=True).assign(id=lambda d: [f"S{i}" for i in range(len(d))])
    alerts = alerts_of(pd.concat([df, surge], ignore_index=True))
    assert [a for a in alerts if a.kind == "spike"] == []


def test_all_complaints_alert_when_no_single_cause_explains_the_spike():
    df = backlog(seed=5, plant=0)
    causes = taxonomy().cause_ids
    extra = pd.DataFrame([{"id": f"X{i}", "text": "投诉", "branch": "朝阳支公司", "date": "2026-03-01",
                           "pred_cause": causes[i % 10], "pred_risk_level": "low", "pred_risk_flags": "", "pred_mindset": ""}
                          for i in range(30)])
    spikes = [a for a in alerts_of(pd.concat([df, extra], ignore_index=True)) if a.kind == "spike"]
    assert [(a.value, a.cause) for a in spikes] == [("朝阳支公司", None)]
    assert spikes[0].to_json()["cause_name"] == "全部投诉"


def test_the_thresholds_are_options():
    small = backlog(seed=7, plant=4)
    assert not [a for a in alerts_of(small) if a.kind == "spike"]  # 4 < the minimum count of 5
    assert [a.value for a in alerts_of(small, min_count=3) if a.kind == "spike"] == ["海淀支公司"]
    assert not [a for a in alerts_of(backlog(seed=7), alpha=1e-30) if a.kind == "spike"]


# ------------------------------------------------------------------ repeat complainants

def _notes(rows):
    base = {"pred_cause": "contract_claims", "pred_risk_level": "medium", "pred_risk_flags": "", "pred_mindset": ""}
    return pd.DataFrame([{**base, "id": f"R{i}", **r} for i, r in enumerate(rows)])


def test_a_customer_with_three_cases_in_thirty_days_is_a_repeat_alert_and_one_over_ninety_days_is_not():
    rows = [{"text": "催理赔", "customer": "C-1", "date": d} for d in ("2026-03-01", "2026-03-10", "2026-03-20")]
    rows += [{"text": "催理赔", "customer": "C-2", "date": d} for d in ("2026-01-01", "2026-02-10", "2026-03-20")]
    cases = prepare(_notes(rows), "x", date_column="date", customer_column="customer")
    repeats = [a for a in build_report(cases).alerts if a.kind == "repeat"]
    assert [(a.by, a.value, a.count) for a in repeats] == [("customer", "C-1", 3)]
    assert repeats[0].window == {"start": "2026-02-19", "end": "2026-03-20", "days": 30}


def test_repeat_complainants_by_personal_number_are_keyed_by_hmac_and_never_show_the_number(monkeypatch):
    monkeypatch.setenv("TOUSU_SECRET", "centre-secret-for-the-report")
    rows = [{"text": "我的电话13812345678，理赔还没到", "date": "2026-03-01"},
            {"text": "客户来电（138-1234-5678）再次催理赔", "date": "2026-03-05"},
            {"text": "第三次打电话了 138 1234 5678 还是没人管", "date": "2026-03-09"},
            {"text": "电话138****5678，催理赔", "date": "2026-03-09"},  # masked: identifies no one
            {"text": "另一位客户13900001111投诉", "date": "2026-03-09"}]
    cases = prepare(_notes(rows), "x", date_column="date")
    report = build_report(cases)
    repeats = [a for a in report.alerts if a.kind == "repeat"]
    assert len(repeats) == 1 and repeats[0].count == 3
    assert repeats[0].detail["case_ids"] == ["R0", "R1", "R2"]
    digest = hmac.new(b"centre-secret-for-the-report", b"phone:13812345678", hashlib.sha256).hexdigest()
    assert repeats[0].value.endswith(digest[:12]) and repeats[0].detail["key"] == "hmac:phone"
    out = json.dumps(report.to_json(), ensure_ascii=False)
    assert "13812345678" not in out and "12345678" not in out and "5678" not in out
    monkeypatch.setenv("TOUSU_SECRET", "another-centre-secret-value")
    other = [a for a in build_report(prepare(_notes(rows), "x", date_column="date")).alerts if a.kind == "repeat"]
    assert other[0].value != repeats[0].value  # keyed: without the secret the digest cannot be recomputed


def test_the_secret_key_file_is_created_once_and_private(monkeypatch, tmp_path):
    import pipeline.secret as secret

    monkeypatch.delenv("TOUSU_SECRET", raising=False)
    monkeypatch.setattr(secret, "key_file", lambda: tmp_path / "secret.key")
    first = secret.secret_key()
    assert len(first) == 32 and secret.secret_key() == first
    assert (tmp_path / "secret.key").stat().st_mode & 0o077 == 0
    monkeypatch.setenv("TOUSU_SECRET", "a-centre-wide-secret-value")
    assert secret.secret_key() == b"a-centre-wide-secret-value"
    monkeypatch.setenv("TOUSU_SECRET", "abc")
    with pytest.raises(secret.SecretError):
        secret.secret_key()


# ------------------------------------------------------------------ the page and the CLI

@pytest.fixture
def tagged_csv(tmp_path):
    df = backlog(seed=7)
    df.loc[0, "text"] = "客户王某电话13812345678，身份证110101199003071234，理赔拖了两个月，再不赔就找电视台曝光"
    df.loc[0, "pred_risk_level"] = "high"
    df.loc[0, "pred_risk_flags"] = "media_threat|repeat_complaint"
    df.loc[1, "date"] = "上周三"  # not a date
    df.loc[2, "date"] = ""
    df.loc[3, "date"] = "2026年2月3日"
    path = tmp_path / "tagged.csv"
    df.to_csv(path, index=False, encoding="utf-8-sig")
    return path


def run(*args):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


def test_report_writes_one_self_contained_chinese_page_led_by_the_alerts(tagged_csv, tmp_path, monkeypatch):
    monkeypatch.setenv("TOUSU_SECRET", "a-secret-of-sixteen-or-more")
    out = tmp_path / "report.html"
    r = run("report", str(tagged_csv), "-o", str(out), "--by", "branch", "--date-column", "date")
    assert r.exit_code == 0, r.output
    html = out.read_text(encoding="utf-8")
    assert html.index("预警") < html.index("概览") < html.index("每周趋势") < html.index("按“branch”分布")
    assert "激增预警" in html and "海淀支公司" in html and "理赔与给付责任" in html
    for part in ("上升最快的投诉原因", "风险最高的案件", "主要投诉原因的样例"):
        assert part in html
    assert not re.search(r"""(src|href)\s*=\s*["']?(https?:|//)""", html) and "<script" not in html and "<link" not in html
    assert html.count('src="data:image/png;base64,') >= 5
    assert "13812345678" not in html and "110101199003071234" not in html and "138****5678" in html
    assert "2 件" in html and "1 件日期无法解析" in html and "上周三" in html  # the rows without a date, reported


def test_report_json_prints_n_period_and_the_alerts(tagged_csv):
    r = run("report", str(tagged_csv), "--by", "branch", "--date-column", "date", "--json")
    assert r.exit_code == 0, r.output
    out = json.loads(r.stdout)
    assert out["n"] == 300 and out["period"] == {"start": "2026-01-01", "end": "2026-03-01"}
    assert out["no_date"] == 2 and out["unparseable_dates"] == 1
    spike = out["alerts"][0]
    assert {"kind", "by", "value", "cause", "count", "baseline", "window"} <= set(spike)
    assert (spike["kind"], spike["by"], spike["value"], spike["cause"]) == ("spike", "branch", "海淀支公司", "contract_claims")


def test_a_tagged_workbook_reports_like_the_csv(tagged_csv, tmp_path):
    from pipeline.io import atomic_write, read_table

    xlsx = tmp_path / "tagged.xlsx"
    atomic_write(xlsx, read_table(tagged_csv))
    r = run("report", str(xlsx), "--by", "branch", "--date-column", "date", "--json")
    assert r.exit_code == 0, r.output
    assert json.loads(r.stdout)["alerts"][0]["value"] == "海淀支公司"


@pytest.mark.parametrize("option", ["--by", "--date-column", "--customer-column"])
def test_a_column_that_is_not_there_exits_2_naming_the_columns(tagged_csv, option):
    r = CliRunner().invoke(cli.main, ["report", str(tagged_csv), option, "机构"])
    assert r.exit_code == 2
    assert f"{option} column '机构'" in r.output and "branch" in r.output and "pred_cause" in r.output


def test_an_untagged_file_says_to_run_tousu_tag_first(tmp_path):
    src = tmp_path / "notes.csv"
    pd.DataFrame({"id": ["1"], "text": ["理赔被拒"]}).to_csv(src, index=False)
    r = CliRunner().invoke(cli.main, ["report", str(src)])
    assert r.exit_code == 3 and "run `tousu tag`" in r.output and r.output.count("\n") == 1


def test_an_empty_store_says_there_is_nothing_to_report(tmp_path):
    r = CliRunner().invoke(cli.main, ["report", "--store", "--database", f"sqlite:///{tmp_path / 'e.db'}"])
    assert r.exit_code == 3 and "nothing to report on" in r.output


def test_input_and_store_are_one_or_the_other(tagged_csv):
    assert CliRunner().invoke(cli.main, ["report"]).exit_code == 2
    assert CliRunner().invoke(cli.main, ["report", str(tagged_csv), "--store"]).exit_code == 2


def test_dates_parse_in_the_forms_exports_use_and_the_rest_count_as_no_date():
    days, missing, bad, examples = parse_dates(["2026-03-01", "2026/3/2", "2026年3月3日", "2026-03-04 10:20:00",
                                                "2026-03-05T08:00:00+08:00", "", None, "昨天", "2026-13-45"])
    assert [d.date().isoformat() if pd.notna(d) else None for d in days] == [
        "2026-03-01", "2026-03-02", "2026-03-03", "2026-03-04", "2026-03-05", None, None, None, None]
    assert (missing, bad, examples) == (2, 2, ["昨天", "2026-13-45"])


def test_the_weekly_trend_ends_with_a_whole_week_on_the_last_day():
    report = build_report(prepare(backlog(seed=3), "x", date_column="date"))
    weeks = report.weekly
    assert weeks.index[-1] + pd.Timedelta(days=6) == pd.Timestamp("2026-03-01")
    assert (weeks.index[1:] - weeks.index[:-1] == pd.Timedelta(days=7)).all()
    assert weeks.index[0] >= START  # a first period the data covers only in part is left out
    last_week = backlog(seed=3)["date"].between("2026-02-23", "2026-03-01").sum()
    assert weeks.iloc[-1].sum() == last_week


def test_without_dates_the_report_says_so_and_still_counts():
    df = backlog(seed=3).drop(columns=["date"])
    report = build_report(prepare(df, "x", by=["branch"]))
    assert report.n == 300 and report.n_no_date == 300 and report.weekly.empty
    assert not [a for a in report.alerts if a.kind == "spike"]
    assert any("--date-column" in n for n in report.notes)


def test_rows_the_tagger_could_not_process_are_left_out_and_counted():
    df = backlog(seed=3)
    df["error"] = ""
    df.loc[:9, "error"] = "empty text in column 'text'"
    df.loc[:9, "pred_cause"] = ""
    report = build_report(prepare(df, "x", date_column="date"))
    assert report.n == 290 and report.n_errors == 10


# ------------------------------------------------------------------ the case store: deadline alerts

def _result(cause: str, level: str) -> dict:
    return {"triage": {"cause": [{"id": cause, "proba": 0.9}], "risk_level": {"id": level}, "risk_flags": [],
                       "mindset": [{"id": "remedy"}]}, "facts": [], "plan": {"review": False}}


def test_store_report_warns_of_open_cases_near_or_past_their_decision_date(tmp_path):
    from pipeline.apps.store import CaseStore, TriageRecord

    url = f"sqlite:///{tmp_path / 'cases.db'}"
    store = CaseStore(url)
    today = date(2026, 3, 20)
    received = {"D-overdue": today - timedelta(days=20), "D-soon": today - timedelta(days=13),
                "D-later": today - timedelta(days=5), "D-resolved": today - timedelta(days=20)}
    store.record([TriageRecord(cid, "理赔拖了很久，电话13812345678", _result("contract_claims", "high"), "v1",
                               received=day) for cid, day in received.items()])
    store.correct("D-resolved", {}, author="王丽", channel="cli", resolved=True)
    store.close()
    r = run("report", "--store", "--database", url, "--as-of", today.isoformat(), "--json", "-o", str(tmp_path / "s.html"))
    assert r.exit_code == 0, r.output
    deadlines = [a for a in json.loads(r.stdout)["alerts"] if a["kind"] == "deadline"]
    assert [(a["value"], a["days_left"], a["overdue"]) for a in deadlines] == [("D-overdue", -5, True), ("D-soon", 2, False)]
    assert deadlines[0]["due"] == "2026-03-15" and deadlines[0]["cause"] == "contract_claims"
    html = (tmp_path / "s.html").read_text(encoding="utf-8")
    assert "处理时限" in html and "已逾期 5 天" in html and "13812345678" not in html


def test_a_store_report_uses_the_handlers_labels(tmp_path):
    from pipeline.apps.report import store_frame
    from pipeline.apps.store import CaseStore, TriageRecord

    store = CaseStore(f"sqlite:///{tmp_path / 'c.db'}")
    store.record([TriageRecord("K-1", "退保", _result("contract_surrender", "low"), "v1", received=date(2026, 3, 1))])
    store.correct("K-1", {"cause": ["sales_misrepresentation"], "risk_level": "high"}, author="王丽", channel="cli")
    row = store_frame(store).iloc[0]
    assert row["pred_cause"] == ["sales_misrepresentation"] and row["pred_risk_level"] == "high"
    assert row["decision_due"] == "2026-03-16"
