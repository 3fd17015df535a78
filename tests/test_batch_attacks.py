"""Issue 17, items 8-13: the attacks on `tousu tag` and its work folder, each named for what it tried.

8 a planted pickle in `.OUT.parts/` must not run; 9 a resume of another run is refused; 10 an
output that is the input is refused; 11 a full disk or an unwritable folder is exit 7 with
nothing left behind; 12 a header without rows is a file of 0 rows; 13 a received date out of
range is a row's error, not the run's.
"""
import errno
import json
import os
import pickle
from pathlib import Path

import pandas as pd
import pytest
from click.testing import CliRunner

import cli
from pipeline.io import ids_from_headers
from pipeline.apps import batch
from pipeline.model.registry import save_model

TEXTS = ["客户反映理赔拖了两个月，要求尽快赔付", "退保金太少，业务员当初没说清楚", "第三次打电话了，再不处理就找电视台曝光"]


def run(*args):
    return CliRunner().invoke(cli.main, [str(a) for a in args])


def _rows(n: int) -> list[dict]:
    return [{"id": f"r{i}", "text": f"{TEXTS[i % 3]}（第{i}位）", "渠道": "热线",
             "tags": ["a", "b|c"] if i % 2 else []} for i in range(n)]


def _jsonl(path: Path, rows: list[dict]) -> Path:
    path.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return path


def _killed_after(monkeypatch, chunks: int, *args) -> None:
    """Run `tag` and die (as if killed) once `chunks` chunk files are written."""
    real = batch._write_chunk
    calls = {"n": 0}

    def dying(work, number, frame):
        calls["n"] += 1
        if calls["n"] > chunks:
            raise SystemExit(137)
        real(work, number, frame)

    monkeypatch.setattr(batch, "_write_chunk", dying)
    assert run("tag", *args).exit_code == 137
    monkeypatch.setattr(batch, "_write_chunk", real)


def _leftovers(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.iterdir() if p.name.startswith("."))


# ------------------------------------------------------------------ 8: chunks cannot run code

@pytest.mark.parametrize("suffix", [".jsonl", ".csv", ".parquet", ".xlsx"])
def test_resumed_output_equals_an_uninterrupted_run_byte_for_byte(registry, tmp_path, monkeypatch, suffix):
    src = _jsonl(tmp_path / "in.jsonl", _rows(57))
    whole, part = tmp_path / f"whole{suffix}", tmp_path / f"part{suffix}"
    assert run("tag", src, "-o", whole, "--chunk-size", "10", "-q").exit_code == 0
    _killed_after(monkeypatch, 3, src, "-o", part, "--chunk-size", "10", "-q")
    work = tmp_path / f".{part.name}.parts"
    kinds = {p.suffix for p in work.iterdir() if p.name != "manifest.json"}
    assert kinds == {".jsonl" if suffix == ".xlsx" else suffix}  # data in the output's own format, no pickles
    assert run("tag", src, "-o", part, "--chunk-size", "10", "--resume", "-q").exit_code == 0
    if suffix == ".xlsx":  # a workbook stamps its own creation time: compare the cells
        assert pd.read_excel(whole, dtype=str).equals(pd.read_excel(part, dtype=str))
    else:
        assert whole.read_bytes() == part.read_bytes()
    if suffix == ".jsonl":  # lists round-trip as lists, a '|' inside a value stays inside
        assert json.loads(part.read_text(encoding="utf-8").splitlines()[1])["tags"] == ["a", "b|c"]
    assert not work.exists()


def test_a_parquet_column_empty_in_the_first_chunk_and_text_later_joins_into_one_file(registry, tmp_path):
    """Arrow types an all-empty column as null; a later chunk's text in it must not break the join."""
    rows = _rows(25)
    for i, r in enumerate(rows):
        r["备注"] = None if i < 10 else f"第{i}条备注"
    src = _jsonl(tmp_path / "in.jsonl", rows)
    out = tmp_path / "out.parquet"
    result = run("tag", src, "-o", out, "--chunk-size", "10", "-q")
    assert result.exit_code == 0, result.output
    tagged = pd.read_parquet(out)
    assert list(tagged["id"]) == [r["id"] for r in rows]
    assert tagged["备注"].isna().sum() == 10 and tagged["备注"].iloc[24] == "第24条备注"


