"""The bad-input matrix: one table of awkward files, each with its expected outcome.

processed  - every row tagged, no error
row_error  - the listed rows carry an `error`, every other row is tagged, nothing lost
file_error - one clear CaseFileError for the whole file, nothing written
"""
import json
import random
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import pandas as pd
import pytest

from pipeline.apps.batch import tag_file
from pipeline.io import CaseFileError, read_labelled

GOOD = "客户反映理赔拖了两个月，要求尽快赔付"


def frame(texts, **extra) -> pd.DataFrame:
    df = pd.DataFrame({"id": [f"r{i}" for i in range(len(texts))], "text": texts})
    for k, v in extra.items():
        df[k] = v
    return df


def csv_file(df: pd.DataFrame, encoding="utf-8", **kw) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = d / "in.csv"
        df.to_csv(p, index=False, encoding=encoding, **kw)
        return p
    return build


def raw_file(name: str, data: bytes) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = d / name
        p.write_bytes(data)
        return p
    return build


def jsonl_lines(lines: list[str]) -> Callable[[Path], Path]:
    return raw_file("in.jsonl", ("\n".join(lines) + "\n").encode("utf-8", "surrogatepass"))


def xlsx(build_wb) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        from openpyxl import Workbook
        wb = Workbook()
        build_wb(wb)
        p = d / "in.xlsx"
        wb.save(p)
        return p
    return build


def _sheets(wb):
    ws = wb.active
    ws.append(["id", "text"]); ws.append(["r0", GOOD]); ws.append(["r1", "退保金太少"])
    other = wb.create_sheet("备注"); other.append(["x"]); other.append(["ignored"])


def _merged(wb):
    ws = wb.active
    ws.append(["id", "text", "备注", "extra"]); ws.append(["r0", GOOD, "合并", ""]); ws.append(["r1", "退保金太少", "b", "c"])
    ws.merge_cells("C2:D2")


def _dates(wb):
    import datetime
    ws = wb.active
    ws.append(["id", "text", "received"]); ws.append(["r0", GOOD, datetime.date(2026, 11, 2)]); ws.append(["r1", "退保金太少", datetime.datetime(2026, 11, 3, 9, 30)])


def parquet_file(df: pd.DataFrame) -> Callable[[Path], Path]:
    def build(d: Path) -> Path:
        p = d / "in.parquet"
        df.to_parquet(p, index=False)
        return p
    return build


def labelled_jsonl(rows: list[dict]) -> Callable[[Path], Path]:
    return jsonl_lines([json.dumps(r, ensure_ascii=False) for r in rows])


@dataclass
class Case:
    name: str
    build: Callable[[Path], Path]
    expect: str  # processed | row_error | file_error
    n_rows: int = 0
    bad: tuple[int, ...] = ()
    mode: str = "tag"  # or "labelled"
    out: str = "out.jsonl"
    message: str = ""


L = dict(cause=["contract_claims"], risk_level="low", risk_flags=[], mindset=[])
rng = random.Random(7)
garbage = "".join(chr(rng.choice([0, 1, 2, 3, 7, 8, 11, 12, 27, 127, 0xFFFD, 0x200B])) for _ in range(200))

