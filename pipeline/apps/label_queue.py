"""The labelling queue: the case store's unlabelled cases in `tousu suggest`'s order, one after another.

The ranking is suggest's (`pipeline.model.suggest`): the model's doubt on each note, taken round robin over
the predicted main causes. The store keeps only masked text, so the doubt is the loaded model's on the masked
note; it is worked out once per (model version, triage) and kept, so a queue of a few thousand cases is
ranked in full once and then only for newly stored triages. The form starts from the labels the store
holds for the case (the prediction made on the original note), which is what a correction is compared with.
"""
from __future__ import annotations

import threading
from collections.abc import Collection
from typing import Any

from pipeline.model.suggest import ranking, uncertainty

__all__ = ["LabelQueue", "POOL"]

#: the newest uncorrected cases considered (older ones wait until these are labelled)
POOL = 2000
_CHUNK = 256  # notes per model call: memory stays flat on a large pool


class LabelQueue:
    """suggest's ranking over the store's uncorrected cases, with the model's doubt kept per triage."""

    def __init__(self, pool: int = POOL) -> None:
        self.pool = pool
        self._doubt: dict[tuple[str, int], tuple[float, str]] = {}  # (version, triage id) -> (doubt, main cause)
        self._lock = threading.Lock()

    def ranked(self, store, model, version: str, limit: int, skip: Collection[str] = ()) -> dict[str, Any]:
        """Up to `limit` uncorrected cases, the most useful to label first; `skip`: case ids the handler passed over.

        Returns {"cases": [...], "remaining": uncorrected cases in the store, "pool": cases ranked}.
        """
        rows, total = store.uncorrected(self.pool)
        rows = [r for r in rows if r["case_id"] not in skip and (r["text_masked"] or "").strip()]
        scores = self._scores(model, version, rows)
        order = ranking([d for d, _ in scores], [m for _, m in scores])[:limit]
        return {"cases": [_item(rows[i], scores[i][0]) for i in order], "remaining": total, "pool": len(rows)}

    def _scores(self, model, version: str, rows: list[dict[str, Any]]) -> list[tuple[float, str]]:
        with self._lock:  # one ranking at a time: two page loads never score the same notes twice
            todo = [r for r in rows if (version, r["last_triage_id"]) not in self._doubt]
            for at in range(0, len(todo), _CHUNK):
                part = todo[at:at + _CHUNK]
                triages, proba = model.predict_with_proba([r["text_masked"] for r in part])
                doubt = uncertainty(proba, model.flag_threshold_vec_)
                for r, d, t in zip(part, doubt, triages):
                    self._doubt[(version, r["last_triage_id"])] = (float(d), t.cause[0])
            scores = [self._doubt[(version, r["last_triage_id"])] for r in rows]
            if len(self._doubt) > 4 * self.pool:  # forget corrected cases and older model versions
                keep = {(version, r["last_triage_id"]) for r in rows}
                self._doubt = {k: v for k, v in self._doubt.items() if k in keep}
        return scores


def _item(row: dict[str, Any], doubt: float) -> dict[str, Any]:
    """What the page shows for one case: the masked note, the stored labels, and the model's top causes to choose from."""
    triage = (row.get("result") or {}).get("triage", {})
    return {"case_id": row["case_id"], "status": row["status"], "received_on": row["received_on"],
            "created_at": row["created_at"], "model_version": row["model_version"], "text": row["text_masked"],
            "uncertainty": round(doubt, 3), "labels": row["predicted"],
            "causes": [{"id": c["id"], "name": c.get("name"), "proba": c.get("proba")} for c in triage.get("cause", [])],
            "risk_reason": (triage.get("risk_level") or {}).get("reason")}
