"""The benchmark produces every figure, each positive (not how fast: that is for the report)."""
import json
import os

import pytest
from click.testing import CliRunner

import cli
from pipeline.model.registry import promote, save_model

pytestmark = pytest.mark.slow


def test_quick_bench_produces_every_figure(tmp_path, monkeypatch, small_model, small_corpus):
    root = tmp_path / "models"
    save_model(small_model, small_corpus[0], {}, root=root, version="v1")
    promote("v1", root)
    monkeypatch.setenv("TOUSU_MODELS_DIR", str(root))
    out = tmp_path / "results"
    result = CliRunner().invoke(cli.main, ["bench", "--quick", "--memory-rows", "2000", "--train-sizes", "600", "--out", str(out)],
                                catch_exceptions=False)
    assert result.exit_code == 0, result.output
    data = json.loads((out / "bench-quick.json").read_text())
    for key in ("raw_jieba_notes_per_s", "tag_notes_per_s_1_core", "tag_notes_per_s_all_cores", "ratio_tag_all_cores_to_raw_jieba",
                "cold_start_score_s", "training_s_600"):
        assert data[key] > 0, key
    assert all(data["latency_ms"][q] > 0 for q in ("p50", "p95", "p99"))
    assert data["memory"]["peak_pss_mb"] > 0 and data["memory"]["rows"] == 2000
    assert data["machine"]["cores"] == os.cpu_count()
    assert "| raw jieba.lcut |" in (out / "bench-quick.md").read_text()
