"""tousu evaluate's report for people: Chinese, names, distinct colours, group confusion, misclassified notes masked."""
from __future__ import annotations

import json

import pandas as pd
import pytest

from pipeline.io import read_labelled
from pipeline.model.evaluation import evaluate, flag_pr_figure, group_confusion, write_report


@pytest.fixture(scope="module")
def gold(request) -> pd.DataFrame:
    from tests.conftest import SHARED

    df = read_labelled(SHARED / "data" / "validation.jsonl").head(60).reset_index(drop=True)
    wrong = {"id": "W-1", "text": "我父亲住院的理赔被拒了，联系电话13812345678，再不赔就去找电视台曝光", "cause": ["service_receipt"],
             "risk_level": "low", "risk_flags": [], "mindset": ["remedy"]}
    return pd.concat([df, pd.DataFrame([wrong])], ignore_index=True)


@pytest.fixture(scope="module")
def report(small_model, gold, tmp_path_factory):
    out = tmp_path_factory.mktemp("eval")
    result = evaluate(small_model, gold)
    triages = result["_triages"]
    path = write_report(result, gold, out, "tousu 模型 v 评估：验证集")
    return path, triages


def test_the_flag_chart_gives_every_flag_its_own_colour(small_model, gold, report):
    _, triages = report
    fig = flag_pr_figure(triages, gold)
    lines = fig.axes[0].get_lines()
    assert len(lines) >= 8
    assert len({line.get_color() for line in lines}) == len(lines)
    assert all(any("\u4e00" <= ch <= "\u9fff" for ch in t.get_text()) for t in fig.axes[0].get_legend().get_texts())


def test_the_report_is_chinese_with_names_a_group_confusion_matrix_and_the_misclassified_notes_masked(report, gold):
    path, triages = report
    html = path.read_text(encoding="utf-8")
    for part in ("总体指标", "主要原因准确率", "投诉原因类别混淆矩阵", "判错的笔记", "理赔与给付责任(含除外责任)的争议", "缴费收据收不到"):
        assert part in html
    assert "W-1" in html and "138****5678" in html and "13812345678" not in html
    assert 'src="data:image/png;base64,' in html and (path.parent / "cause_group_confusion.png").exists()
    data = json.loads((path.parent / "report.json").read_text(encoding="utf-8"))
    groups, matrix = group_confusion(triages, gold)
    assert data["cause_group_confusion"] == {"labels": groups, "rows_gold_cols_pred": matrix.tolist()}
    assert matrix.sum() == len(gold)
    wrong = {w["id"]: w for w in data["misclassified"]}
    assert "W-1" in wrong and "cause" in wrong["W-1"]["wrong"] and "13812345678" not in json.dumps(data, ensure_ascii=False)
    n_wrong = sum(t.cause[0] != g[0] or t.risk_level != lv for t, g, lv in zip(triages, gold["cause"], gold["risk_level"]))
    assert len(wrong) == n_wrong and f"判错的笔记（{n_wrong} 条" in html