class _Planted:
    def __reduce__(self):
        return (Path.touch, (Path(os.environ["PLANTED_MARKER"]),))


def test_a_planted_pickle_in_the_work_folder_never_runs(registry, tmp_path, monkeypatch):
    marker = tmp_path / "pwned"
    monkeypatch.setenv("PLANTED_MARKER", str(marker))
    src = _jsonl(tmp_path / "in.jsonl", _rows(30))
    out = tmp_path / "out.jsonl"
    _killed_after(monkeypatch, 1, src, "-o", out, "--chunk-size", "10", "-q")
    work = tmp_path / ".out.jsonl.parts"
    (work / "chunk-00000002-10.pkl").write_bytes(pickle.dumps(_Planted()))  # what an old version would unpickle
    result = run("tag", src, "-o", out, "--chunk-size", "10", "--resume", "-q")
    assert result.exit_code == 2 and "did not write (chunk-00000002-10.pkl)" in result.output
    assert not marker.exists() and not out.exists()
    # an old work folder of pickles, without a manifest: refused as well, never opened
    (work / "manifest.json").unlink()
    result = run("tag", src, "-o", out, "--chunk-size", "10", "--resume", "-q")
    assert result.exit_code == 2 and "no run manifest" in result.output and not marker.exists()
    # started afresh, the folder is replaced and the run is clean
    assert run("tag", src, "-o", out, "--chunk-size", "10", "-q").exit_code == 0 and not marker.exists()


def test_a_gap_in_the_chunks_is_refused_not_papered_over(registry, tmp_path, monkeypatch):
    src = _jsonl(tmp_path / "in.jsonl", _rows(40))
    out = tmp_path / "out.jsonl"
    _killed_after(monkeypatch, 3, src, "-o", out, "--chunk-size", "10", "-q")
    work = tmp_path / ".out.jsonl.parts"
    next(work.glob("chunk-00000002-*")).unlink()
    result = run("tag", src, "-o", out, "--chunk-size", "10", "--resume", "-q")
    assert result.exit_code == 2 and "chunk 2 is missing" in result.output


# ------------------------------------------------------------------ 9: resume checks what it resumes

def test_resume_of_another_input_options_or_model_is_refused_naming_the_difference(registry, tmp_path, monkeypatch,
                                                                                     small_model, small_corpus):
    src = _jsonl(tmp_path / "in.jsonl", _rows(50))
    out = tmp_path / "out.jsonl"
    args = (src, "-o", out, "--chunk-size", "10", "-q")
    _killed_after(monkeypatch, 2, *args)
    work = tmp_path / ".out.jsonl.parts"
    manifest = json.loads((work / "manifest.json").read_text(encoding="utf-8"))
    assert set(manifest["input"]) >= {"size", "mtime_ns", "head_tail_sha256"}
    assert manifest["options"]["plan"] == "summary" and manifest["model_version"] == "v-small"

    refused = run("tag", *args, "--resume", "--plan", "full")
    assert refused.exit_code == 2 and "--plan ('summary' -> 'full')" in refused.output
    refused = run("tag", *args, "--resume", "--text-column", "渠道")
    assert refused.exit_code == 2 and "--text-column ('text' -> '渠道')" in refused.output

    save_model(small_model, small_corpus[0], {"heldout": {}}, root=registry, version="v-two")
    refused = run("tag", *args, "--resume", "--model", registry / "v-two")
    assert refused.exit_code == 2 and "the model (v-small -> v-two)" in refused.output

    original = src.read_bytes()
    _jsonl(src, _rows(70))  # another day's export under the same name
    refused = run("tag", *args, "--resume")
    assert refused.exit_code == 2 and "the input's size" in refused.output and "run without --resume" in refused.output
    edited = original.replace("第1位".encode(), "第9位".encode())  # same size, one row edited
    src.write_bytes(edited)
    refused = run("tag", *args, "--resume")
    assert refused.exit_code == 2 and "the input's content" in refused.output

    src.write_bytes(original)
    os.utime(src, ns=(manifest["input"]["mtime_ns"], manifest["input"]["mtime_ns"]))
    assert len(list(work.glob("chunk-*"))) == 2  # nothing was thrown away by the refusals
    assert run("tag", *args, "--resume").exit_code == 0
    whole = tmp_path / "whole.jsonl"
    assert run("tag", src, "-o", whole, "-q").exit_code == 0
    assert whole.read_bytes() == out.read_bytes()


