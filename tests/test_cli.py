"""The three jobs through the real commands: tag, score, retrain (and models, suggest)."""
import json
import subprocess
import sys

import pandas as pd
import pytest
from click.testing import CliRunner

import cli
from pipeline.io import ids_from_headers
from pipeline.apps import batch
from pipeline.io import read_labelled
from pipeline.model.registry import promote

ROWS = [
    {"id": "t1", "text": "客户要求退保，嫌现金价值太低，说业务员当初没讲退保有损失", "渠道": "热线", "金额": "45000"},
    {"id": "t2", "text": "", "渠道": "柜面", "金额": ""},
    {"id": "t3", "text": "第三次打电话催理赔了，再不赔我就去找电视台曝光！", "渠道": "网络", "金额": "2万"},
    {"id": "t4", "text": "請問猶豫期是多少天？", "渠道": "微信", "金额": ""},
]


@pytest.fixture
def registry(tmp_path, monkeypatch, signed_copy):
    root = tmp_path / "models"
    monkeypatch.setenv("TOUSU_MODELS_DIR", str(root))
    path = signed_copy(root, "v-small", {"heldout": {}})
    promote(path.name, root)
    return root


def run(*args):
    return CliRunner().invoke(cli.main, list(args), catch_exceptions=False)


@pytest.mark.parametrize("suffix, encoding", [(".csv", "utf-8"), (".csv", "utf-8-sig"), (".csv", "gbk"), (".jsonl", None), (".xlsx", None)])
def test_tag_keeps_every_row_in_order_with_extra_columns(registry, tmp_path, suffix, encoding):
    src = tmp_path / f"in{suffix}"
    df = pd.DataFrame(ROWS)
    if suffix == ".csv":
        df.to_csv(src, index=False, encoding=encoding)
    elif suffix == ".jsonl":
        df.to_json(src, orient="records", lines=True, force_ascii=False)
    else:
        df.to_excel(src, index=False)
    out = tmp_path / f"out{suffix}"
    result = run("tag", str(src), "-o", str(out), "--quiet")
    assert result.exit_code == 0, result.output
    got = pd.read_json(out, lines=True, dtype=False) if suffix == ".jsonl" else (
        ids_from_headers(pd.read_excel(out, dtype=str)) if suffix == ".xlsx" else pd.read_csv(out, dtype=str, keep_default_na=False))
    assert list(got["id"]) == ["t1", "t2", "t3", "t4"]
    assert list(got["渠道"]) == ["热线", "柜面", "网络", "微信"]
    for col in ("pred_cause", "pred_cause_proba", "pred_cause_group", "pred_risk_level", "pred_risk_flags", "pred_mindset", "review", "plan_owner", "error"):
        assert col in got.columns
    errors = list(got["error"].fillna(""))
    assert errors[1].startswith("empty text") and errors[0] == errors[2] == errors[3] == ""
    assert got["pred_risk_level"].iloc[2] in ("medium", "high")


def test_tag_reads_renamed_columns(registry, tmp_path):
    src = tmp_path / "工单.csv"
    pd.DataFrame([{"工单号": "A-1", "投诉内容": "理赔被拒，要求重新审核"}]).to_csv(src, index=False)
    out = tmp_path / "o.jsonl"
    assert run("tag", str(src), "-o", str(out), "--text-column", "投诉内容", "--id-column", "工单号", "-q").exit_code == 0
    row = json.loads(out.read_text(encoding="utf-8"))
    assert row["工单号"] == "A-1" and isinstance(row["pred_cause"], list) and row["pred_cause"]


def test_a_file_without_the_text_column_exits_3_with_one_sentence(registry, tmp_path):
    src = tmp_path / "x.csv"
    pd.DataFrame([{"a": 1}]).to_csv(src, index=False)
    result = CliRunner().invoke(cli.main, ["tag", str(src), "-o", str(tmp_path / "o.csv")])
    assert result.exit_code == 3
    assert "no text column 'text'" in result.output and "Traceback" not in result.output


def test_a_missing_file_exits_3(registry, tmp_path):
    result = CliRunner().invoke(cli.main, ["tag", str(tmp_path / "nope.csv")])
    assert result.exit_code == 3 and "no such file" in result.output


def test_a_tampered_model_exits_4(registry, tmp_path):
    with open(registry / "v-small" / "model.joblib", "ab") as fh:
        fh.write(b"x")
    result = CliRunner().invoke(cli.main, ["score", "理赔太慢"])
    assert result.exit_code == 4 and "sha256" in result.output


