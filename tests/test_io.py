"""Loading labelled cases: every encoding Chinese exports use, and every bad file named precisely."""
import json

import pandas as pd
import pytest

from pipeline.io import CaseFileError, LabelFileError, atomic_write, read_labelled, read_table

GOOD = [
    {"id": "a1", "text": "客户要求退保，嫌现金价值低", "cause": "contract_surrender", "risk_level": "low", "risk_flags": "", "mindset": "remedy", "网点": "北京"},
    {"id": "a2", "text": "再不赔我就找记者曝光！", "cause": "contract_claims|company_credibility", "risk_level": "medium", "risk_flags": "media_threat", "mindset": "remedy|revenge", "网点": "上海"},
]


def _csv(path, rows, encoding="utf-8"):
    pd.DataFrame(rows).to_csv(path, index=False, encoding=encoding)
    return path


@pytest.mark.parametrize("encoding", ["utf-8", "utf-8-sig", "gbk", "gb18030"])
def test_csv_in_every_chinese_export_encoding_loads(tmp_path, encoding):
    df = read_labelled(_csv(tmp_path / "cases.csv", GOOD, encoding))
    assert list(df["id"]) == ["a1", "a2"]
    assert df.loc[1, "cause"] == ["contract_claims", "company_credibility"]
    assert df.loc[0, "risk_flags"] == []
    assert list(df["网点"]) == ["北京", "上海"]  # extra columns pass through


def test_jsonl_with_arrays_and_xlsx_load_the_same(tmp_path):
    rows = [dict(r, cause=r["cause"].split("|"), risk_flags=[x for x in r["risk_flags"].split("|") if x],
                 mindset=r["mindset"].split("|")) for r in GOOD]
    p = tmp_path / "cases.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    x = tmp_path / "cases.xlsx"
    pd.DataFrame(GOOD).to_excel(x, index=False)
    a, b = read_labelled(p), read_labelled(x)
    assert a[["id", "cause", "risk_flags", "mindset"]].equals(b[["id", "cause", "risk_flags", "mindset"]])


def test_every_problem_is_listed_with_its_row_and_field(tmp_path):
    rows = GOOD + [
        {"id": "a3", "text": "x", "cause": "contract_unknown", "risk_level": "low", "risk_flags": "", "mindset": ""},
        {"id": "a4", "text": "y", "cause": "a_b|c_d|e_f|g_h".replace("a_b", "contract_claims").replace("c_d", "contract_surrender").replace("e_f", "other").replace("g_h", "staff_attitude"), "risk_level": "low", "risk_flags": "", "mindset": ""},
        {"id": "", "text": "z", "cause": "other", "risk_level": "low", "risk_flags": "", "mindset": ""},
        {"id": "a1", "text": "", "cause": "other", "risk_level": "urgent", "risk_flags": "anger", "mindset": "remedy|venting|respect"},
    ]
    path = _csv(tmp_path / "bad.csv", rows)
    with pytest.raises(LabelFileError) as err:
        read_labelled(path)
    msg = str(err.value)
    assert "bad.csv" in msg
    assert "row 4, field 'cause': unknown id 'contract_unknown'; did you mean 'contract_underwriting'" in msg
    assert "(valid ids: sales_misrepresentation, " in msg
    assert "row 5, field 'cause': 4 ids given, 1 to 3 allowed" in msg
    assert "row 6, field 'id': missing" in msg
    assert "row 7, field 'id': duplicate id 'a1' (first at row 2)" in msg
    assert "row 7, field 'text': missing or empty" in msg
    assert "row 7, field 'risk_level'" in msg
    assert "row 7, field 'mindset': 3 ids given" in msg
    assert len(err.value.problems) == 7


def test_jsonl_problems_name_the_line(tmp_path):
    p = tmp_path / "bad.jsonl"
    p.write_text(json.dumps({"id": "1", "text": "t", "cause": ["other"], "risk_level": "low", "risk_flags": [], "mindset": []}) + "\n{broken\n",
                 encoding="utf-8")
    with pytest.raises(LabelFileError, match=r"line 2.*not valid JSON"):
        read_labelled(p)