CASES = [
    Case("empty text", csv_file(frame([GOOD, "", GOOD])), "row_error", 3, (1,)),
    Case("whitespace-only text", csv_file(frame([GOOD, "   \t  ", GOOD])), "row_error", 3, (1,)),
    Case("1 MB note", csv_file(frame(["客户要求退保，" * 150_000, GOOD])), "processed", 2),
    Case("binary garbage as text", jsonl_lines([json.dumps({"id": "r0", "text": garbage}), json.dumps({"id": "r1", "text": GOOD})]), "row_error", 2, (0,)),
    Case("only emoji", csv_file(frame(["😡😡😡🙏", GOOD])), "row_error", 2, (0,)),
    Case("only English", csv_file(frame(["I want my money back, the agent lied to me", GOOD])), "processed", 2),
    Case("HTML", csv_file(frame(["<p>客户<b>要求</b>退保</p><script>alert(1)</script>", GOOD])), "processed", 2),
    Case("Excel formula into xlsx", csv_file(frame(["=cmd|' /C calc'!A0", GOOD], 备注=["=1+1", "@SUM(A1)"])), "processed", 2, out="out.xlsx"),
    Case("control characters", csv_file(frame(["客户\x07要求\x1b退保\x0c", GOOD])), "processed", 2),
    Case("lone surrogate", jsonl_lines(['{"id": "r0", "text": "客户要求退保\\ud800"}', json.dumps({"id": "r1", "text": GOOD})]), "processed", 2),
    Case("lone surrogate to CSV", jsonl_lines(['{"id": "r0", "text": "客户要求退保\\udc00"}']), "processed", 1, out="out.csv"),
    Case("GBK CSV", csv_file(frame([GOOD, "退保金太少"]), encoding="gbk"), "processed", 2),
    Case("GB18030 CSV with a rare character", csv_file(frame(["𠮷先生要求退保", GOOD]), encoding="gb18030"), "processed", 2),
    Case("UTF-16 CSV", csv_file(frame([GOOD, "退保金太少"]), encoding="utf-16"), "processed", 2),
    Case("UTF-8 with BOM CSV", csv_file(frame([GOOD, "退保金太少"]), encoding="utf-8-sig"), "processed", 2),
    Case("embedded newlines", csv_file(frame(["客户：我要退保\n坐席：好的\n客户：快点", GOOD])), "processed", 2),
    Case("quotes inside", csv_file(frame(['客户说"业务员骗我"，要求退保', GOOD])), "processed", 2),
    Case("pipe inside the text", csv_file(frame(["理赔|退保|都不满意", GOOD])), "processed", 2, out="out.csv"),
    Case("ragged row", raw_file("in.csv", f"id,text\nr0,{GOOD}\nr1,{GOOD},extra,more\nr2,{GOOD}\n".encode()), "row_error", 3, (1,)),
    Case("short row", raw_file("in.csv", f"id,text,branch\nr0,{GOOD},北京\nr1,{GOOD}\n".encode()), "processed", 2),
    Case("100k-column row", raw_file("in.csv", (f"id,text\nr0,{GOOD}\nr1,{GOOD}," + ",".join(["x"] * 100_000) + "\n").encode()), "row_error", 2, (1,)),
    Case("CRLF line ends", raw_file("in.csv", f"id,text\r\nr0,{GOOD}\r\nr1,退保金太少\r\n".encode()), "processed", 2),
    Case("TSV", raw_file("in.tsv", f"id\ttext\nr0\t{GOOD}\nr1\t退保金太少\n".encode()), "processed", 2),
    Case("missing text column", csv_file(pd.DataFrame({"id": ["r0"], "内容": [GOOD]})), "file_error", message="no text column"),
    Case("empty file", raw_file("in.csv", b""), "file_error", message="empty"),
    Case("header only (a quiet day's export)", raw_file("in.csv", b"id,text\n"), "processed", 0, out="out.csv"),
    Case("header only, xlsx", xlsx(lambda wb: wb.active.append(["id", "text"])), "processed", 0, out="out.xlsx"),
    Case("header only, missing text column", raw_file("in.csv", "id,内容\n".encode()), "file_error", message="no text column"),
    Case("empty sheet", xlsx(lambda wb: None), "file_error", message="sheet is empty"),
    Case("undecodable bytes", raw_file("in.csv", b"id,text\nr0,\xff\xfe\xfa\xfb\x80\x81\n"), "file_error", message="encoding|readable"),
    Case("duplicate ids", csv_file(pd.DataFrame({"id": ["a", "a"], "text": [GOOD, "退保金太少"]})), "processed", 2),
    Case("xlsx with several sheets", xlsx(_sheets), "processed", 2),
    Case("xlsx with merged cells", xlsx(_merged), "processed", 2),
    Case("xlsx with dates", xlsx(_dates), "processed", 2),
    Case("corrupt xlsx", raw_file("in.xlsx", b"PK\x03\x04 not really a workbook"), "file_error", message="xlsx"),
    Case("old .xls", raw_file("in.xls", b"\xd0\xcf\x11\xe0"), "file_error", message=".xls"),
    Case("unknown extension", raw_file("in.doc", b"hello"), "file_error", message="unknown file type"),
    Case("JSONL with a broken line in the middle", jsonl_lines([json.dumps({"id": "r0", "text": GOOD}), '{"id": "r1", "text": "坏', json.dumps({"id": "r2", "text": GOOD})]), "row_error", 3, (1,)),
    Case("JSONL with an array line", jsonl_lines([json.dumps({"id": "r0", "text": GOOD}), "[1, 2]"]), "row_error", 2, (1,)),
    Case("JSONL with null text", jsonl_lines([json.dumps({"id": "r0", "text": None}), json.dumps({"id": "r1", "text": GOOD})]), "row_error", 2, (0,)),
    Case("JSONL row without a text key", jsonl_lines([json.dumps({"id": "r0"}), json.dumps({"id": "r1", "text": GOOD})]), "row_error", 2, (0,)),
    Case("JSONL numeric text", jsonl_lines([json.dumps({"id": "r0", "text": 12378}), json.dumps({"id": "r1", "text": GOOD})]), "processed", 2),
    Case("Parquet input", parquet_file(frame([GOOD, "退保金太少"], 金额=[1.5, None])), "processed", 2, out="out.parquet"),
    Case("corrupt Parquet", raw_file("in.parquet", b"PAR1 nonsense"), "file_error", message="Parquet"),
    Case("traditional and mixed script", csv_file(frame(["客戶要求退保，現金價值太低", "理赔拖延 claim delayed 三个月"])), "processed", 2),
    Case("ASR text without punctuation", csv_file(frame(["客户 喂 我那个 理赔 " * 500, GOOD])), "processed", 2),
    Case("labelled file with unknown ids", labelled_jsonl([dict(L, id="a", text=GOOD, cause=["contract_claimz"])]), "file_error", mode="labelled", message="unknown id"),
    Case("labelled file with wrong cardinality", labelled_jsonl([dict(L, id="a", text=GOOD, mindset=["remedy", "respect", "venting"])]), "file_error", mode="labelled", message="0 to 2 allowed"),
    Case("labelled file with | inside text", labelled_jsonl([dict(L, id="a", text="理赔|退保")]), "processed", 1, mode="labelled"),
    Case("labelled CSV with duplicate ids", csv_file(pd.DataFrame([dict(id="a", text=GOOD, cause="other", risk_level="low", risk_flags="", mindset="")] * 2)), "file_error", mode="labelled", message="duplicate id"),
]


