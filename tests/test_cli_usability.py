"""Issue 20, items 2-4: what a new user met on the command line.

2 every command that reads a file names a missing column the same way (exit 3), and every
`suggest` option has help; 3 the progress bar counts rows, not lines; 4 an unknown label id
gets the closest valid ones, wherever it was typed.
"""
import json

import click
import pandas as pd
import pytest
from click.testing import CliRunner

import cli
from pipeline.apps.batch import tag_file
from pipeline.contract.ids import closest_ids
from pipeline.contract.taxonomy import taxonomy
from pipeline.io import LabelFileError, count_rows, read_labelled

NOTE = "客户反映理赔拖了两个月，要求尽快赔付"


def run(*args, code=None, **kw):
    result = CliRunner().invoke(cli.main, [str(a) for a in args], **kw)
    if code is not None:
        assert result.exit_code == code, result.output
    return result


# ------------------------------------------------------------------ 2: one column check, help everywhere

def test_suggest_without_text_column_names_the_columns_like_tag(registry, tmp_path):
    backlog = tmp_path / "backlog.xlsx"
    pd.DataFrame({"工单号": ["A-1", "A-2"], "投诉内容": [NOTE, "退保金太少"]}).to_excel(backlog, index=False)
    suggested = run("suggest", backlog, "-n", 20, "-o", tmp_path / "s.jsonl", code=3).output
    tagged = run("tag", backlog, "-o", tmp_path / "t.jsonl", code=3).output
    expected = f"tousu: {backlog}: no text column 'text' (columns: 工单号, 投诉内容); name it with --text-column.\n"
    assert suggested == tagged == expected
    assert "internal error" not in suggested
    run("suggest", backlog, "-n", 20, "-o", tmp_path / "s.jsonl", "--text-column", "投诉内容", "--id-column", "工单号",
        code=0)
    assert [json.loads(line)["id"] for line in (tmp_path / "s.jsonl").read_text(encoding="utf-8").splitlines()] \
        in (["A-1", "A-2"], ["A-2", "A-1"])


@pytest.mark.parametrize("command", ["suggest", "tag"])
def test_every_option_has_help_text(command):
    cmd = cli.main.commands[command]
    missing = [p.name for p in cmd.params if isinstance(p, click.Option) and not p.help]
    assert missing == []
    shown = run(command, "--help", code=0).output
    for p in cmd.params:
        if isinstance(p, click.Option):
            assert p.help.split()[0] in shown


# ------------------------------------------------------------------ 3: rows, not lines

def test_the_progress_bar_ends_at_n_of_n_rows_when_notes_span_lines(tmp_path, small_model, capsys):
    src = tmp_path / "multi.csv"
    notes = [f"客户：第{i}次来电\n坐席：好的，请讲\n客户：{NOTE}" for i in range(25)]
    pd.DataFrame({"id": range(25), "text": notes}).to_csv(src, index=False)
    with open(src, "a", encoding="utf-8") as fh:
        fh.write("\n\n")  # blank lines at the end are not rows
    assert src.read_bytes().count(b"\n") > 70  # a line count would say 78
    assert count_rows(src) == 25
    tag_file(small_model, None, str(src), str(tmp_path / "out.csv"), chunksize=10, progress=True)
    line = capsys.readouterr().err.rstrip().split("\r")[-1]
    assert line.strip().startswith("25/25 rows"), line


def test_row_counts_of_every_format(tmp_path):
    jl = tmp_path / "a.jsonl"
    jl.write_text(json.dumps({"text": "a\nb"}) + "\n\n" + json.dumps({"text": "c"}) + "\n{broken\n", encoding="utf-8")
    assert count_rows(jl) == 3  # a broken line is a row (with its error)
    pq = tmp_path / "a.parquet"
    pd.DataFrame({"text": ["x"] * 7}).to_parquet(pq)
    assert count_rows(pq) == 7
    gbk = tmp_path / "g.csv"
    pd.DataFrame({"text": ["理赔\n太慢", "退保"]}).to_csv(gbk, index=False, encoding="gbk")
    assert count_rows(gbk) == 2
    assert count_rows("-") is None and count_rows(tmp_path / "nope.csv") is None


# ------------------------------------------------------------------ 4: unknown ids get help

def test_the_closest_ids_for_typos_parts_and_chinese_names():
    tax = taxonomy()
    names = {i: tax.name(i) for i in tax.flag_ids + tax.cause_ids}
    assert closest_ids("angry", tax.flag_ids) == ["anger"]
    assert closest_ids("Media_Threat", tax.flag_ids) == ["media_threat"]
    assert closest_ids(tax.name("anger"), tax.flag_ids, names) == ["anger"]
    assert closest_ids("claims", tax.cause_ids) == ["contract_claims"]
    assert closest_ids("zzz", tax.flag_ids) == []


def test_cases_correct_with_an_unknown_flag_suggests_the_valid_one(registry, tmp_path, monkeypatch):
    monkeypatch.setenv("TOUSU_DATABASE_URL", f"sqlite:///{tmp_path / 'cases.db'}")
    run("score", "--store", "--id", "C-1", "理赔拖了两个月", code=0)
    out = run("cases", "correct", "C-1", "--flags", "angry", "--author", "王丽", code=6).output
    assert "unknown id 'angry'; did you mean 'anger'?" in out
    assert "(valid ids: media_threat, regulator_threat, " in out


def test_label_files_and_retrain_input_suggest_the_valid_ids(registry, tmp_path):
    bad = tmp_path / "new.jsonl"
    rec = {"id": "n1", "text": NOTE, "cause": ["contract_claimz"], "risk_level": "medium", "risk_flags": ["angry"],
           "mindset": ["revenj"]}
    bad.write_text(json.dumps(rec, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(LabelFileError) as err:
        read_labelled(bad)
    msg = str(err.value)
    assert "field 'cause': unknown id 'contract_claimz'; did you mean 'contract_claims'?" in msg
    assert "field 'risk_flags': unknown id 'angry'; did you mean 'anger'?" in msg
    assert "field 'mindset': unknown id 'revenj'; did you mean 'revenge'?" in msg
    out = run("retrain", "--new", bad, code=3).output
    assert "did you mean 'anger'?" in out and "valid ids: venting, respect" in out


def test_a_reader_that_stops_early_ends_the_command_quietly(registry):
    """`tousu score ... | head -3`: the pipe closes, tousu stops with the shell's SIGPIPE code, no 'internal error'."""
    import subprocess
    import sys
    from pathlib import Path

    root = Path(cli.__file__).resolve().parent
    proc = subprocess.Popen([sys.executable, str(root / "cli.py"), "score", "客户称再不退保就去找电视台曝光"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, cwd=root)
    proc.stdout.close()  # the reader is gone before the first line is written
    err = proc.stderr.read().decode()
    proc.stderr.close()
    assert proc.wait(timeout=60) == cli.EXIT_BROKEN_PIPE == 141
    assert "internal error" not in err and "Traceback" not in err, err
