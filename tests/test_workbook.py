"""The tagged workbook for people: Chinese names beside the ids, frozen header, filter, widths, wrap, summary."""
from __future__ import annotations

import pandas as pd
import pytest
from openpyxl import load_workbook

from pipeline.io import DATA_SHEET, FIELDS_SHEET, SUMMARY_SHEET, atomic_write, read_table

LONG = "客户称理赔拖了两个月还没有结果，" * 8


@pytest.fixture
def tagged() -> pd.DataFrame:
    return pd.DataFrame({
        "工单号": ["A-1", "A-2", "A-3"],
        "text": [LONG, "退保损失太大", "=1+1 不是公式"],
        "pred_cause": [["contract_claims", "company_management"], ["contract_surrender"], ["contract_claims"]],
        "pred_cause_proba": [[0.9, 0.05], [0.8], [0.7]],
        "pred_cause_group": [["contract", "company"], ["contract"], ["contract"]],
        "pred_risk_level": ["high", "low", "medium"],
        "pred_risk_flags": [["media_threat", "anger"], [], ["repeat_complaint"]],
        "pred_mindset": [["remedy"], [], ["venting", "respect"]],
        "review": [False, True, False],
        "plan_steps": [["general_listen", "general_record", "major_senior_owner"], ["general_listen"], ["general_listen"]],
        "error": ["", "", ""],
    })


def test_the_workbook_has_names_beside_ids_a_frozen_filtered_header_widths_and_wrapped_long_cells(tagged, tmp_path):
    path = tmp_path / "tagged.xlsx"
    atomic_write(path, tagged)
    wb = load_workbook(path)
    assert wb.sheetnames == [DATA_SHEET, SUMMARY_SHEET, FIELDS_SHEET]
    ws = wb[DATA_SHEET]
    header = [c.value for c in ws[1]]
    # people read Chinese headers: the names beside the ids, no English column name that tousu adds
    assert header[header.index("投诉原因编号") + 1] == "预测投诉原因"
    assert header[header.index("风险等级编号") + 1] == "预测风险等级"
    assert header[header.index("风险标记编号") + 1] == "预测风险标记"
    assert "处理步骤编号" in header and not [h for h in header if h.startswith(("pred_", "plan_"))]
    row = dict(zip(header, [c.value for c in ws[2]]))
    assert row["投诉原因编号"] == "contract_claims|company_management"  # ids stay, as labels.md writes them
    assert row["预测投诉原因"] == "理赔与给付责任(含除外责任)的争议；对组织管理与解决问题能力的不满"
    assert row["预测风险等级"] == "重大投诉" and row["预测风险标记"] == "媒体曝光；情绪激动"
    assert ws.freeze_panes == "A2"
    assert ws.auto_filter.ref == f"A1:{ws.cell(row=1, column=len(header)).column_letter}4"
    assert all(c.font.bold for c in ws[1])
    text_col = ws.cell(row=1, column=header.index("text") + 1).column_letter
    steps_col = ws.cell(row=1, column=header.index("处理步骤编号") + 1).column_letter
    assert ws.column_dimensions[text_col].width == 60 and ws[f"{text_col}2"].alignment.wrap_text
    assert ws[f"{steps_col}2"].alignment.wrap_text  # the plan wraps
    assert ws.column_dimensions["A"].width < 15  # a short id column stays narrow
    assert ws.cell(row=1, column=header.index("投诉原因编号") + 1).comment is not None
    assert row["text"] == LONG and ws[f"{text_col}4"].value.startswith("'=")  # no formula runs


def test_the_summary_sheet_counts_causes_and_risk_levels(tagged, tmp_path):
    path = tmp_path / "tagged.xlsx"
    atomic_write(path, tagged)
    rows = list(load_workbook(path)[SUMMARY_SHEET].iter_rows(values_only=True))
    assert rows[0] == ("案件数", 3, None, None)
    by_id = {r[1]: r for r in rows if r and r[1] and isinstance(r[2], int)}
    assert by_id["contract_claims"][:3] == ("理赔与给付责任(含除外责任)的争议", "contract_claims", 2)
    assert by_id["contract_surrender"][2] == 1 and by_id["company_management"][2] == 0  # main causes only
    assert by_id["high"][2] == by_id["low"][2] == by_id["medium"][2] == 1
    assert by_id["contract"][2] == 3


def test_machines_still_read_the_ids_back(tagged, tmp_path):
    path = tmp_path / "tagged.xlsx"
    atomic_write(path, tagged)
    back = read_table(path)  # the Chinese headers come back as the ids
    assert list(back["pred_cause"]) == ["contract_claims|company_management", "contract_surrender", "contract_claims"]
    assert "plan_steps" in back.columns and "处理步骤编号" not in back.columns
    assert list(back["工单号"]) == ["A-1", "A-2", "A-3"]
    atomic_write(path, back.assign(pred_cause=["other", "other", "other"]))  # tagged again: names follow the ids
    again = read_table(path)
    assert list(again["预测投诉原因"]) == ["其他"] * 3 and list(again.columns).count("预测投诉原因") == 1


def test_an_untagged_frame_gets_the_layout_but_no_summary(tmp_path):
    path = tmp_path / "plain.xlsx"
    atomic_write(path, pd.DataFrame({"id": ["1"], "text": ["你好"]}))
    wb = load_workbook(path)
    assert wb.sheetnames == [DATA_SHEET, FIELDS_SHEET] and wb[DATA_SHEET].freeze_panes == "A2"


def test_a_centres_own_chinese_column_in_an_input_workbook_keeps_its_name(tmp_path):
    """Only a workbook tousu tagged has its headers mapped back: an input file's 渠道 column stays 渠道."""
    path = tmp_path / "input.xlsx"
    pd.DataFrame({"工单号": ["A-1"], "text": ["理赔拖了两个月"], "渠道": ["柜面"]}).to_excel(path, index=False)
    back = read_table(path)
    assert list(back.columns) == ["工单号", "text", "渠道"]


def test_the_column_guide_names_each_header_and_its_id(tagged, tmp_path):
    path = tmp_path / "tagged.xlsx"
    atomic_write(path, tagged)
    rows = list(load_workbook(path)[FIELDS_SHEET].iter_rows(values_only=True))
    assert rows[0] == ("列名", "编号（程序读取用）", "说明")
    by_header = {r[0]: r for r in rows[1:]}
    assert by_header["投诉原因编号"][1] == "pred_cause" and "主要的在前" in by_header["投诉原因编号"][2]
    assert by_header["工单号"][1:] == ("工单号", "原文件的列（原样保留）")