def test_the_matrix_is_big_enough():
    assert len(CASES) >= 40
    assert {c.expect for c in CASES} == {"processed", "row_error", "file_error"}


def _read_out(path: Path) -> pd.DataFrame:
    if path.suffix == ".jsonl":
        return pd.read_json(path, lines=True, dtype=False)
    if path.suffix == ".csv":
        return pd.read_csv(path, dtype=str, keep_default_na=False, encoding="utf-8-sig")
    if path.suffix == ".xlsx":
        from pipeline.io import ids_from_headers  # the workbook's Chinese headers, as machines read them

        return ids_from_headers(pd.read_excel(path, dtype=str).fillna(""))
    return pd.read_parquet(path)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_bad_input(case: Case, tmp_path, small_model):
    src = case.build(tmp_path)
    if case.mode == "labelled":
        if case.expect == "file_error":
            with pytest.raises(CaseFileError, match=case.message):
                read_labelled(src)
        else:
            assert len(read_labelled(src)) == case.n_rows
        return
    out = tmp_path / case.out
    if case.expect == "file_error":
        with pytest.raises(CaseFileError, match=case.message):
            tag_file(small_model, None, str(src), str(out))
        assert not out.exists()
        return
    summary = tag_file(small_model, None, str(src), str(out))
    got = _read_out(out)
    assert len(got) == case.n_rows == summary.rows  # nothing lost, nothing doubled
    errors = [str(e) if e is not None else "" for e in got["error"]]
    assert [i for i, e in enumerate(errors) if e] == list(case.bad)
    for i, e in enumerate(errors):
        if not e:
            assert got["pred_risk_level"].iloc[i] in ("low", "medium", "high")
            cause = got["pred_cause"].iloc[i]
            assert len(cause) > 0
    if case.out == "out.xlsx":
        from openpyxl import load_workbook
        cells = [c.value for row in load_workbook(out).active.iter_rows() for c in row]
        assert not any(isinstance(v, str) and v[:1] in "=@" for v in cells)
    assert not list(tmp_path.glob(".*.tmp*")) and not list(tmp_path.glob(".*.parts"))


def test_personal_numbers_are_masked_in_the_output_unless_kept(tmp_path, small_model):
    note = "客户电话13812345678，身份证110101199003071234，银行卡6222021234567890123，邮箱 wang@example.com，要求退保"
    src = csv_file(frame([note]))(tmp_path)
    tag_file(small_model, None, str(src), str(tmp_path / "masked.jsonl"))
    masked = json.loads((tmp_path / "masked.jsonl").read_text(encoding="utf-8"))["text"]
    for secret in ("13812345678", "110101199003071234", "6222021234567890123", "wang@example.com"):
        assert secret not in masked
    assert "要求退保" in masked
    tag_file(small_model, None, str(src), str(tmp_path / "kept.jsonl"), keep_pii=True)
    assert json.loads((tmp_path / "kept.jsonl").read_text(encoding="utf-8"))["text"] == note
