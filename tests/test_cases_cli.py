"""The case store from the command line: tag/score --store, tousu cases ..., retrain --from-store."""
import json

import pandas as pd
import pytest
from click.testing import CliRunner

import cli
from pipeline.io import read_labelled
from pipeline.apps.store import CaseStore

ROWS = [
    {"工单号": "T-1", "投诉内容": "客户要求退保，嫌现金价值太低，说业务员当初没讲退保有损失，电话13812345678", "渠道": "热线"},
    {"工单号": "T-2", "投诉内容": "", "渠道": "柜面"},
    {"工单号": "", "投诉内容": "第三次打电话催理赔了，再不赔我就去找电视台曝光！", "渠道": "网络"},
    {"工单号": "T-4", "投诉内容": "請問猶豫期是多少天？", "渠道": "微信"},
]


@pytest.fixture
def env(registry, tmp_path, monkeypatch):
    """The small model promoted (conftest's `registry`) and an empty case store of this test's own."""
    url = f"sqlite:///{tmp_path / 'cases.db'}"
    monkeypatch.setenv("TOUSU_DATABASE_URL", url)
    return url


def run(*args, code=0):
    result = CliRunner().invoke(cli.main, list(args))
    assert result.exit_code == code, result.output
    return result


def test_tag_store_keeps_each_tagged_row_once_even_when_run_again(env, tmp_path):
    src = tmp_path / "工单.csv"
    pd.DataFrame(ROWS * 3).to_csv(src, index=False)  # 12 rows, 9 tagged; the id-less row gets FILE#ROW ids
    for jobs in ("2", "1"):
        run("tag", str(src), "-o", str(tmp_path / "out.csv"), "--text-column", "投诉内容", "--id-column", "工单号",
            "--store", "--chunk-size", "4", "--jobs", jobs, "--quiet")
    with CaseStore(env) as store:
        counts = store.counts()
        assert counts["triages"] == 9 - 4 and counts["cases"] == 5  # T-1 and T-4 repeat with the same text: one triage
        ids = sorted(c["case_id"] for c in store.list_cases(limit=100).cases)
        assert ids == ["T-1", "T-4", "工单.csv#11", "工单.csv#3", "工单.csv#7"]
        assert "13812345678" not in store.get("T-1")["triages"][0]["text_masked"]
        assert store.get("T-1")["triages"][0]["source"] == "tag"


def test_score_store_then_correct_then_export_gives_a_label_file(env, tmp_path):
    run("score", "--store", "--id", "C-1", "--received", "2026-11-25", "第三次打电话催理赔了，再不赔我就去找电视台曝光！")
    listed = json.loads(run("cases", "list", "--json").output)
    assert [c["case_id"] for c in listed["cases"]] == ["C-1"] and listed["next_cursor"] is None
    out = run("cases", "correct", "C-1", "--risk-level", "high", "--flags", "media_threat,anger", "--mindset", "remedy",
              "--cause", "contract_claims", "--author", "王丽", "--resolved").output
    assert "correction 1 by 王丽" in out and "status resolved" in out
    run("cases", "export", "--corrected", "-o", str(tmp_path / "new.jsonl"))
    labels = read_labelled(tmp_path / "new.jsonl")
    assert labels.loc[0, "id"] == "C-1" and labels.loc[0, "risk_flags"] == ["media_threat", "anger"]
    assert labels.loc[0, "corrected_by"] == "王丽"
    run("cases", "export", "-o", str(tmp_path / "audit.csv"))
    audit = pd.read_csv(tmp_path / "audit.csv")
    assert list(audit["case_id"]) == ["C-1"] and audit.loc[0, "status"] == "resolved"
    shown = json.loads(run("cases", "show", "C-1").output)
    assert shown["corrections"][0]["channel"] == "cli"
    stats = json.loads(run("cases", "stats", "--json").output)
    assert stats["counts"]["corrected_cases"] == 1 and stats["periods"][0]["n"] == 1
    assert "open" not in run("cases", "list", "--status", "resolved").output.split()[2:3]


def test_store_refusals_exit_6_with_the_reason(env):
    run("score", "--store", "--id", "C-1", "理赔拖了两个月")
    assert "no stored case 'nope'" in run("cases", "correct", "nope", "--risk-level", "low", "--author", "x", code=6).output
    assert "unknown id 'bogus'" in run("cases", "correct", "C-1", "--flags", "bogus", "--author", "x", code=6).output
    assert "cursor" in run("cases", "list", "--cursor", "garbage!", code=6).output
    bad = run("cases", "list", "--database", "postgresql+psycopg://nobody@127.0.0.1:1/none", code=6).output
    assert "case store" in bad and "--database" in bad


def test_migrate_creates_the_schema_of_an_empty_database(env, tmp_path):
    url = f"sqlite:///{tmp_path / 'fresh.db'}"
    assert "schema empty -> 0003" in run("cases", "migrate", "--database", url).output
    assert "schema 0003 -> 0003" in run("cases", "migrate", "--database", url).output


def test_retrain_from_store_needs_corrections(env):
    assert "--from-store" in run("retrain", code=2).output
    assert "no corrected cases" in run("retrain", "--from-store", code=3).output


@pytest.mark.slow
def test_retrain_from_store_trains_on_the_handlers_corrections(env, tmp_path):
    """The loop end to end: tag with --store, handlers correct, retrain --from-store compares and decides."""
    from tools.generate import generate_corpus

    fresh = generate_corpus(150, seed=11).assign(id=lambda d: "store-" + d["id"])
    src = tmp_path / "incoming.jsonl"
    fresh[["id", "text"]].to_json(src, orient="records", lines=True, force_ascii=False)
    run("tag", str(src), "-o", str(tmp_path / "tagged.jsonl"), "--store", "--quiet")
    with CaseStore(env) as store:
        for row in fresh.itertuples():
            store.correct(row.id, {"cause": row.cause, "risk_level": row.risk_level, "risk_flags": row.risk_flags,
                                   "mindset": row.mindset}, author="王丽")
    result = CliRunner().invoke(cli.main, ["retrain", "--from-store"])
    assert result.exit_code in (0, 5), result.output
    assert "150 corrected cases from the case store" in result.output
    assert "new_heldout" in result.output and "cause_top1" in result.output
