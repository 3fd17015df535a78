"""The package stands on its own: knowledge ships inside it, a centre can replace it, one flow, one models folder."""
import ast
import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

import pipeline
from pipeline import knowledge, paths

ROOT = Path(__file__).resolve().parent.parent
SEED = ("客户李先生(68岁)上门投诉，其爱人于2004年购买红双喜保单，08年退保只拿回现金价值，坚持业务人员未说明退保损失，"
        "要求补偿差额的50%，情绪冲动，称如果公司不予解决将做媒体曝光。")


def test_knowledge_files_are_read_from_inside_the_package():
    package = Path(pipeline.__file__).parent
    for path in (knowledge.taxonomy_path(), knowledge.playbook_dir(), knowledge.lexicon_file("facts.yaml"),
                 knowledge.corpus_dir() / "split.csv"):
        assert path.exists(), path
        assert package in path.resolve().parents, f"{path} is outside the package"


def test_no_module_reads_the_checkouts_data_folder():
    offenders = []
    for py in (ROOT / "pipeline").rglob("*.py"):
        text = py.read_text(encoding="utf-8")
        if '"data"' in text and "parent.parent" in text:
            offenders.append(py.name)
    assert not offenders


def test_models_folder_env_wins_then_checkout(monkeypatch, tmp_path):
    monkeypatch.setenv("TOUSU_MODELS_DIR", str(tmp_path / "m"))
    assert paths.models_dir() == tmp_path / "m"
    monkeypatch.delenv("TOUSU_MODELS_DIR")
    assert paths.checkout_root() == ROOT
    assert paths.models_dir() == ROOT / "models"


def test_an_installed_package_keeps_models_in_the_user_data_folder(monkeypatch, tmp_path):
    monkeypatch.delenv("TOUSU_MODELS_DIR", raising=False)
    monkeypatch.setattr(paths, "checkout_root", lambda: None)
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path / "xdg"))
    assert paths.models_dir() == tmp_path / "xdg" / "tousu" / "models"


def _tousu(*args, env_extra=None, models=None):
    import os

    env = dict(os.environ, **(env_extra or {}))
    if models is not None:
        env["TOUSU_MODELS_DIR"] = str(models)
    return subprocess.run([sys.executable, "-m", "cli", *args], cwd=ROOT, env=env, capture_output=True, text=True)


@pytest.mark.slow  # several processes at once: about 15 s on 2 cores
def test_a_centres_own_playbook_replaces_the_bundled_one(registry, tmp_path):
    own = tmp_path / "playbook"
    shutil.copytree(knowledge.bundled("playbook"), own)
    general = own / "general.yaml"
    text = general.read_text(encoding="utf-8")
    import yaml

    raw = yaml.safe_load(text)
    old = raw["steps"][0]["text"]
    general.write_text(text.replace(old, "本中心自定义的第一步：先核对客户身份。", 1), encoding="utf-8")
    bundled = _tousu("score", "--json", SEED, models=registry)
    mine = _tousu("--playbook", str(own), "score", "--json", SEED, models=registry)
    assert bundled.returncode == 0 and mine.returncode == 0, mine.stderr
    texts = [s["text"] for s in json.loads(mine.stdout)["plan"]["reference"]]
    assert "本中心自定义的第一步：先核对客户身份。" in texts
    assert "本中心自定义的第一步：先核对客户身份。" not in bundled.stdout
    by_env = _tousu("score", "--json", SEED, models=registry, env_extra={"TOUSU_PLAYBOOK": str(own)})
    assert "本中心自定义的第一步" in by_env.stdout


