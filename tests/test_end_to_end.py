"""End to end with the real default model: train, the seed case, tag + score.py, evaluate, notebook."""
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import cli

pytestmark = pytest.mark.slow

ROOT = Path(__file__).resolve().parent.parent
SEED = ("客户李先生(68岁)上门投诉，其爱人王某于2004年3月购买公司红双喜A款保单，所交保费45000元，"
        "08年9月因急需用钱选择退保，所退保费51142.75元。客户对退保现金价值十分不满，坚持购买时业务人员"
        "并未对退保损失做任何说明，属于公司欺骗行为，要求公司给予退保差额的50%(¥2459.79)作为补偿。"
        "客户情绪冲动，称如果公司不予解决将做媒体曝光。")


@pytest.fixture(scope="module")
def default_models(tmp_path_factory):
    root = tmp_path_factory.mktemp("models")
    old = os.environ.get("TOUSU_MODELS_DIR")
    os.environ["TOUSU_MODELS_DIR"] = str(root)
    result = CliRunner().invoke(cli.main, ["train"], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    yield root
    if old is None:
        os.environ.pop("TOUSU_MODELS_DIR", None)
    else:
        os.environ["TOUSU_MODELS_DIR"] = old


def test_the_seed_case_end_to_end(default_models):
    out = CliRunner().invoke(cli.main, ["score", "--json", "--received", "2026-11-25", SEED], catch_exceptions=False)
    data = json.loads(out.output)
    t, facts, plan = data["triage"], data["facts"], data["plan"]
    causes = [c["id"] for c in t["cause"]]
    assert causes[0] == "contract_surrender" and "sales_misrepresentation" in causes[:2]
    assert t["risk_level"]["id"] == "high"
    assert {"media_threat", "anger"} <= {f["id"] for f in t["risk_flags"]}
    assert [m["id"] for m in t["mindset"]] == ["remedy", "recognition"]
    amounts = {f["value"] for f in facts if f["kind"] == "amount"}
    assert {45000, 51142.75, 2459.79} <= amounts
    assert 68 in {f["value"] for f in facts if f["kind"] == "age"}
    order = ["frontline", "supervisor", "senior_specialist"]
    assert order.index(plan["owner"]) >= order.index("senior_specialist") and "brand_pr" in plan["departments"]
    steps = [s["id"] for s in plan["steps"]]
    assert steps[0] == "general_listen"
    for needed in ("general_apologise_answer", "major_restate_core", "bey_elderly_cash_value", "mind_recognition_no_onspot", "comp_actual_loss"):
        assert needed in steps, needed
    assert "avoid_disparage_company" in [a["id"] for a in plan["avoid"]]


def test_the_seed_case_second_mindset_is_recognition_by_its_presence_head(default_models):
    from pipeline.model.registry import load_model

    model, _ = load_model()
    p = model.mindset_presence_proba([SEED])[0]
    ranked = [model.mindset_classes_[j] for j in p.argsort()[::-1]]
    assert ranked[:2] == ["remedy", "recognition"]


def test_tag_the_validation_file_and_score_it(default_models, tmp_path, shared):
    gold = shared / "data" / "validation.jsonl"
    if not gold.exists():
        pytest.skip(f"{gold} not present")
    out = tmp_path / "tagged.jsonl"
    r = subprocess.run([sys.executable, "-m", "cli", "tag", str(gold), "-o", str(out), "--quiet"], cwd=ROOT,
                       capture_output=True, text=True, env=dict(os.environ))
    assert r.returncode == 0, r.stderr
    s = subprocess.run([sys.executable, str(shared / "tools" / "score.py"), str(gold), str(out)], capture_output=True, text=True)
    metrics = json.loads(s.stdout.splitlines()[0])
    assert metrics["rows_missing"] == 0
    # the README quotes this run's figures; a model or corpus change must update them
    readme = (ROOT / "README.md").read_text(encoding="utf-8")
    quoted = json.loads(next(line for line in readme.splitlines() if line.startswith('{"n": 151')))
    for key in ("cause_top1", "cause_top3", "cause_group_accuracy", "risk_level_macro_f1", "risk_flags_micro_f1",
                "mindset_top1"):
        assert abs(metrics[key] - quoted[key]) <= 0.02, (key, metrics[key], quoted[key])


def test_evaluate_prints_the_table_and_writes_the_report(default_models, tmp_path):
    r = CliRunner().invoke(cli.main, ["evaluate", "--out", str(tmp_path)], catch_exceptions=False)
    assert "cause_top1" in r.output and "keyword_baseline" in r.output
    assert (tmp_path / "report.html").exists() and (tmp_path / "risk_confusion.png").exists()
    j = CliRunner().invoke(cli.main, ["evaluate", "--json", "--out", str(tmp_path)], catch_exceptions=False)
    data = json.loads(j.output.strip().splitlines()[-1])
    for key in ("cause_top1", "cause_top3", "cause_group_accuracy", "risk_level_macro_f1", "risk_flags_micro_f1", "mindset_top1"):
        assert 0 <= data[key] <= 1
        assert data[key] > data[f"majority_{key}"] or key == "mindset_top1"


def test_the_notebook_runs_top_to_bottom(default_models):
    import nbformat
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / "notebooks" / "corpus_and_errors.ipynb", as_version=4)
    NotebookClient(nb, timeout=600, kernel_name="python3", resources={"metadata": {"path": str(ROOT)}}).execute()
    assert any(o.get("output_type") in ("execute_result", "stream") for c in nb.cells if c.cell_type == "code" for o in c.get("outputs", []))
