"""Running the model off the event loop, and keeping what it said in the case store.

The note-to-plan flow itself is `pipeline.flow.triage_notes`; writing to the store is
`pipeline.apps.store.keep_results`. This module only schedules them: a thread pool, a time limit,
and the store's group committer.
"""
from __future__ import annotations

import asyncio
import time
import uuid
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import date
from typing import Any, Callable

from pipeline.apps.service.metrics import Metrics
from pipeline.apps.service.schemas import Note

__all__ = ["Scorer", "Scored", "ScoringTimeout", "new_case_id", "score_notes"]


def new_case_id() -> str:
    """For notes sent without an id: sortable by day, unique without coordination between workers."""
    return f"{date.today():%Y%m%d}-{uuid.uuid4().hex[:12]}"


def score_notes(model, notes: list[Note]) -> list:
    """The flow's Results for these notes (a note without a received date was received today)."""
    from pipeline.flow import triage_notes

    return triage_notes(model, [n.text for n in notes], received=[n.received or date.today() for n in notes],
                        channel=[n.channel for n in notes])


class ScoringTimeout(Exception):
    """The model did not answer within the time limit (the worker thread finishes in the background)."""


@dataclass
class Scored:
    results: list[dict[str, Any]]  # Result.to_json() per note
    case_ids: list[str]
    store_error: str | None        # None: kept in the store
    version: str
    elapsed_ms: float


class Scorer:
    """A thread pool for the model and the store, a time limit, and the store writer (None: store off)."""

    def __init__(self, *, threads: int, timeout_s: float, metrics: Metrics, writer=None) -> None:
        self.timeout_s = timeout_s
        self.metrics = metrics
        self.writer = writer
        self.executor = ThreadPoolExecutor(max_workers=max(1, threads), thread_name_prefix="tousu-score")

    def close(self) -> None:
        self.executor.shutdown(wait=False, cancel_futures=True)
        if self.writer is not None:
            self.writer.close()

    async def in_thread(self, fn: Callable, *args, **kwargs):
        """Run a blocking call (the store's queries) in the pool, not on the event loop."""
        return await asyncio.get_running_loop().run_in_executor(self.executor, lambda: fn(*args, **kwargs))

    async def score(self, model, version: str, notes: list[Note]) -> Scored:
        """Triage `notes` with `model` and keep them; ScoringTimeout past the limit."""
        case_ids = [n.id if n.id and n.id.strip() else new_case_id() for n in notes]
        t0 = time.perf_counter()
        fut = self.executor.submit(self._score_and_keep, model, version, notes, case_ids)
        try:
            results, store_error = await asyncio.wait_for(asyncio.wrap_future(fut), timeout=self.timeout_s)
        except asyncio.TimeoutError:
            self.metrics.error("timeout")
            raise ScoringTimeout(f"scoring took longer than {self.timeout_s:g} s") from None
        for r in results:
            self.metrics.predicted(r["triage"]["risk_level"]["id"])
        return Scored(results, case_ids, store_error, version, round((time.perf_counter() - t0) * 1000, 2))

    def _score_and_keep(self, model, version: str, notes: list[Note], case_ids: list[str]) -> tuple[list[dict], str | None]:
        t0 = time.perf_counter()
        done = score_notes(model, notes)
        results = [r.to_json() for r in done]
        if self.writer is None:
            return results, "the case store is off"
        from pipeline.apps.store import keep_results

        ms = (time.perf_counter() - t0) * 1000 / len(notes)
        try:
            keep_results(self.writer, done, case_ids, [n.text for n in notes], version, source="serve",
                         received=[n.received for n in notes], processing_ms=round(ms, 2), timeout=self.timeout_s)
        except Exception as exc:  # noqa: BLE001 - the handler still gets the triage; the failure is counted and logged
            self.metrics.error("store")
            return results, f"{type(exc).__name__}: {exc}"[:300]
        return results, None