def test_an_interrupted_tag_resumed_gives_exactly_the_uninterrupted_rows(registry, tmp_path, monkeypatch):
    rows = [{"id": f"r{i}", "text": f"第{i}位客户反映理赔太慢，要求尽快处理", "n": i} for i in range(57)]
    src = tmp_path / "in.jsonl"
    pd.DataFrame(rows).to_json(src, orient="records", lines=True, force_ascii=False)
    whole = tmp_path / "whole.jsonl"
    assert run("tag", str(src), "-o", str(whole), "--chunk-size", "10", "-q").exit_code == 0

    real_write = batch._write_chunk
    calls = {"n": 0}

    def crash_after_three(work, number, frame):
        calls["n"] += 1
        if calls["n"] > 3:
            raise SystemExit(137)  # as if the process died here
        real_write(work, number, frame)

    part = tmp_path / "part.jsonl"
    monkeypatch.setattr(batch, "_write_chunk", crash_after_three)
    killed = CliRunner().invoke(cli.main, ["tag", str(src), "-o", str(part), "--chunk-size", "10", "-q"])
    assert killed.exit_code == 137
    assert not part.exists()  # never half-written
    monkeypatch.setattr(batch, "_write_chunk", real_write)
    assert run("tag", str(src), "-o", str(part), "--chunk-size", "10", "--resume", "-q").exit_code == 0
    a = pd.read_json(whole, lines=True)
    b = pd.read_json(part, lines=True)
    assert len(b) == 57 and a.equals(b)


def test_score_prints_the_card_and_json(registry):
    result = run("score", "客户(70岁)称再不退保就去找记者曝光，情绪激动")
    assert result.exit_code == 0
    assert "投诉处理卡" in result.output and "现在就做" in result.output
    data = json.loads(run("score", "--json", "请问怎么变更受益人").output)
    assert set(data) >= {"triage", "facts", "plan"}


def test_score_interactive_reads_line_after_line(registry):
    result = CliRunner().invoke(cli.main, ["score", "--interactive", "--json"], input="理赔太慢\n退保金太少\n\n")
    assert result.exit_code == 0
    assert result.output.count('"triage"') == 2


def test_models_list_show_and_rollback(registry, signed_copy):
    signed_copy(registry, "v-two", {"heldout": {"cause_top1": 0.5}})
    assert run("models", "promote", "v-two").exit_code == 0
    listing = run("models", "list").output
    assert "* v-two" in listing and "v-small" in listing
    assert json.loads(run("models", "show").output)["version"] == "v-two"
    assert "rolled back to v-small" in run("models", "rollback").output


@pytest.fixture
def three_promoted(registry, signed_copy):
    for v in ("v-two", "v-three"):
        signed_copy(registry, v, {"heldout": {}})
        assert run("models", "promote", v, "--reason", f"better on {v}").exit_code == 0
    return registry


def test_models_rollback_twice_goes_two_promotions_back(three_promoted):
    assert "rolled back to v-two (was v-three)" in run("models", "rollback").output
    assert "rolled back to v-small (was v-two)" in run("models", "rollback").output
    again = CliRunner().invoke(cli.main, ["models", "rollback"])
    assert again.exit_code == 4 and "nothing to roll back to" in again.output
    assert json.loads((three_promoted / "registry.json").read_text())["promoted"] == "v-small"


def test_models_rollback_to_a_named_version(three_promoted):
    out = run("models", "rollback", "--to", "v-small", "--reason", "v-two and v-three mislabel media threats")
    assert "rolled back to v-small (was v-three)" in out.output
    last = json.loads((three_promoted / "registry.json").read_text())["history"][-1]
    assert last["kind"] == "rollback" and "mislabel media threats" in last["reason"]
    refused = CliRunner().invoke(cli.main, ["models", "rollback", "--to", "v-three"])
    assert refused.exit_code == 4 and "not an earlier promotion" in refused.output


def test_models_prune_dry_run_then_prune(three_promoted):
    dry = run("models", "prune", "--keep", "0", "--dry-run").output
    assert "would delete v-small" in dry and "would delete v-two" in dry and "keep    v-three  (promoted)" in dry
    assert (three_promoted / "v-small").is_dir()
    out = run("models", "prune", "--keep", "1").output
    assert "deleted v-small" in out and "keep    v-two  (rollback step 1)" in out
    assert not (three_promoted / "v-small").exists() and (three_promoted / "v-two").is_dir()


def test_models_list_marks_the_promoted_one_and_shows_the_history_with_reasons(three_promoted):
    run("models", "rollback")
    lines = run("models", "list").output.splitlines()
    marked = [line for line in lines if line.startswith("* ")]
    assert len(marked) == 1 and marked[0].startswith("* v-two ")
    history = lines[lines.index("history (newest first):") + 1:]
    assert "rollback" in history[0] and "v-two" in history[0] and "rollback from v-three" in history[0]
    assert "v-three" in history[1] and "better on v-three" in history[1]
    assert "better on v-two" in history[2]
    assert "rollback goes to: v-small" in lines[-1]