def test_resume_from_stdin_is_refused(registry, tmp_path):
    result = CliRunner().invoke(cli.main, ["tag", "-", "-o", str(tmp_path / "o.jsonl"), "--resume"],
                                input=json.dumps({"text": TEXTS[0]}) + "\n")
    assert result.exit_code == 2 and "standard input" in result.output


# ------------------------------------------------------------------ 10: output = input

def test_an_output_that_is_the_input_is_refused_by_any_name(registry, tmp_path, monkeypatch):
    src = tmp_path / "工单.csv"
    pd.DataFrame(_rows(3)).to_csv(src, index=False)
    original = src.read_bytes()
    (tmp_path / "sub").mkdir()
    (tmp_path / "link.csv").symlink_to(src)
    os.link(src, tmp_path / "hard.csv")
    monkeypatch.chdir(tmp_path)
    for output in ("工单.csv", str(src), "./sub/../工单.csv", "link.csv", "hard.csv"):
        result = run("tag", "工单.csv", "-o", output)
        assert result.exit_code == 2, (output, result.output)
        assert "is the input file" in result.output
    result = run("suggest", "工单.csv", "-o", "./工单.csv")
    assert result.exit_code == 2 and "is the input file" in result.output
    assert src.read_bytes() == original
    assert _leftovers(tmp_path) == []


# ------------------------------------------------------------------ 11: disk full, read-only folder

def _enospc(*args, **kwargs):
    raise OSError(errno.ENOSPC, "No space left on device")


@pytest.mark.parametrize("where", ["a chunk", "the final file"])
def test_a_full_disk_is_exit_7_in_one_sentence_and_leaves_nothing(registry, tmp_path, monkeypatch, where):
    src = _jsonl(tmp_path / "in.jsonl", _rows(30))
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    if where == "a chunk":
        # chunks are rendered in memory (in the workers); the disk is touched when a chunk file is written
        real, calls = batch._write_chunk, {"n": 0}

        def full_on_second(*args, **kwargs):
            calls["n"] += 1
            if calls["n"] == 2:
                _enospc()
            return real(*args, **kwargs)

        monkeypatch.setattr(batch, "_write_chunk", full_on_second)
    else:
        monkeypatch.setattr(batch.shutil, "copyfileobj", _enospc)
    result = run("tag", src, "-o", out_dir / "out.csv", "--chunk-size", "10")
    assert result.exit_code == 7, result.output
    assert result.output.strip() == f"tousu: cannot write {out_dir / 'out.csv'}: the disk is full; nothing was written."
    assert list(out_dir.iterdir()) == []  # no output, no temp file, no work folder holding the disk


def test_an_output_folder_that_cannot_be_made_is_exit_7(registry, tmp_path):
    src = _jsonl(tmp_path / "in.jsonl", _rows(3))
    (tmp_path / "afile").write_text("x")
    result = run("tag", src, "-o", tmp_path / "afile" / "out.jsonl")
    assert result.exit_code == 7 and "cannot write" in result.output and "not a folder" in result.output
    assert "internal error" not in result.output


