"""Batch tagging on a Dask cluster: many files, or one large file split into partitions.

The model is shipped once per worker (`Client.scatter(..., broadcast=True)`),
each partition is tagged by the same `batch.tag_frame` as the single-process
path, and the output is one file per input partition, in partition order,
with exactly the input rows. Dask is optional: `pip install -e .[dask]`.
"""
from __future__ import annotations

import glob
from dataclasses import dataclass
from pathlib import Path

import pandas as pd

from pipeline.apps.batch import tag_frame
from pipeline.io import CaseFileError, flatten_lists, require_column

SUFFIXES = {".csv": "csv", ".parquet": "parquet", ".pq": "parquet", ".jsonl": "jsonl"}


@dataclass
class DaskSummary:
    rows: int
    errors: int
    partitions: int
    output: str


def resolve_inputs(spec: str) -> tuple[list[str], str]:
    """A folder, a glob or one file -> sorted paths of one format."""
    p = Path(spec)
    if p.is_dir():
        paths = sorted(str(f) for f in p.iterdir() if f.suffix.lower() in SUFFIXES)
    else:
        paths = sorted(glob.glob(spec)) if any(ch in spec for ch in "*?[") else ([spec] if p.exists() else [])
    if not paths:
        raise CaseFileError(f"{spec}: no CSV, JSONL or Parquet files found; give a file, a folder or a quoted glob.")
    kinds = {SUFFIXES.get(Path(x).suffix.lower()) for x in paths}
    if None in kinds or len(kinds) != 1:
        raise CaseFileError(f"{spec}: the Dask engine needs files of one kind (.csv, .jsonl or .parquet), found {sorted(map(str, kinds))}.")
    return paths, kinds.pop()


def _list_schema(meta: pd.DataFrame) -> dict:
    """Arrow types for the added list columns (pandas meta cannot say 'list of strings')."""
    import pyarrow as pa

    strings = ("pred_cause", "pred_cause_name", "pred_cause_group", "pred_risk_flags", "pred_risk_flags_name",
               "pred_mindset", "pred_mindset_name", "review_reasons", "plan_now", "plan_departments", "plan_steps",
               "plan_step_texts", "plan_avoid", "plan_fired", "facts")
    types = {c: pa.list_(pa.string()) for c in strings if c in meta.columns}
    types.update({"pred_cause_proba": pa.list_(pa.float64()), "pred_risk_level": pa.string(),
                  "pred_risk_level_name": pa.string(), "risk_reason": pa.string(), "channel": pa.string(),
                  "review": pa.bool_(), "reply_first_hours": pa.float64(), "decision_due": pa.string(),
                  "plan_owner": pa.string(), "plan_owner_name": pa.string(), "error": pa.string()})
    return {c: t for c, t in types.items() if c in meta.columns}


def _tag_partition(part: pd.DataFrame, model, kw: dict, flat: bool) -> pd.DataFrame:
    out = tag_frame(model, part.reset_index(drop=True), **kw)
    return flatten_lists(out) if flat else out


def tag_with_dask(model, spec: str, output_dir: str, *, out_format: str = "parquet", scheduler: str | None = None,
                  workers: int = 2, text_column: str = "text", plan_mode: str = "summary", keep_pii: bool = False,
                  blocksize: str | None = "64MB") -> DaskSummary:
    try:
        import dask.dataframe as dd
        from dask.distributed import Client, LocalCluster
    except ImportError:
        raise CaseFileError("the Dask engine needs the optional extra: pip install -e '.[dask]'") from None
    import dask

    dask.config.set({"dataframe.convert-string": False})  # keep object columns: lists stay lists
    paths, kind = resolve_inputs(spec)
    if kind == "csv":
        ddf = dd.read_csv(paths, dtype=str, keep_default_na=False, blocksize=blocksize)
    elif kind == "jsonl":
        ddf = dd.read_json(paths, lines=True, blocksize=blocksize, dtype=False)
    else:
        ddf = dd.read_parquet(paths)
    require_column(spec, ddf.columns, text_column)
    kw = dict(text_column=text_column, plan_mode=plan_mode, keep_pii=keep_pii)
    flat = out_format == "csv"
    meta = _tag_partition(ddf._meta_nonempty.head(2), model, kw, flat).iloc[:0]
    cluster = None
    client = Client(scheduler) if scheduler else Client(cluster := LocalCluster(n_workers=workers, threads_per_worker=1, processes=True))
    try:
        shipped = client.scatter(model, broadcast=True)  # once per worker, not once per task
        tagged = ddf.map_partitions(_tag_partition, shipped, kw, flat, meta=meta)
        out = Path(output_dir)
        out.mkdir(parents=True, exist_ok=True)
        if out_format == "csv":
            write = tagged.to_csv(str(out / "part-*.csv"), index=False, encoding="utf-8-sig", compute=False)
        else:
            write = tagged.to_parquet(str(out), write_index=False, compute=False, schema=_list_schema(meta))
        counts = tagged.map_partitions(lambda d: pd.DataFrame({"rows": [len(d)], "errors": [int((d["error"] != "").sum())]}),
                                       meta={"rows": "int64", "errors": "int64"})
        import warnings

        with warnings.catch_warnings():  # to_csv gives delayed writes, counts an expression: dask warns and copes
            warnings.simplefilter("ignore", UserWarning)
            _, counts = dask.compute(write, counts)  # one graph: each partition is tagged once
    finally:
        client.close()
        if cluster is not None:
            cluster.close()
    return DaskSummary(int(counts["rows"].sum()), int(counts["errors"].sum()), ddf.npartitions, str(output_dir))
