"""Fill a case store for the screenshots of the page's supervisor view and labelling queue.

The notes are those of docs/report_demo.py (the corpus's held-out notes and the validation notes, with
a planted burst of claim disputes in the last two days), received over the last 90 days up to today and
really triaged by the promoted model. Most cases older than the decision period are resolved, a few
are left open past it; a few recent ones are corrected by a handler. Then:

    TOUSU_MODELS_DIR=/work/main/models python docs/page_demo.py sqlite:////tmp/demo-cases.db
    TOUSU_MODELS_DIR=/work/main/models python -m cli serve --database sqlite:////tmp/demo-cases.db
    # open http://127.0.0.1:8000/#supervisor and http://127.0.0.1:8000/#labelling
"""
from __future__ import annotations

import sys
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "docs"))


def build(url: str, seed: int = 5) -> dict[str, int]:
    """Triage the demo notes into the store at `url`; returns the store's counts."""
    from report_demo import demo

    from pipeline.apps.store import CaseStore, keep_results
    from pipeline.flow import triage_notes
    from pipeline.handling.playbook import default_playbook
    from pipeline.model.registry import load_model

    rng = np.random.default_rng(seed)
    df = demo()
    shift = pd.Timestamp(date.today()) - pd.Timestamp("2026-11-30")  # the demo's last day becomes today
    days = pd.to_datetime(df["受理日期"], errors="coerce") + shift
    received = [d.date() if pd.notna(d) else None for d in days]
    model, manifest = load_model()
    texts = list(df["text"])
    results = triage_notes(model, texts, received=received)
    decision_days = default_playbook().settings.decision_days
    with CaseStore(url) as store:
        for at in range(0, len(texts), 200):
            keep_results(store, results[at:at + 200], list(df["工单号"][at:at + 200]), texts[at:at + 200],
                         manifest["version"], source="tag", received=received[at:at + 200])
        today = date.today()
        for case_id, day in zip(df["工单号"], received):
            age = (today - day).days if day else 0
            # a centre that mostly keeps its deadlines: nearly every case past its decision date is resolved
            if age > decision_days - 2 and rng.random() < (0.985 if age > decision_days else 0.6):
                store.correct(case_id, {}, author="王丽", channel="page", resolved=True)
        for case_id in rng.choice(df["工单号"], size=12, replace=False):
            store.correct(case_id, {"cause": store.get(case_id)["triages"][-1]["predicted"]["cause"]}, author="李强",
                          channel="page")
        return store.counts()


if __name__ == "__main__":
    if len(sys.argv) != 2:
        sys.exit("usage: python docs/page_demo.py DATABASE_URL")
    print(build(sys.argv[1]))