def test_models_list_says_which_versions_will_not_load(registry, signed_copy):
    signed_copy(registry, "v-old", {"heldout": {}})
    manifest = json.loads((registry / "v-old" / "model.json").read_text())
    del manifest["signature"]  # as written before models were signed
    (registry / "v-old" / "model.json").write_text(json.dumps(manifest))
    lines = run("models", "list").output.splitlines()
    assert any(line.startswith("  v-old ") and line.endswith("[not signed: will not load]") for line in lines)
    assert any(line.startswith("* v-small ") and "will not load" not in line for line in lines)


def test_models_promote_refuses_a_path_outside_the_models_folder(registry, tmp_path, signed_copy):
    outside = signed_copy(tmp_path / "outside", "x", {"heldout": {}})
    for name in ("../outside/x", str(outside)):
        result = CliRunner().invoke(cli.main, ["models", "promote", name])
        assert result.exit_code == 4 and "not a model version name" in result.output
    assert json.loads((registry / "registry.json").read_text())["promoted"] == "v-small"


def test_score_refuses_a_command_running_pickle_with_a_rewritten_sha256(registry, tmp_path):
    import hashlib
    import os
    import pickle

    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    evil = pickle.dumps(Evil())
    model_dir = registry / "v-small"
    (model_dir / "model.joblib").write_bytes(evil)
    manifest = json.loads((model_dir / "model.json").read_text())
    manifest["files"]["model.joblib"] = hashlib.sha256(evil).hexdigest()
    (model_dir / "model.json").write_text(json.dumps(manifest))
    result = CliRunner().invoke(cli.main, ["score", "理赔太慢"])
    assert result.exit_code == 4 and "signature does not match" in result.output
    assert not marker.exists()


def test_a_model_directory_outside_the_models_folder_exits_4(registry, tmp_path, signed_copy):
    outside = signed_copy(tmp_path / "outside", "x", {"heldout": {}})
    result = CliRunner().invoke(cli.main, ["score", "--model", str(outside), "理赔太慢"])
    assert result.exit_code == 4 and "outside the models folder" in result.output


def test_suggest_writes_a_label_file_that_loads(registry, tmp_path):
    src = tmp_path / "backlog.csv"
    pd.DataFrame([{"id": f"b{i}", "text": t} for i, t in enumerate(
        ["理赔被拒", "退保金太少", "客服电话打不通", "业务员离职没人管", "收据没收到", "系统扣了两次钱", "请问犹豫期多久"])]).to_csv(src, index=False)
    out = tmp_path / "to_label.jsonl"
    assert run("suggest", str(src), "-n", "5", "-o", str(out)).exit_code == 0
    df = read_labelled(out)
    assert len(df) == 5 and df["id"].is_unique


@pytest.mark.slow
def test_retrain_promotes_a_helpful_file_and_refuses_a_harmful_one(registry, tmp_path):
    from tools.generate import generate_corpus

    fresh = generate_corpus(400, seed=7).assign(id=lambda d: "new-" + d["id"])
    good = tmp_path / "good.jsonl"
    fresh.to_json(good, orient="records", lines=True, force_ascii=False)
    result = CliRunner().invoke(cli.main, ["retrain", "--new", str(good)])
    assert result.exit_code == 0, result.output
    assert "promoted" in result.output and "cause_top1" in result.output

    noisy = generate_corpus(3000, seed=8).assign(id=lambda d: "bad-" + d["id"])
    # each row's labels moved to another row's text, together (so they still keep the risk rule)
    perm = __import__("numpy").random.default_rng(0).permutation(len(noisy))
    for col in ("cause", "risk_level", "risk_flags", "mindset"):
        noisy[col] = list(noisy[col].to_numpy()[perm])
    bad = tmp_path / "bad.jsonl"
    noisy.to_json(bad, orient="records", lines=True, force_ascii=False)
    before = json.loads((registry / "registry.json").read_text())["promoted"]
    result = CliRunner().invoke(cli.main, ["retrain", "--new", str(bad)])
    assert result.exit_code == 5
    assert "not promoted" in result.output and "->" in result.output
    assert json.loads((registry / "registry.json").read_text())["promoted"] == before


@pytest.mark.slow
def test_tousu_help_runs_as_a_process():
    out = subprocess.run([sys.executable, "-m", "cli", "--help"], capture_output=True, text=True, check=True)
    assert "tag" in out.stdout and "score" in out.stdout