def test_a_broken_playbook_is_a_schema_error_naming_file_and_rule(registry, tmp_path):
    own = tmp_path / "playbook"
    shutil.copytree(knowledge.bundled("playbook"), own)
    (own / "zz_mine.yaml").write_text("rules:\n  - id: my_rule\n    section: general\n    priority: 1\n"
                                      "    when: {flag: no_such_flag}\n    steps: []\n", encoding="utf-8")
    done = _tousu("--playbook", str(own), "score", "x", models=registry)
    assert done.returncode == 2
    assert "zz_mine.yaml" in done.stderr and "my_rule" in done.stderr and "no_such_flag" in done.stderr


def test_a_lexicon_folder_with_an_unknown_file_is_refused(registry, tmp_path):
    (tmp_path / "lex").mkdir()
    (tmp_path / "lex" / "markerz.yaml").write_text("a: 1\n", encoding="utf-8")
    done = _tousu("--lexicon", str(tmp_path / "lex"), "score", "x", models=registry)
    assert done.returncode == 2 and "markerz.yaml" in done.stderr


def test_a_lexicon_folder_replaces_only_the_files_it_holds(monkeypatch, tmp_path):
    (tmp_path / "stopwords.txt").write_text("的\n", encoding="utf-8")
    monkeypatch.setenv(knowledge.LEXICON_ENV, str(tmp_path))
    assert knowledge.lexicon_file("stopwords.txt") == tmp_path / "stopwords.txt"
    assert knowledge.lexicon_file("facts.yaml") == knowledge.bundled("lexicon", "facts.yaml")


def _imports(py: Path) -> set[str]:
    tree = ast.parse(py.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.module.startswith("pipeline"):
            found.add(node.module)
        elif isinstance(node, ast.Import):
            found.update(a.name for a in node.names if a.name.startswith("pipeline"))
    return found


LAYERS = ["knowledge", "paths", "secret", "charts", "contract", "text", "io", "model", "handling", "flow", "apps"]


def test_imports_only_point_down_the_layers():
    """knowledge < paths < secret < charts < contract < text < io < model < handling < flow < apps: no module imports a higher layer."""
    rank = {name: i for i, name in enumerate(LAYERS)}
    upward = []
    for py in (ROOT / "pipeline").rglob("*.py"):
        rel = py.relative_to(ROOT / "pipeline").parts
        if rel[0] == "__init__.py":
            continue  # the public API re-exports every layer, lazily
        mine = rel[0].removesuffix(".py")
        for mod in _imports(py):
            parts = mod.split(".")
            if len(parts) < 2:
                continue
            theirs = parts[1]
            if theirs in rank and mine in rank and rank[theirs] > rank[mine]:
                upward.append(f"{py.relative_to(ROOT)} imports {mod}")
    assert not upward


def test_the_flow_is_written_once():
    """Only flow.py calls the facts extractor and the plan engine together."""
    callers = []
    for py in list((ROOT / "pipeline").rglob("*.py")) + [ROOT / "cli.py"]:
        text = py.read_text(encoding="utf-8")
        if "extract_facts(" in text and ("make_plan(" in text or "plan(triage" in text) and py.name != "flow.py":
            callers.append(py.name)
    assert not callers


def test_triage_notes_gives_one_result_per_note_with_the_same_json_as_the_card(small_model):
    from pipeline.flow import triage_notes

    results = triage_notes(small_model, [SEED, "请问犹豫期是多少天？"])
    assert len(results) == 2
    record = results[0].to_json()
    assert [c["id"] for c in record["triage"]["cause"]] == results[0].triage.cause
    assert record["plan"]["owner_name"] in results[0].card()
    assert [s["text"] for s in record["plan"]["now"]] == results[0].tag_row()["plan_now"]
    row = results[0].tag_row("summary")
    assert row["pred_risk_level"] == record["triage"]["risk_level"]["id"]
    assert row["plan_steps"] == [s["id"] for s in record["plan"]["steps"]]
    bare = triage_notes(small_model, [SEED], with_plan=False)[0]
    assert bare.plan is None and bare.triage.cause == results[0].triage.cause
    with pytest.raises(ValueError):
        triage_notes(small_model, [SEED, SEED], received=[None])