def test_missing_required_column_is_named(tmp_path):
    p = _csv(tmp_path / "nolabels.csv", [{"id": "1", "text": "t"}])
    with pytest.raises(LabelFileError, match=r"field 'cause': required column is missing \(columns: id, text\)"):
        read_labelled(p)


@pytest.mark.parametrize("content, message", [
    (b"", "empty"),
    (b"\xff\xfe\x00\x00garbage\x00\xd8", "encoding|readable|rows|broken"),
])
def test_unreadable_files_give_one_clear_error(tmp_path, content, message):
    p = tmp_path / "f.csv"
    p.write_bytes(content)
    with pytest.raises(CaseFileError, match=message):
        read_table(p)


def test_a_header_without_rows_reads_as_zero_rows_but_is_no_label_file(tmp_path):
    p = tmp_path / "quiet_day.csv"
    p.write_bytes("id,text,渠道\n\n".encode())
    df = read_table(p)
    assert len(df) == 0 and list(df.columns) == ["id", "text", "渠道"]
    with pytest.raises(CaseFileError, match="no labelled rows"):
        read_labelled(p)


def test_missing_file_and_unknown_type(tmp_path):
    with pytest.raises(CaseFileError, match="no such file"):
        read_table(tmp_path / "nope.csv")
    (tmp_path / "a.doc").write_text("x")
    with pytest.raises(CaseFileError, match="unknown file type"):
        read_table(tmp_path / "a.doc")


def test_atomic_write_leaves_no_temp_files_and_round_trips(tmp_path):
    df = pd.DataFrame({"id": ["1"], "pred_cause": [["contract_claims", "other"]]})
    for name in ("o.csv", "o.jsonl", "o.xlsx", "o.parquet"):
        atomic_write(tmp_path / name, df)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["o.csv", "o.jsonl", "o.parquet", "o.xlsx"]
    assert pd.read_csv(tmp_path / "o.csv")["pred_cause"][0] == "contract_claims|other"
    assert json.loads((tmp_path / "o.jsonl").read_text(encoding="utf-8"))["pred_cause"] == ["contract_claims", "other"]


def test_jsonl_lines_hold_the_values_the_json_module_writes_and_are_always_valid_json():
    """orjson writes the rows (issue 19); what it refuses (a lone surrogate, an integer past 64 bits, a
    dict keyed by numbers) falls back to the json module, and a NaN deep in a passed-through cell is
    null, which strict JSON readers accept, instead of the json module's NaN."""
    import datetime as dt
    from io import StringIO
    import json

    import numpy as np
    import pandas as pd

    from pipeline import io as tousu_io

    df = pd.DataFrame({"id": ["a", "b", "c"], "text": ["正常\n文本", "坏\ud800字", "x"],
                       "big": [1, 2 ** 70, 3], "cell": [{"k": 1}, {1: 2}, {"z": [1.5, float("nan")]}],
                       "when": [pd.Timestamp("2024-05-08"), None, dt.date(2024, 1, 2)],
                       "flag": [np.bool_(True), False, True], "arr": [np.array([1, 2]), [3], []]})
    lines = tousu_io.jsonl_bytes(df).decode("utf-8").splitlines()
    assert len(lines) == 3
    records = [json.loads(line, parse_constant=lambda c: pytest.fail(f"{c} is not JSON")) for line in lines]
    assert records[0] == {"id": "a", "text": "正常\n文本", "big": 1, "cell": {"k": 1}, "when": "2024-05-08T00:00:00",
                          "flag": True, "arr": [1, 2]}
    assert records[1]["text"] == "坏\ud800字" and records[1]["big"] == 2 ** 70 and records[1]["cell"] == {"1": 2}
    assert records[2]["cell"] == {"z": [1.5, None]} and records[2]["when"] == "2024-01-02"
    buf = StringIO()
    tousu_io.dataframe_to_jsonl(df, buf)
    assert buf.getvalue().encode("utf-8") == tousu_io.jsonl_bytes(df)
