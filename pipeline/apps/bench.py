"""Benchmarks that print figures: throughput against the tokenisation limit,
latency, cold start, training time and peak memory. Run by `tousu bench`.

Everything is measured in one run on this machine, so the ratio of
end-to-end to raw jieba throughput compares like with like.
"""
from __future__ import annotations

import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import pandas as pd


def machine() -> dict:
    cpu = platform.processor() or "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {"cpu": cpu, "cores": os.cpu_count(), "python": platform.python_version(), "platform": platform.platform()}


def bench_notes(n: int, seed: int = 4242) -> pd.DataFrame:
    """Realistic notes: the corpus's own notes (every voice and length), drawn with replacement, seeded."""
    from pipeline.model.corpus import load_corpus

    notes = load_corpus()[["text"]].sample(n, replace=True, random_state=seed).reset_index(drop=True)
    return notes.assign(id=[f"b-{i:07d}" for i in range(n)])[["id", "text"]]


def raw_jieba_rate(texts: list[str]) -> float:
    import jieba

    jieba.initialize()
    start = time.perf_counter()
    for t in texts:
        jieba.lcut(t)
    return len(texts) / (time.perf_counter() - start)


def tag_rate(model, model_dir: str, path: Path, jobs: int, rows: int) -> float:
    from pipeline.apps.batch import tag_file

    out = path.with_suffix(f".jobs{jobs}.jsonl")
    start = time.perf_counter()
    tag_file(model, model_dir, str(path), str(out), jobs=jobs, chunksize=500)
    elapsed = time.perf_counter() - start
    out.unlink()
    return rows / elapsed


def latency_ms(model, texts: list[str], calls: int) -> dict:
    from pipeline.flow import triage_notes

    times = []
    for i in range(calls):
        t = texts[i % len(texts)]
        start = time.perf_counter()
        triage_notes(model, [t])
        times.append((time.perf_counter() - start) * 1000)
    q = statistics.quantiles(times, n=100)
    return {"p50": round(q[49], 2), "p95": round(q[94], 2), "p99": round(q[98], 2), "calls": calls}


def cold_start_s(runs: int = 3) -> float:
    """A whole `tousu score` process, start to exit, median of runs."""
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        subprocess.run([sys.executable, "-m", "cli", "score", "--json", "客户称再不退保就去找记者曝光"],
                       check=True, capture_output=True)
        times.append(time.perf_counter() - start)
    return round(statistics.median(times), 2)


def training_s(n: int) -> float:
    from pipeline.model.corpus import load_corpus
    from pipeline.model.triager import Triager

    df = load_corpus().sample(n, replace=n > 4000, random_state=777).reset_index(drop=True)
    start = time.perf_counter()
    Triager().fit(df)
    return round(time.perf_counter() - start, 1)


def _tree_rss_kb(pid: int) -> int:
    """Memory of a process and all its children: proportional set size (shared pages counted once
    across the tree), falling back to RSS where smaps_rollup is not readable."""
    total, todo = 0, [pid]
    while todo:
        p = todo.pop()
        try:
            try:
                text = Path(f"/proc/{p}/smaps_rollup").read_text()
                key = "Pss:"
            except OSError:
                text = Path(f"/proc/{p}/status").read_text()
                key = "VmRSS:"
            for line in text.splitlines():
                if line.startswith(key):
                    total += int(line.split()[1])
                    break
            for task in Path(f"/proc/{p}/task").iterdir():
                kids = (task / "children").read_text().split()
                todo.extend(int(k) for k in kids)
        except (OSError, ValueError):
            continue
    return total


