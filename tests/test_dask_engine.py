"""Dask engine: a partitioned input on a 2-worker local cluster gives exactly the single-process rows."""
import pandas as pd
import pytest

pytest.importorskip("dask.distributed", reason="the Dask engine is an optional extra: pip install -e '.[dask]'")
pytestmark = pytest.mark.slow

from pipeline.apps.batch import tag_frame  # noqa: E402
from pipeline.apps.dask_engine import tag_with_dask  # noqa: E402


def test_partitioned_input_on_two_workers_matches_single_process(tmp_path, small_model, small_corpus):
    texts = list(small_corpus[1]["text"][:90])
    folder = tmp_path / "in"
    folder.mkdir()
    parts = []
    for k in range(3):
        part = pd.DataFrame({"id": [f"p{k}-{i}" for i in range(30)], "text": texts[k * 30:(k + 1) * 30],
                             "branch": [f"分公司{k}"] * 30, "seq": [str(i) for i in range(30)]})
        part.loc[5, "text"] = ""  # a bad row stays a row
        part.to_csv(folder / f"part{k}.csv", index=False)
        parts.append(part)
    out = tmp_path / "out"
    summary = tag_with_dask(small_model, str(folder), str(out), workers=2, plan_mode="summary")
    assert summary.rows == 90 and summary.errors == 3 and summary.partitions == 3
    got = pd.read_parquet(out)
    expected = pd.concat([tag_frame(small_model, p) for p in parts], ignore_index=True)
    assert len(got) == 90
    assert list(got["id"]) == list(expected["id"])  # partition order and order within partitions
    assert list(got["branch"]) == list(expected["branch"]) and list(got["seq"]) == list(expected["seq"])
    assert list(got["pred_risk_level"].fillna("")) == list(expected["pred_risk_level"].fillna(""))
    assert [list(x) if x is not None else None for x in got["pred_cause"]] == list(expected["pred_cause"])
