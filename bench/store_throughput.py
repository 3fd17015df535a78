"""Write throughput of the case store, SQLite and PostgreSQL side by side (a script, not a test).

Three ways the store is written in production, each timed on each database:
  single      one triage per transaction, one process: what `tousu serve` does per request
  chunked     1,000 triages per transaction: what `tousu tag --store` does per chunk
  concurrent  one triage per transaction from P processes at once (uvicorn --workers P);
              afterwards the rows are counted: nothing may be lost

    python bench/store_throughput.py                      # SQLite in a temp folder + a throwaway PostgreSQL
    python bench/store_throughput.py --postgres postgresql+psycopg://tousu@db/tousu_bench
    python bench/store_throughput.py --n 500 --processes 2 --out bench/results

Each record is a real triage of the seed case by the promoted model (its full
JSON: heads with probabilities, facts, 30-odd plan steps), so row sizes are
what the service writes.
"""
from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import date
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))


def real_result() -> tuple[str, dict, str]:
    from load_check import SEED

    from pipeline.handling.facts import extract_facts
    from pipeline.model.registry import load_model, promoted_dir
    from pipeline.handling.render import plan_to_json
    from pipeline.handling.playbook import plan
    from pipeline.text.normalisation import normalise

    model, manifest = load_model(promoted_dir())
    doc = normalise(SEED)
    t = model.triage([doc])[0]
    facts = extract_facts(doc.text, date(2026, 11, 25))
    return SEED, plan_to_json(t, facts, plan(t, facts, date(2026, 11, 25))), manifest["version"]


def _one_at_a_time(store, prefix: str, n: int, payload: tuple[str, dict, str]) -> tuple[float, float, list[float]]:
    """n single-record transactions: (wall-clock start, end, each write's seconds)."""
    from pipeline.apps.store import TriageRecord

    text, result, version = payload
    lat = []
    began = time.time()
    for i in range(n):
        t0 = time.perf_counter()
        store.record([TriageRecord(f"{prefix}-{i}", text, result, version)])
        lat.append(time.perf_counter() - t0)
    return began, time.time(), lat


def _writer(args) -> tuple[float, float, list[float]]:
    url, payload, worker, n = args
    from pipeline.apps.store import CaseStore

    with CaseStore(url, migrate=False) as store:
        store.counts()  # connect before the clock starts
        return _one_at_a_time(store, f"P{worker}", n, payload)


def measure(url: str, n: int, processes: int, chunk: int, payload: tuple[str, dict, str]) -> dict:
    from pipeline.apps.store import CaseStore, TriageRecord

    text, result, version = payload
    out: dict = {}
    with CaseStore(url) as store:
        began, ended, lat = _one_at_a_time(store, "S", n, payload)
        wall = ended - began
        out["single"] = {"records": n, "seconds": round(wall, 2), "per_second": round(n / wall, 1),
                         "p50_ms": round(statistics.median(lat) * 1000, 2),
                         "p99_ms": round(sorted(lat)[int(0.99 * (len(lat) - 1))] * 1000, 2)}
        total = n * 5
        t0 = time.perf_counter()
        for start in range(0, total, chunk):
            store.record([TriageRecord(f"B-{i}", text, result, version, source="tag")
                          for i in range(start, min(start + chunk, total))])
        wall = time.perf_counter() - t0
        out["chunked"] = {"records": total, "chunk": chunk, "seconds": round(wall, 2), "per_second": round(total / wall, 1)}
        before = store.counts()["triages"]
    per = n // processes
    with mp.get_context("spawn").Pool(processes) as pool:
        runs = pool.map(_writer, [(url, payload, w, per) for w in range(processes)])
    wall = max(r[1] for r in runs) - min(r[0] for r in runs)  # first write to last, process start-up excluded
    flat = sorted(x for r in runs for x in r[2])
    with CaseStore(url) as store:
        written = store.counts()["triages"] - before
    out["concurrent"] = {"processes": processes, "records": per * processes, "seconds": round(wall, 2),
                         "per_second": round(per * processes / wall, 1),
                         "p50_ms": round(statistics.median(flat) * 1000, 2),
                         "p99_ms": round(flat[int(0.99 * (len(flat) - 1))] * 1000, 2),
                         "rows_found": written, "lost": per * processes - written}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--n", type=int, default=2000, help="records for the single and concurrent runs (chunked: 5x)")
    ap.add_argument("--processes", type=int, default=4)
    ap.add_argument("--chunk", type=int, default=1000)
    ap.add_argument("--postgres", help="PostgreSQL URL (an empty database); default: start one with .ci/postgres")
    ap.add_argument("--out", default=str(ROOT / "bench" / "results"))
    args = ap.parse_args()

    payload = real_result()
    row_bytes = len(json.dumps(payload[1], ensure_ascii=False).encode())
    results = {"machine": f"{platform.processor() or platform.machine()}, {mp.cpu_count()} cores",
               "record_json_bytes": row_bytes, "databases": {}}
    with tempfile.TemporaryDirectory() as tmp:
        results["databases"]["sqlite"] = measure(f"sqlite:///{tmp}/bench.db", args.n, args.processes, args.chunk, payload)
    pg_url, pg_dir = args.postgres, None
    if not pg_url:
        proc = subprocess.run([str(ROOT / ".ci" / "postgres"), "start"], capture_output=True, text=True)
        if proc.returncode == 0:
            found = dict(line.split("=", 1) for line in proc.stdout.split())
            pg_url, pg_dir = found["TOUSU_TEST_DATABASE_URL"], found["TOUSU_TEST_PG_DIR"]
        else:
            print(f"PostgreSQL skipped: {proc.stderr.strip()}", file=sys.stderr)
    try:
        if pg_url:
            results["databases"]["postgresql"] = measure(pg_url, args.n, args.processes, args.chunk, payload)
    finally:
        if pg_dir:
            subprocess.run([str(ROOT / ".ci" / "postgres"), "stop", pg_dir], capture_output=True)

    lines = ["# Case store write throughput\n", f"{results['machine']}; one record = {row_bytes:,} bytes of triage JSON "
             "(the seed case) plus masked text.\n",
             "| database | mode | records | records/s | p50 ms | p99 ms | lost |", "|---|---|---|---|---|---|---|"]
    for db, r in results["databases"].items():
        s, c, k = r["single"], r["chunked"], r["concurrent"]
        lines.append(f"| {db} | single (1 per transaction) | {s['records']:,} | {s['per_second']:,.0f} | {s['p50_ms']} | {s['p99_ms']} | |")
        lines.append(f"| {db} | chunked ({c['chunk']:,} per transaction) | {c['records']:,} | {c['per_second']:,.0f} | | | |")
        lines.append(f"| {db} | concurrent ({k['processes']} processes) | {k['records']:,} | {k['per_second']:,.0f} | "
                     f"{k['p50_ms']} | {k['p99_ms']} | {k['lost']} |")
    text = "\n".join(lines) + "\n"
    print(text)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    (out / "store-throughput.json").write_text(json.dumps(results, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    (out / "store-throughput.md").write_text(text, encoding="utf-8")


if __name__ == "__main__":
    main()