@pytest.mark.skipif(os.name != "posix" or os.geteuid() == 0, reason="root writes into read-only folders")
def test_a_read_only_output_folder_is_exit_7(registry, tmp_path):
    src = _jsonl(tmp_path / "in.jsonl", _rows(3))
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o555)
    try:
        result = run("tag", src, "-o", ro / "out.jsonl")
        assert result.exit_code == 7 and "no permission to write there" in result.output
        assert list(ro.iterdir()) == []
    finally:
        ro.chmod(0o755)


def test_atomic_write_on_a_full_disk_raises_output_error_and_leaves_nothing(tmp_path, monkeypatch):
    from pipeline import io as pio

    monkeypatch.setattr(pio, "write_frame", _enospc)
    with pytest.raises(pio.OutputError, match="the disk is full"):
        pio.atomic_write(tmp_path / "x.jsonl", pd.DataFrame({"a": [1]}))
    assert list(tmp_path.iterdir()) == []


# ------------------------------------------------------------------ 12: a quiet day's export

@pytest.mark.parametrize("suffix", [".csv", ".xlsx"])
def test_a_header_without_rows_gives_a_header_without_rows_and_exit_0(registry, tmp_path, suffix):
    src = tmp_path / "quiet.csv"
    src.write_text("工单号,text,渠道\n", encoding="utf-8")
    out = tmp_path / f"out{suffix}"
    result = run("tag", src, "-o", out)
    assert result.exit_code == 0, result.output
    assert "tagged 0 rows" in result.output
    got = pd.read_csv(out, dtype=str, encoding="utf-8-sig") if suffix == ".csv" else ids_from_headers(pd.read_excel(out, dtype=str))
    assert len(got) == 0
    assert list(got.columns)[:3] == ["工单号", "text", "渠道"] and {"pred_cause", "error"} <= set(got.columns)
    assert not list(tmp_path.glob(".*.parts"))


# ------------------------------------------------------------------ 13: received dates

def test_an_out_of_range_received_date_is_a_row_error_and_the_run_goes_on(registry, tmp_path):
    days = ["9999-12-31", "0001-01-01", "下周一", "2026-11-02", ""]
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": [f"d{i}" for i in range(5)], "text": TEXTS[:2] * 2 + TEXTS[:1], "收到日期": days}).to_csv(src, index=False)
    out = tmp_path / "out.jsonl"
    result = run("tag", src, "-o", out, "--received-column", "收到日期")
    assert result.exit_code == 0, result.output
    assert "tagged 5 rows (3 with errors" in result.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert rows[0]["error"] == "received date 9999-12-31 is out of range (1990-01-01 to 2099-12-31)"
    assert rows[1]["error"].startswith("received date 0001-01-01 is out of range")
    assert rows[2]["error"] == "received date '下周一' is not a date (expected YYYY-MM-DD)"
    assert all(r["pred_cause"] is None for r in rows[:3])
    assert rows[3]["error"] == "" and rows[3]["decision_due"] > "2026-11-02"
    assert rows[4]["error"] == "" and rows[4]["decision_due"] is None  # no date: no dated deadline, no error


def test_a_received_column_that_is_not_there_is_named_like_the_text_column(registry, tmp_path):
    src = tmp_path / "in.csv"
    pd.DataFrame({"id": ["a"], "text": TEXTS[:1]}).to_csv(src, index=False)
    result = run("tag", src, "-o", tmp_path / "o.csv", "--received-column", "收到日期")
    assert result.exit_code == 3
    assert "no received-date column '收到日期' (columns: id, text); name it with --received-column." in result.output