def peak_memory_mb(path: Path, rows: int, jobs: int) -> dict:
    """Peak memory (PSS) of a `tousu tag` process tree, all workers summed, polled every 0.1 s."""
    out = path.with_suffix(".mem.parquet")
    proc = subprocess.Popen([sys.executable, "-m", "cli", "tag", str(path), "-o", str(out), "-q", "--jobs", str(jobs),
                             "--plan", "summary"], stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    peak = 0
    start = time.perf_counter()
    while proc.poll() is None:
        peak = max(peak, _tree_rss_kb(proc.pid))
        time.sleep(0.1)
    elapsed = time.perf_counter() - start
    if proc.returncode != 0:
        raise RuntimeError(proc.stderr.read().decode()[-500:])
    out.unlink(missing_ok=True)
    return {"rows": rows, "jobs": jobs, "peak_pss_mb": round(peak / 1024, 1), "seconds": round(elapsed, 1),
            "rows_per_second": round(rows / elapsed, 1)}


def run(quick: bool = False, out_dir: Path = Path("bench") / "results", memory_rows: int | None = None,
        train_sizes: tuple[int, ...] | None = None, log=print) -> dict:
    from pipeline.model.registry import load_model, promoted_dir

    n = 1000 if quick else 6000
    memory_rows = memory_rows or (5_000 if quick else 1_000_000)
    train_sizes = train_sizes or ((1000,) if quick else (3000, 30000))
    jobs_all = os.cpu_count() or 1
    model, manifest = load_model()
    model.triage(["预热：加载分词词典"])  # jieba's dictionary loads once per process; cold start is measured apart
    model_dir = str(promoted_dir())
    notes = bench_notes(n)
    texts = list(notes["text"])
    result: dict = {"when": datetime.now(timezone.utc).isoformat(timespec="seconds"), "machine": machine(),
                    "model": manifest["version"], "quick": quick, "notes": n,
                    "mean_note_chars": round(notes["text"].str.len().mean(), 1)}
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "notes.jsonl"
        notes.to_json(path, orient="records", lines=True, force_ascii=False)
        log("raw jieba ...")
        result["raw_jieba_notes_per_s"] = round(raw_jieba_rate(texts), 1)
        log("tag, 1 core ...")
        result["tag_notes_per_s_1_core"] = round(tag_rate(model, model_dir, path, 1, n), 1)
        log(f"tag, {jobs_all} cores ...")
        result["tag_notes_per_s_all_cores"] = round(tag_rate(model, model_dir, path, jobs_all, n), 1)
        result["ratio_tag_all_cores_to_raw_jieba"] = round(result["tag_notes_per_s_all_cores"] / result["raw_jieba_notes_per_s"], 3)
        result["ratio_tag_1_core_to_raw_jieba"] = round(result["tag_notes_per_s_1_core"] / result["raw_jieba_notes_per_s"], 3)
        log("single-note latency ...")
        result["latency_ms"] = latency_ms(model, texts, 300 if quick else 2000)
        log("cold start ...")
        result["cold_start_score_s"] = cold_start_s(1 if quick else 3)
        for size in train_sizes:
            log(f"training on {size} notes ...")
            result[f"training_s_{size}"] = training_s(size)
        log(f"peak memory tagging {memory_rows} rows ...")
        big = Path(tmp) / "big.csv"
        with open(big, "w", encoding="utf-8", newline="") as fh:
            fh.write("id,text\n")
            for i in range(memory_rows):
                t = texts[i % len(texts)].replace('"', '""')
                fh.write(f'm{i},"{t}"\n')
        result["memory"] = peak_memory_mb(big, memory_rows, jobs_all)
    out_dir.mkdir(parents=True, exist_ok=True)
    stamp = "quick" if quick else "full"
    (out_dir / f"bench-{stamp}.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    (out_dir / f"bench-{stamp}.md").write_text(markdown(result), encoding="utf-8")
    return result


def markdown(r: dict) -> str:
    m = r["machine"]
    rows = [
        ("raw jieba.lcut", f"{r['raw_jieba_notes_per_s']:,.0f} notes/s"),
        ("tag, 1 core", f"{r['tag_notes_per_s_1_core']:,.0f} notes/s (ratio to raw jieba {r['ratio_tag_1_core_to_raw_jieba']:.2f})"),
        (f"tag, {m['cores']} cores", f"{r['tag_notes_per_s_all_cores']:,.0f} notes/s (ratio to raw jieba {r['ratio_tag_all_cores_to_raw_jieba']:.2f})"),
        ("single-note latency p50 / p95 / p99", f"{r['latency_ms']['p50']} / {r['latency_ms']['p95']} / {r['latency_ms']['p99']} ms ({r['latency_ms']['calls']} calls)"),
        ("cold start of `tousu score`", f"{r['cold_start_score_s']} s"),
    ]
    rows += [(f"training on {k.split('_')[-1]} notes", f"{v} s") for k, v in r.items() if k.startswith("training_s_")]
    mem = r["memory"]
    rows.append((f"peak memory (PSS) tagging {mem['rows']:,} rows ({mem['jobs']} jobs)", f"{mem['peak_pss_mb']} MB ({mem['rows_per_second']:,.0f} rows/s)"))
    lines = [f"# tousu benchmark ({'quick' if r['quick'] else 'full'})", "",
             f"{r['when']}, {m['cpu']}, {m['cores']} cores, Python {m['python']}; model {r['model']}; "
             f"{r['notes']:,} generated notes, mean {r['mean_note_chars']} characters.", "",
             "| figure | value |", "| --- | --- |"] + [f"| {a} | {b} |" for a, b in rows]
    return "\n".join(lines) + "\n"
