"""Tag a file of notes: chunks, workers, progress, crash-safe resume.

Each chunk of input rows is tagged and written to its own file in a work
folder beside the output (`.OUTPUT.parts/`), atomically. A killed run leaves
only whole chunk files, so `--resume` skips exactly the rows already done and
the final file, assembled chunk by chunk, holds every input row exactly once,
in input order, with extra columns untouched.
"""
from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import time
from collections import Counter
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterator

import pandas as pd

from pipeline.flow import triage_notes
from pipeline.handling.result import PLAN_COLUMNS, PLAN_MODES, TAG_COLUMNS
from pipeline.io import (
    ERROR_COLUMN,
    CaseFileError,
    check_exists,
    file_format,
    iter_chunks,
    write_frame,
)
from pipeline.text.normalisation import normalise

__all__ = ["tag_file", "tag_frame", "TagSummary", "StoreTarget", "PLAN_MODES"]

_READABLE = re.compile(r"[0-9A-Za-z\u3400-\u9fff\uf900-\ufaff]")


@dataclass
class TagSummary:
    rows: int = 0
    errors: int = 0
    risk_levels: Counter = field(default_factory=Counter)
    seconds: float = 0.0
    resumed_rows: int = 0

    def as_dict(self) -> dict:
        return {"rows": self.rows, "errors": self.errors, "risk_levels": dict(self.risk_levels),
                "seconds": round(self.seconds, 2), "rows_per_second": round(self.rows / self.seconds, 1) if self.seconds else None,
                "resumed_rows": self.resumed_rows}


def _text_of(value) -> str | None:
    if value is None or (isinstance(value, float) and value != value):
        return None
    return value if isinstance(value, str) else str(value)


def _received(value) -> date | None:
    if value is None or value == "" or (isinstance(value, float) and value != value):
        return None
    try:
        return pd.Timestamp(value).date()
    except (ValueError, TypeError):
        return None


def tag_frame(model, df: pd.DataFrame, text_column: str = "text", plan_mode: str = "summary",
              received_column: str | None = None, keep_pii: bool = False, results: dict | None = None) -> pd.DataFrame:
    """Add the prediction and plan columns to a frame; bad rows get an `error` and no prediction.

    `results`, when given, receives row position -> the flow's Result (for the case store, which keeps
    the plan even when the file does not).
    """
    out = df.copy()
    n = len(df)
    errors: list[str | None] = list(df[ERROR_COLUMN]) if ERROR_COLUMN in df.columns else [None] * n
    errors = [e if isinstance(e, str) and e else None for e in errors]
    texts = list(df[text_column]) if text_column in df.columns else [None] * n
    docs = {}
    for i, raw in enumerate(texts):
        if errors[i]:
            continue
        text = _text_of(raw)
        if text is None or not text.strip():
            errors[i] = f"empty text in column '{text_column}'"
            continue
        doc = normalise(text)
        if not _READABLE.search(doc.customer):
            errors[i] = "no readable text (no Chinese, letters or digits after cleaning)"
            continue
        docs[i] = doc
    columns = TAG_COLUMNS + PLAN_COLUMNS[plan_mode]
    cols: dict[str, list] = {c: [None] * n for c in columns}
    index = list(docs)
    received = None
    if received_column and received_column in df.columns:
        received = [_received(df[received_column].iloc[i]) for i in index]
    done = triage_notes(model, [docs[i] for i in index], received=received,
                        with_plan=plan_mode != "none" or results is not None)
    for i, result in zip(index, done):
        if results is not None:
            results[i] = result
        for c, v in result.tag_row(plan_mode).items():
            cols[c][i] = v
    for c, v in cols.items():
        out[c] = v
    if not keep_pii and text_column in out.columns:
        from pipeline.text.pii import mask_pii

        out[text_column] = [mask_pii(t) if isinstance(t, str) else t for t in out[text_column]]
    out[ERROR_COLUMN] = [e or "" for e in errors]
    return out


# ------------------------------------------------------------------ files

def _work_dir(output: Path) -> Path:
    return output.parent / f".{output.name}.parts"