def test_extra_columns_holding_personal_numbers_are_masked_unless_keep_pii(tmp_path, registry):
    """17.5: 客户电话, 身份证号, 手机 ... pass through masked; --keep-pii keeps them; other columns untouched."""
    import pandas as pd
    from click.testing import CliRunner

    import cli

    src = tmp_path / "in.xlsx"
    pd.DataFrame([{"id": "a1", "text": "理赔拖了两个月还没结果", "客户电话": 13812345678, "身份证号": "110101199003071234",
                   "联系方式": "手机 139 1234 5678", "备注": "客户说打13912345678找他", "机构": "朝阳支公司"}]).to_excel(src, index=False)
    out = tmp_path / "out.csv"
    res = CliRunner().invoke(cli.main, ["tag", str(src), "-o", str(out), "--quiet"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    got = pd.read_csv(out, dtype=str).iloc[0]
    assert got["客户电话"] == "138****5678"
    assert got["身份证号"].startswith("110") and "19900307" not in got["身份证号"]
    assert "1234 5678" not in got["联系方式"] and got["联系方式"].endswith("5678")
    assert "13912345678" not in got["备注"] and got["机构"] == "朝阳支公司"
    kept = tmp_path / "kept.csv"
    CliRunner().invoke(cli.main, ["tag", str(src), "-o", str(kept), "--quiet", "--keep-pii"], catch_exceptions=False)
    assert pd.read_csv(kept, dtype=str).iloc[0]["客户电话"] == "13812345678"


def test_a_channel_column_decides_the_channel_and_the_steps_that_need_it(tmp_path, registry):
    """Issue 15.4: 柜面 in the channel column puts the counter's private room in the plan; 电话 does not."""
    import json

    import pandas as pd
    from click.testing import CliRunner

    import cli

    note = "客户情绪非常激动，大声说你们理赔拖了三个月，气死我了"
    src = tmp_path / "in.csv"
    pd.DataFrame([{"id": "c", "text": note, "渠道": "柜面"}, {"id": "p", "text": note, "渠道": "电话"},
                  {"id": "u", "text": note, "渠道": ""}]).to_csv(src, index=False)
    out = tmp_path / "out.jsonl"
    res = CliRunner().invoke(cli.main, ["tag", str(src), "-o", str(out), "--quiet", "--plan", "full",
                                        "--channel-column", "渠道"], catch_exceptions=False)
    assert res.exit_code == 0, res.output
    rows = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["channel"] for r in rows] == ["counter", "phone", "unknown"]
    room = "在柜面时请客户到接待室或其他独立空间单独沟通，离开围观人群。"
    if "anger" in rows[0]["pred_risk_flags"]:
        assert room in rows[0]["plan_step_texts"] and room not in rows[1]["plan_step_texts"]
    missing = CliRunner().invoke(cli.main, ["tag", str(src), "-o", str(tmp_path / "x.csv"), "--quiet",
                                            "--channel-column", "渠道名"], catch_exceptions=False)
    assert missing.exit_code == 3 and "渠道名" in missing.output


# ------------------------------------------------------------------ a worker that dies

def test_a_worker_that_dies_mid_run_stops_the_run_with_one_sentence_and_resume_finishes_it(registry, tmp_path,
                                                                                            monkeypatch):
    """A killed worker (out of memory) must not leave `tag` waiting for ever: the run stops, says what
    happened, keeps the finished chunks, and --resume completes the same file."""
    src = _jsonl(tmp_path / "in.jsonl", _rows(60))
    out = tmp_path / "out.jsonl"
    args = (src, "-o", out, "--chunk-size", "10", "--jobs", "2", "-q")
    real = batch._tag_chunk

    def dies_on_the_fourth(model, chunk, first_row, *rest):
        if first_row == 30:
            os._exit(9)  # in the worker: gone without a word, as the kernel's OOM killer leaves it
        return real(model, chunk, first_row, *rest)

    monkeypatch.setattr(batch, "_tag_chunk", dies_on_the_fourth)
    stopped = run("tag", *args)
    assert stopped.exit_code == 1 and "worker process died" in stopped.output and "--resume" in stopped.output
    monkeypatch.setattr(batch, "_tag_chunk", real)
    assert run("tag", *args, "--resume").exit_code == 0
    whole = tmp_path / "whole.jsonl"
    assert run("tag", src, "-o", whole, "-q").exit_code == 0
    assert whole.read_bytes() == out.read_bytes()
