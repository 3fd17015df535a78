"""Tag a file of notes: chunks, workers, progress, crash-safe resume.

Each chunk of input rows is tagged and written to its own file in a work
folder beside the output (`.OUTPUT.parts/`), atomically, already rendered in
the output's format: data, never pickles. A run manifest there records the
input (size, mtime, a hash of its head and tail), the options and the model.
A killed run leaves only whole chunk files, so `--resume` of the same job
skips exactly the rows already done, and a resume of any other job is refused;
the final file, the chunks joined in order, holds every input row exactly
once, in input order, with extra columns untouched.
"""
from __future__ import annotations

import codecs
import gc
import hashlib
import json
import os
import re
import shutil
import sys
import time
from collections import Counter
from contextlib import closing, contextmanager
from dataclasses import dataclass, field
from datetime import date
from pathlib import Path
from typing import Iterator

import pandas as pd

from pipeline.contract.dates import parse_received
from pipeline.flow import triage_notes
from pipeline.handling.channel import channel_id
from pipeline.handling.result import PLAN_COLUMNS, PLAN_MODES, TAG_COLUMNS
from pipeline.io import (
    ERROR_COLUMN,
    CaseFileError,
    RunRefused,
    check_exists,
    count_rows,
    file_format,
    frame_bytes,
    iter_chunks,
    output_error,
    refuse_same_file,
    replacing,
    require_column,
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
    """A stored row's received date (its row was tagged, so the date already passed `parse_received`)."""
    try:
        return parse_received(value)
    except ValueError:
        return None


def tag_frame(model, df: pd.DataFrame, text_column: str = "text", plan_mode: str = "summary",
              received_column: str | None = None, keep_pii: bool = False, results: dict | None = None,
              channel_column: str | None = None) -> pd.DataFrame:
    """Add the prediction and plan columns to a frame; bad rows get an `error` and no prediction.

    `results`, when given, receives row position -> the flow's Result (for the case store, which keeps
    the plan even when the file does not).
    """
    out = df.copy()
    n = len(df)
    errors: list[str | None] = list(df[ERROR_COLUMN]) if ERROR_COLUMN in df.columns else [None] * n
    errors = [e if isinstance(e, str) and e else None for e in errors]
    texts = list(df[text_column]) if text_column in df.columns else [None] * n
    days: list[date | None] = [None] * n
    if received_column and received_column in df.columns:
        for i, value in enumerate(df[received_column]):
            if errors[i]:
                continue
            try:
                days[i] = parse_received(value)
            except ValueError as exc:  # 9999-12-31, 0001-01-01, garbage: this row's error, not the run's
                errors[i] = str(exc)
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
    received = [days[i] for i in index] if received_column and received_column in df.columns else None
    channels = None
    if channel_column and channel_column in df.columns:
        channels = [channel_id(_text_of(df[channel_column].iloc[i])) for i in index]
    done = triage_notes(model, [docs[i] for i in index], received=received, channel=channels,
                        with_plan=plan_mode != "none" or results is not None, evidence=results is not None)
    for i, result in zip(index, done):
        if results is not None:
            results[i] = result
        for c, v in result.tag_row(plan_mode).items():
            cols[c][i] = v
    for c, v in cols.items():
        out[c] = v
    if not keep_pii:
        from pipeline.text.pii import mask_pii

        if text_column in out.columns:
            out[text_column] = [mask_pii(t) if isinstance(t, str) else t for t in out[text_column]]
        for column in df.columns:
            if column != text_column and column != ERROR_COLUMN:
                out[column] = _masked_column(column, out[column])
    out[ERROR_COLUMN] = [e or "" for e in errors]
    return out


#: column names that hold a personal number (客户电话, 手机, 身份证号, 联系方式, 银行卡号, email ...)
_PII_COLUMN = re.compile(r"电话|手机|联系|身份证|证件|银行卡|卡号|账号|帐号|邮箱|phone|mobile|tel|e-?mail|id.?card|"
                         r"id.?number|bank|account", re.IGNORECASE)


def _masked_column(name, values: pd.Series) -> pd.Series:
    """Extra columns pass through, but not the personal numbers in them: a column named like one is
    masked cell by cell (numbers stored as numbers too), any other column where a cell holds one."""
    from pipeline.text.pii import mask_pii

    by_name = bool(_PII_COLUMN.search(str(name)))
    if not by_name and values.dtype != object:
        return values

    def mask(v):
        if v is None or (isinstance(v, float) and v != v):
            return v
        if not isinstance(v, str):
            if not by_name or isinstance(v, bool):
                return v
            v = str(int(v)) if isinstance(v, float) and v.is_integer() else str(v)
        masked = mask_pii(v)
        if by_name and masked == v and sum(ch.isdigit() for ch in v) >= 6:
            # a number the patterns do not know (spaces, a foreign format): keep only the last four digits
            digits = [i for i, ch in enumerate(v) if ch.isdigit()]
            hide = set(digits[:-4])
            masked = "".join("*" if i in hide else ch for i, ch in enumerate(v))
        return masked

    return values.map(mask)


# ------------------------------------------------------------------ the work folder

MANIFEST = "manifest.json"
WORK_FORMAT = 2  # 1 kept pickled chunks: never read again, since a planted pickle runs code
_EDGE = 1 << 20  # bytes hashed at each end of the input
_CHUNK_KIND = {"csv": "csv", "jsonl": "jsonl", "parquet": "parquet", "excel": "jsonl"}
_CHUNK_NAME = re.compile(r"chunk-(\d{8})-r(\d+)-e(\d+)-h(\d+)-m(\d+)-l(\d+)\.(csv|jsonl|parquet)")
_OPTION_NAMES = {"text_column": "--text-column", "id_column": "--id-column", "received_column": "--received-column",
                 "plan": "--plan", "encoding": "--encoding", "keep_pii": "--keep-pii",
                 "output_format": "the output format", "store": "--store"}


@dataclass
class WorkFolder:
    """`.OUTPUT.parts/` beside the output: the run manifest and one file per finished chunk.

    A chunk is kept already rendered in the output's own format (CSV or JSONL text, Parquet;
    JSONL for Excel), so the final file is the chunks joined byte for byte and a resume reads
    data, never code. Its counts are in its name, written in the same rename as its rows.
    """

    path: Path
    fmt: str  # the output's format

    @property
    def kind(self) -> str:
        return _CHUNK_KIND[self.fmt]


@dataclass
class ChunkFile:
    """A finished chunk and the counts its name carries (for the summary of a resumed run)."""

    path: Path
    number: int
    rows: int
    errors: int
    risk_levels: Counter


def _work_dir(output: Path) -> Path:
    return output.parent / f".{output.name}.parts"


def _discard(work: Path) -> None:
    """Rename first, then delete: a kill mid-delete must never leave a work folder missing some
    chunks, or a resume would skip the wrong rows."""
    trash = work.with_name(work.name + ".trash")
    shutil.rmtree(trash, ignore_errors=True)
    os.replace(work, trash)
    shutil.rmtree(trash, ignore_errors=True)


def _discard_quietly(work: Path) -> None:
    try:
        if work.exists():
            _discard(work)
    except OSError:
        shutil.rmtree(work, ignore_errors=True)


@contextmanager
def _writing(output: Path, work: WorkFolder) -> Iterator[None]:
    """A failed write (disk full, read-only folder) is one sentence and exit 7, and takes the work
    folder with it: its chunks would only keep the disk full."""
    try:
        yield
    except OSError as exc:
        _discard_quietly(work.path)
        raise output_error(output, exc) from None


def _atomic_json(path: Path, data: dict) -> None:
    with replacing(path, suffix="") as tmp, open(tmp, "w", encoding="utf-8") as fh:
        json.dump(data, fh, ensure_ascii=False, indent=1)


def input_fingerprint(path: str) -> dict:
    """Size, modification time and a hash of the first and last MiB: cheap on a 10 GB export,
    and a different file, an appended day or an edited row all change it."""
    st = os.stat(path)
    h = hashlib.sha256()
    with open(path, "rb") as fh:
        h.update(fh.read(_EDGE))
        if st.st_size > _EDGE:
            fh.seek(max(st.st_size - _EDGE, _EDGE))
            h.update(fh.read(_EDGE))
    return {"path": os.path.realpath(path), "size": st.st_size, "mtime_ns": st.st_mtime_ns,
            "head_tail_sha256": h.hexdigest()}


def _differences(recorded: dict, now: dict) -> list[str]:
    """What differs between the interrupted run and this one, in words a user can check."""
    diffs = []
    was, new = recorded.get("input") or {}, now["input"]
    if was.get("size") != new["size"]:
        diffs.append(f"the input's size ({was.get('size')} -> {new['size']} bytes)")
    elif was.get("head_tail_sha256") != new["head_tail_sha256"]:
        diffs.append("the input's content")
    elif was.get("mtime_ns") != new["mtime_ns"]:
        diffs.append("the input's modification time")
    if was.get("path") not in (None, new["path"]) and diffs:
        diffs.append(f"the input file ({was.get('path')} -> {new['path']})")
    old_opts = recorded.get("options") or {}
    for key, label in _OPTION_NAMES.items():
        if old_opts.get(key) != now["options"][key]:
            diffs.append(f"{label} ({old_opts.get(key)!r} -> {now['options'][key]!r})")
    if recorded.get("model_version") != now["model_version"]:
        diffs.append(f"the model ({recorded.get('model_version')} -> {now['model_version']})")
    return diffs


def _scan(work: WorkFolder) -> tuple[list[ChunkFile], list[str]]:
    """The finished chunks, in order, and the names of files that are neither chunk nor manifest."""
    chunks: list[ChunkFile] = []
    foreign: list[str] = []
    for p in sorted(work.path.iterdir()):
        if p.name == MANIFEST:
            continue
        if p.name.startswith("."):  # a temporary file from a write that was killed
            p.unlink(missing_ok=True)
            continue
        m = _CHUNK_NAME.fullmatch(p.name)
        if m and m.group(7) == work.kind:
            levels = Counter({"high": int(m.group(4)), "medium": int(m.group(5)), "low": int(m.group(6))})
            chunks.append(ChunkFile(p, int(m.group(1)), int(m.group(2)), int(m.group(3)), levels))
        else:
            foreign.append(p.name)
    chunks.sort(key=lambda c: c.number)
    return chunks, foreign


def _resume_state(work: WorkFolder, manifest: dict, output: Path) -> list[ChunkFile]:
    """The chunks an interrupted run of this very job finished; RunRefused for anything else."""
    def refuse(why: str) -> RunRefused:
        return RunRefused(f"cannot resume {output}: {why}; run without --resume to start again.")

    chunks, foreign = _scan(work)
    if not (work.path / MANIFEST).exists():
        if chunks or foreign:
            raise refuse(f"{work.path} has no run manifest (it was not left by this version of tousu)")
        _atomic_json(work.path / MANIFEST, manifest)  # killed before its manifest: nothing to resume
        return []
    try:
        recorded = json.loads((work.path / MANIFEST).read_text(encoding="utf-8"))
        if not isinstance(recorded, dict) or recorded.get("work_format") != WORK_FORMAT:
            raise ValueError("not a run manifest of this version")
    except (OSError, ValueError):
        raise refuse(f"the run manifest in {work.path} is unreadable") from None
    diffs = _differences(recorded, manifest)
    if diffs:
        raise refuse("the interrupted run differs: " + ", ".join(diffs))
    if foreign:
        raise refuse(f"{work.path} holds files tousu did not write ({', '.join(foreign[:3])})")
    for expected, c in enumerate(chunks, start=1):
        if c.number != expected:
            raise refuse(f"chunk {expected} is missing from {work.path}")
    return chunks


def _chunk_table(frame: pd.DataFrame):
    """The Arrow table of one chunk; extra columns of mixed Python values are kept as JSON text."""
    import pyarrow as pa

    frame = frame.copy()
    for c in frame.columns:
        if frame[c].dtype == object and not str(c).startswith(("pred_", "plan_", "review_reasons")):
            frame[c] = frame[c].map(lambda v: v if v is None or isinstance(v, str) else json.dumps(v, ensure_ascii=False, default=str))
    return pa.Table.from_pandas(frame, preserve_index=False)


@dataclass
class TaggedChunk:
    """One tagged chunk as the parent needs it: its counts, and its rows already rendered.

    CSV and JSONL chunk files (JSONL for Excel) are text, rendered where the chunk was tagged, so with
    workers the parent only writes bytes instead of rendering every row and unpickling a frame; a Parquet
    chunk keeps its frame, which Arrow writes.
    """

    rows: int
    errors: int
    risk_levels: Counter
    data: bytes | None = None  # the chunk file's bytes (text kinds)
    frame: pd.DataFrame | None = None  # Parquet: written by the parent


def _render_chunk(frame: pd.DataFrame, fmt: str, header: bool) -> TaggedChunk:
    """Count one tagged chunk and, for a text chunk file, render the exact bytes `_write_chunk` writes."""
    chunk = TaggedChunk(len(frame), int((frame[ERROR_COLUMN] != "").sum()),
                        Counter(v for v in frame["pred_risk_level"] if v))
    kind = _CHUNK_KIND[fmt]
    if kind == "parquet":
        chunk.frame = frame
        return chunk
    chunk.data = frame_bytes(frame, kind, header=header)
    if fmt == "excel":  # the columns first, so a chunk of 0 rows keeps its header
        columns = json.dumps({"columns": [str(c) for c in frame.columns]}, ensure_ascii=False) + "\n"
        chunk.data = columns.encode("utf-8") + chunk.data
    return chunk


def _write_chunk(work: WorkFolder, number: int, chunk: TaggedChunk) -> None:
    """Write one tagged chunk in the output's format and rename it into place: whole or absent."""
    levels = chunk.risk_levels
    name = (f"chunk-{number:08d}-r{chunk.rows}-e{chunk.errors}-h{levels['high']}-m{levels['medium']}"
            f"-l{levels['low']}.{work.kind}")
    with replacing(work.path / name, suffix="") as tmp:
        if chunk.frame is not None:
            import pyarrow.parquet as pq

            # Arrow's own list naming, so the joined file is the one a single write would give
            pq.write_table(_chunk_table(chunk.frame), tmp, use_compliant_nested_type=False)
        else:
            with open(tmp, "wb") as fh:
                fh.write(chunk.data)


def _excel_chunk(path: Path) -> pd.DataFrame:
    with open(path, encoding="utf-8") as fh:
        columns = json.loads(fh.readline())["columns"]
        records = [json.loads(line) for line in fh if line.strip()]
    return pd.DataFrame.from_records(records, columns=columns) if records else pd.DataFrame(columns=columns)


def _joined_schema(schemas: list) -> "pa.Schema":
    """One schema for every chunk: a column that is empty (null-typed) in one chunk and text in
    another is text; a key first seen in a later chunk is added after the first chunk's columns."""
    import pyarrow as pa

    return pa.unify_schemas(schemas, promote_options="permissive")


def _conform(table, schema):
    """A chunk's table in the joined schema: columns in its order, a column the chunk lacks as nulls."""
    import pyarrow as pa

    columns = [table.column(f.name) if f.name in table.schema.names else pa.nulls(len(table), f.type)
               for f in schema]
    return pa.Table.from_arrays(columns, schema=schema.remove_metadata()).cast(schema)


def _assemble(work: WorkFolder, chunks: list[ChunkFile], output: Path) -> None:
    """Join the chunk files into the output, atomically, one chunk in memory at a time."""
    with replacing(output) as tmp:
        if work.fmt in ("csv", "jsonl"):
            with open(tmp, "wb") as out:
                if work.fmt == "csv":
                    out.write(codecs.BOM_UTF8)  # Excel opens a UTF-8 CSV with a BOM as UTF-8
                for c in chunks:
                    with open(c.path, "rb") as fh:
                        shutil.copyfileobj(fh, out, 1 << 20)
        elif work.fmt == "parquet":
            import pyarrow.parquet as pq

            if chunks:
                schema = _joined_schema([pq.read_schema(c.path) for c in chunks])
                with pq.ParquetWriter(tmp, schema) as writer:
                    for c in chunks:
                        writer.write_table(_conform(pq.read_table(c.path), schema))
        else:  # Excel needs the whole sheet at once
            frame = pd.concat([_excel_chunk(c.path) for c in chunks], ignore_index=True)
            write_frame(frame, tmp, "excel")


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


def _tag_chunk(model, frame: pd.DataFrame, first_row: int, kw: dict, target: StoreTarget | None,
               fmt: str, header: bool) -> TaggedChunk:
    """Tag one chunk, rendered for a chunk file of `fmt`, and, with a store target, keep its triages
    before the chunk counts as done."""
    results: dict | None = {} if target else None
    out = tag_frame(model, frame, results=results, **kw)
    if target and results:
        _store_chunk(frame, results, first_row, target)
    return _render_chunk(out, fmt, header)


#: young-generation threshold of the cyclic garbage collector while tagging (Python's default: 700)
_GC_YOUNG = 10_000


@contextmanager
def _fewer_collections() -> Iterator[None]:
    """Fewer passes of the cyclic garbage collector while tagging; the previous settings afterwards.

    A chunk makes tens of thousands of short-lived containers (rows, triages, plans) and next to no
    reference cycles, so reference counting frees them and the collector's passes only walk them (its
    full passes also the loaded model and playbook). Young objects are collected every 10,000
    allocations instead of 700, and what is loaded is frozen before workers fork (as Python's gc
    documentation advises for forked workers; they inherit both settings). On 5,000 notes in chunks of
    1,000, one process: tag_frame 0.350 -> 0.324 ms/note. Nothing tagged depends on when collection runs.
    """
    threshold = gc.get_threshold()
    gc.collect()
    gc.freeze()
    gc.set_threshold(max(threshold[0], _GC_YOUNG), *threshold[1:])
    try:
        yield
    finally:
        gc.set_threshold(*threshold)
        gc.unfreeze()


_WORKER_MODEL = None


def _in_workers(ctx, jobs: int, init, args: tuple, tasks: Iterator[tuple]) -> Iterator[TaggedChunk]:
    """Each task tagged by a worker process, results in input order, at most two chunks per worker in
    flight (a large file is never read ahead into memory).

    A process pool executor, not `multiprocessing.Pool`: when the parent stops half-way (a full disk
    while writing a chunk, an interrupt), `Pool.terminate()` could hang for good on its task thread
    (seen in 1 of 3 interrupted runs on a busy 2-core machine); the executor cancels what has not
    started, lets at most one chunk per worker finish, and returns."""
    from collections import deque
    from concurrent.futures import ProcessPoolExecutor
    from concurrent.futures.process import BrokenProcessPool

    pool = ProcessPoolExecutor(jobs, mp_context=ctx, initializer=init, initargs=args)
    pending: deque = deque()
    try:
        for task in tasks:
            pending.append(pool.submit(_worker_tag, task))
            if len(pending) >= 2 * jobs:
                yield pending.popleft().result()
        while pending:
            yield pending.popleft().result()
    except BrokenProcessPool:
        raise WorkerLost("a tagging worker process died (out of memory, or killed); the chunks written so far "
                         "are kept: run the same command with --resume, or with --jobs 1") from None
    finally:
        pool.shutdown(wait=True, cancel_futures=True)


class WorkerLost(RuntimeError):
    """A worker process of `tag` died mid-run: the run stops with what it finished kept for --resume."""


#: how often a tagging worker checks that the run that started it is still there (seconds)
_PARENT_CHECK_S = 0.5


def _exit_with_parent(parent_pid: int) -> None:
    """A worker whose run is gone exits. A run stopped by SIGKILL (the OOM killer, `kill -9`, a machine's
    job limit) cannot stop its workers, and they wait on the task queue for good: each holds a copy of
    the model's pages it wrote to (about 190 MB here), so a crash-resume loop piled up 159 of them and 16
    GB before this. A daemon thread sees the parent change and ends the process."""
    import threading

    def watch() -> None:
        while os.getppid() == parent_pid:
            time.sleep(_PARENT_CHECK_S)
        os._exit(1)

    threading.Thread(target=watch, name="tousu-parent-watch", daemon=True).start()


def _worker_start(parent_pid: int, model_dir: str | None) -> None:
    """Every tagging worker watches its run; a spawned one (`model_dir`) loads the model, a forked one has it."""
    global _WORKER_MODEL
    _exit_with_parent(parent_pid)
    if model_dir is not None:
        from pipeline.model.registry import load_model

        _WORKER_MODEL, _ = load_model(model_dir, predict_only=True)


def _worker_tag(args):
    return _tag_chunk(_WORKER_MODEL, *args)


def tag_file(model, model_dir: str | None, input_path: str, output_path: str, *, text_column: str = "text",
             id_column: str = "id", plan_mode: str = "summary", received_column: str | None = None,
             encoding: str | None = None, chunksize: int = 1000, jobs: int = 1, resume: bool = False,
             progress: bool = False, keep_pii: bool = False, store: StoreTarget | None = None,
             model_version: str | None = None, channel_column: str | None = None) -> TagSummary:
    """Tag every row of INPUT into OUTPUT.

    Raises CaseFileError for a file that cannot be read at all, RunRefused when the output is the
    input or `resume` would continue a different run (other input, options or model), and
    OutputError when the output cannot be written. With `store`, every tagged row's triage is also
    kept in the case store (a resumed or repeated run stores each case once per model version).
    """
    check_exists(input_path)
    file_format(input_path)  # an unknown file type is refused before anything is written
    output = Path(output_path)
    fmt_out = file_format(output)
    refuse_same_file(input_path, output)
    if resume and input_path == "-":
        raise RunRefused("--resume needs an input file: standard input cannot be checked against the interrupted run.")
    manifest = {
        "work_format": WORK_FORMAT,
        "input": input_fingerprint(input_path) if input_path != "-" else {"path": "-", "size": None,
                                                                          "mtime_ns": None, "head_tail_sha256": None},
        "options": {"text_column": text_column, "id_column": id_column, "received_column": received_column,
                    "channel_column": channel_column,
                    "plan": plan_mode, "encoding": encoding, "keep_pii": keep_pii, "output_format": fmt_out,
                    "store": store is not None},
        "model_version": model_version or (Path(model_dir).name if model_dir else None),
    }
    work = WorkFolder(_work_dir(output), fmt_out)
    with _writing(output, work):
        output.parent.mkdir(parents=True, exist_ok=True)
        shutil.rmtree(work.path.with_name(work.path.name + ".trash"), ignore_errors=True)  # a run killed while cleaning up
        if work.path.exists() and not resume:
            _discard(work.path)
        if work.path.exists():
            done = _resume_state(work, manifest, output)
        else:
            work.path.mkdir()
            _atomic_json(work.path / MANIFEST, manifest)
            done = []
    skip = sum(c.rows for c in done)
    summary = TagSummary(resumed_rows=skip)
    for c in done:  # the summary counts the whole file, resumed rows included
        summary.rows += c.rows
        summary.errors += c.errors
        summary.risk_levels.update(c.risk_levels)
    bar = Progress(count_rows(input_path, encoding) if progress else None, progress)
    bar.update(skip)
    start = time.time()
    kw = dict(text_column=text_column, plan_mode=plan_mode, received_column=received_column, keep_pii=keep_pii,
              channel_column=channel_column)
    number = len(done)

    if store is not None:  # create or upgrade the schema once, before any worker writes
        from pipeline.apps.store import CaseStore

        CaseStore(store.database_url).close()

    def chunks() -> Iterator[tuple[pd.DataFrame, int, bool]]:
        """(rows, first row's position, whether its chunk file is the first, which carries a CSV header)"""
        numbers = iter(range(len(done) + 1, sys.maxsize))
        seen = 0
        first = True
        for chunk in iter_chunks(input_path, chunksize=chunksize, encoding=encoding):
            if first:
                first = False
                if ERROR_COLUMN not in chunk.columns:  # a first chunk of broken JSONL lines has no columns to check
                    require_column(input_path, chunk.columns, text_column)
                if received_column:
                    require_column(input_path, chunk.columns, received_column, "received-date", "--received-column")
                if channel_column:
                    require_column(input_path, chunk.columns, channel_column, "channel", "--channel-column")
            if seen + len(chunk) <= skip and skip:
                seen += len(chunk)
                continue
            start = seen
            if seen < skip:
                chunk = chunk.iloc[skip - seen:]
                start = skip
            seen = start + len(chunk)
            yield chunk.reset_index(drop=True), start, next(numbers) == 1
        if seen < skip:
            raise RunRefused(f"cannot resume {output}: its work folder holds {skip} rows, the input only {seen}; "
                             "run without --resume to start again.")

    def consume(tagged: TaggedChunk) -> None:
        nonlocal number
        number += 1
        with _writing(output, work):
            _write_chunk(work, number, tagged)
        summary.rows += tagged.rows
        summary.errors += tagged.errors
        summary.risk_levels.update(tagged.risk_levels)
        bar.update(tagged.rows)

    try:
        if jobs > 1 and model_dir:
            import multiprocessing as mp

            global _WORKER_MODEL
            if sys.platform != "win32":
                # fork after the model and jieba's dictionary are loaded: workers share those pages
                model.triage(["预热"])
                _WORKER_MODEL = model
                ctx, args = mp.get_context("fork"), (os.getpid(), None)
            else:
                ctx, args = mp.get_context("spawn"), (os.getpid(), model_dir)
            init = _worker_start
            tasks = ((c, row, kw, store, fmt_out, first) for c, row, first in chunks())
            with _fewer_collections(), closing(_in_workers(ctx, jobs, init, args, tasks)) as tagged_chunks:
                for tagged in tagged_chunks:
                    consume(tagged)
        else:
            with _fewer_collections():
                for chunk, first_row, first in chunks():
                    consume(_tag_chunk(model, chunk, first_row, kw, store, fmt_out, first))
    except (CaseFileError, RunRefused):
        if number == 0:  # the file was refused before any row: leave nothing behind
            _discard_quietly(work.path)
        raise
    bar.close()
    if number == 0:
        _discard_quietly(work.path)
        raise CaseFileError(f"{input_path}: no rows to tag.")
    with _writing(output, work):
        _assemble(work, _scan(work)[0], output)
        _discard(work.path)
    summary.seconds = time.time() - start
    return summary