def _discard(work: Path) -> None:
    """Rename first, then delete: a kill mid-delete must never leave a work folder missing some
    chunks, or a resume would skip the wrong rows."""
    trash = work.with_name(work.name + ".trash")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(work, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _done_chunks(work: Path) -> list[Path]:
    return sorted(work.glob("chunk-*.pkl")) if work.exists() else []


def _write_chunk(work: Path, number: int, frame: pd.DataFrame) -> None:
    fd, tmp = tempfile.mkstemp(prefix=".chunk.", dir=work)
    os.close(fd)
    frame.to_pickle(tmp)
    with open(tmp, "rb") as fh:
        os.fsync(fh.fileno())
    os.replace(tmp, work / f"chunk-{number:08d}-{len(frame)}.pkl")


def _assemble(work: Path, output: Path, fmt: str) -> None:
    """Join the chunk files into the output, atomically, one chunk in memory at a time."""
    chunks = _done_chunks(work)
    fd, tmp = tempfile.mkstemp(prefix=f".{output.name}.", suffix=f".tmp{output.suffix}", dir=output.parent)
    os.close(fd)
    try:
        if fmt in ("csv", "jsonl"):
            with open(tmp, "w", encoding="utf-8-sig" if fmt == "csv" else "utf-8", newline="") as fh:
                for k, path in enumerate(chunks):
                    write_frame(pd.read_pickle(path), fh, fmt, header=(k == 0))
                fh.flush()
                os.fsync(fh.fileno())
        elif fmt == "parquet":
            import pyarrow as pa
            import pyarrow.parquet as pq

            writer = None
            for path in chunks:
                frame = pd.read_pickle(path)
                for c in frame.columns:  # mixed python objects: keep them as text
                    if frame[c].dtype == object and not c.startswith(("pred_", "plan_", "review_reasons")):
                        frame[c] = frame[c].map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
                table = pa.Table.from_pandas(frame, preserve_index=False)
                if writer is None:
                    writer = pq.ParquetWriter(tmp, table.schema)
                else:
                    table = table.cast(writer.schema)
                writer.write_table(table)
            if writer:
                writer.close()
        else:  # Excel needs the whole sheet at once
            frame = pd.concat([pd.read_pickle(p) for p in chunks], ignore_index=True)
            write_frame(frame, tmp, "excel")
        os.replace(tmp, output)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


def _count_rows(path: str, fmt: str) -> int | None:
    if path == "-" or fmt not in ("csv", "jsonl"):
        return None
    with open(path, "rb") as fh:
        lines = sum(block.count(b"\n") for block in iter(lambda: fh.read(1 << 20), b""))
    return max(lines - (1 if fmt == "csv" else 0), 0)


class Progress:
    """One stderr line with rows, rate and ETA; silent when quiet or not a terminal."""

    def __init__(self, total: int | None, enabled: bool):
        self.total, self.enabled, self.start, self.done = total, enabled, time.time(), 0

    def update(self, n: int) -> None:
        self.done += n
        if not self.enabled:
            return
        rate = self.done / max(time.time() - self.start, 1e-6)
        eta = ""
        if self.total and rate:
            left = max(self.total - self.done, 0) / rate
            eta = f"  ETA {int(left // 60)}:{int(left % 60):02d}"
        total = f"/{self.total:,}" if self.total else ""
        sys.stderr.write(f"\r  {self.done:,}{total} rows  {rate:,.0f} rows/s{eta}   ")
        sys.stderr.flush()

    def close(self) -> None:
        if self.enabled:
            sys.stderr.write("\n")


@dataclass
class StoreTarget:
    """Where and how `tag --store` keeps each triage. Case ids: the id column, else FILE#ROW (1-based)."""

    database_url: str | None
    model_version: str
    source_name: str
    id_column: str = "id"
    text_column: str = "text"
    received_column: str | None = None


_STORES: dict = {}  # one CaseStore per process and database (workers open their own after the fork)


def _store_chunk(frame: pd.DataFrame, results: dict, first_row: int, target: StoreTarget) -> None:
    from pipeline.apps.store import CaseStore, keep_results

    key = (os.getpid(), target.database_url)
    if key not in _STORES:
        _STORES[key] = CaseStore(target.database_url, migrate=False)
    ids = list(frame[target.id_column]) if target.id_column in frame.columns else [None] * len(frame)
    rows = sorted(results)
    case_ids = []
    for i in rows:
        raw_id = _text_of(ids[i])
        case_ids.append(raw_id.strip()[:128] if raw_id and raw_id.strip() else f"{target.source_name}#{first_row + i + 1}")
    texts = [_text_of(frame[target.text_column].iloc[i]) or "" for i in rows]
    received = ([_received(frame[target.received_column].iloc[i]) for i in rows]
                if target.received_column and target.received_column in frame.columns else None)
    keep_results(_STORES[key], [results[i] for i in rows], case_ids, texts, target.model_version, source="tag",
                 received=received, dedupe=True)


def _tag_chunk(model, frame: pd.DataFrame, first_row: int, kw: dict, target: StoreTarget | None) -> pd.DataFrame:
    """Tag one chunk and, with a store target, keep its triages before the chunk counts as done."""
    results: dict | None = {} if target else None
    out = tag_frame(model, frame, results=results, **kw)
    if target and results:
        _store_chunk(frame, results, first_row, target)
    return out


_WORKER_MODEL = None


def _worker_init(model_dir: str) -> None:
    global _WORKER_MODEL
    from pipeline.model.registry import load_model

    _WORKER_MODEL, _ = load_model(model_dir)


def _worker_tag(args):
    frame, first_row, kw, target = args
    return _tag_chunk(_WORKER_MODEL, frame, first_row, kw, target)


def tag_file(model, model_dir: str | None, input_path: str, output_path: str, *, text_column: str = "text",
             id_column: str = "id", plan_mode: str = "summary", received_column: str | None = None,
             encoding: str | None = None, chunksize: int = 1000, jobs: int = 1, resume: bool = False,
             progress: bool = False, keep_pii: bool = False, store: StoreTarget | None = None) -> TagSummary:
    """Tag every row of INPUT into OUTPUT. Raises CaseFileError for a file that cannot be read at all.

    With `store`, every tagged row's triage is also kept in the case store (a resumed or repeated run
    stores each case once per model version).
    """
    check_exists(input_path)
    fmt_in = file_format(input_path)
    output = Path(output_path)
    fmt_out = file_format(output)
    output.parent.mkdir(parents=True, exist_ok=True)
    work = _work_dir(output)
    shutil.rmtree(work.with_name(work.name + ".trash"), ignore_errors=True)  # left by a run killed while cleaning up
    if work.exists() and not resume:
        _discard(work)
    work.mkdir(exist_ok=True)
    done = _done_chunks(work)
    skip = sum(int(p.stem.rsplit("-", 1)[1]) for p in done)
    summary = TagSummary(resumed_rows=skip)
    for p in done:  # the summary counts the whole file, resumed rows included
        frame = pd.read_pickle(p)
        summary.rows += len(frame)
        summary.errors += int((frame[ERROR_COLUMN] != "").sum())
        summary.risk_levels.update(v for v in frame["pred_risk_level"] if v)
    bar = Progress(_count_rows(input_path, fmt_in) if progress else None, progress)
    bar.update(skip)
    start = time.time()
    kw = dict(text_column=text_column, plan_mode=plan_mode, received_column=received_column, keep_pii=keep_pii)
    number = len(done)

    if store is not None:  # create or upgrade the schema once, before any worker writes
        from pipeline.apps.store import CaseStore

        CaseStore(store.database_url).close()

    def chunks() -> Iterator[tuple[pd.DataFrame, int]]:
        seen = 0
        first = True
        for chunk in iter_chunks(input_path, chunksize=chunksize, encoding=encoding):
            if first:
                first = False
                if text_column not in chunk.columns and ERROR_COLUMN not in chunk.columns:
                    cols = ", ".join(map(str, list(chunk.columns)[:10]))
                    raise CaseFileError(f"{input_path}: no text column '{text_column}' (columns: {cols}); name it with --text-column.")
            if seen + len(chunk) <= skip:
                seen += len(chunk)
                continue
            start = seen
            if seen < skip:
                chunk = chunk.iloc[skip - seen:]
                start = skip
            seen = start + len(chunk)
            yield chunk.reset_index(drop=True), start

    def consume(tagged: pd.DataFrame) -> None:
        nonlocal number
        number += 1
        _write_chunk(work, number, tagged)
        summary.rows += len(tagged)
        summary.errors += int((tagged[ERROR_COLUMN] != "").sum())
        summary.risk_levels.update(v for v in tagged["pred_risk_level"] if v)
        bar.update(len(tagged))

    if jobs > 1 and model_dir:
        import multiprocessing as mp

        global _WORKER_MODEL
        if sys.platform != "win32":
            # fork after the model and jieba's dictionary are loaded: workers share those pages
            model.triage(["预热"])
            _WORKER_MODEL = model
            ctx, init, args = mp.get_context("fork"), None, ()
        else:
            ctx, init, args = mp.get_context("spawn"), _worker_init, (model_dir,)
        with ctx.Pool(jobs, initializer=init, initargs=args) as pool:
            for tagged in pool.imap(_worker_tag, ((c, row, kw, store) for c, row in chunks()), chunksize=1):
                consume(tagged)
    else:
        for chunk, first_row in chunks():
            consume(_tag_chunk(model, chunk, first_row, kw, store))
    bar.close()
    if number == 0:
        raise CaseFileError(f"{input_path}: no rows to tag.")
    _assemble(work, output, fmt_out)
    _discard(work)
    summary.seconds = time.time() - start
    return summary
