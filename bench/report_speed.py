"""How long `tousu report` takes on a large tagged backlog (a script, not a test; nothing is tagged).

Builds N rows shaped like `tousu tag` output (default 100,000): notes from the
bundled corpus, labels drawn from the taxonomy, a year of dates, 30 branches,
12 products, 5 channels, 2% of notes with an unmasked phone number (so the
repeat-complainant path runs the facts extractor) and a planted spike. Then it
runs `python -m cli report FILE -o report.html --by 机构 --by 产品 --by 渠道
--date-column 受理日期` as a separate process, as a user would, and reports
wall and CPU seconds, plus each stage's time in-process.

    python bench/report_speed.py                 # 100,000 rows -> bench/results/report-speed.{json,md}
    python bench/report_speed.py --rows 20000 --out /tmp
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import resource
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

BY = ["机构", "产品", "渠道"]
TARGET_S = 30.0


def tagged_rows(n: int, seed: int = 0) -> pd.DataFrame:
    """n rows shaped like `tousu tag` output (lists `|`-joined as in CSV)."""
    from pipeline.contract.taxonomy import RISK_LEVELS, taxonomy
    from pipeline.model.corpus import train_test

    rng = np.random.default_rng(seed)
    tax = taxonomy()
    train, test = train_test()
    texts = pd.concat([train["text"], test["text"]], ignore_index=True).to_numpy()
    causes, flags, minds = tax.cause_ids, tax.flag_ids, tax.mindset_ids
    w = rng.dirichlet(np.ones(len(causes)))
    main = rng.choice(len(causes), size=n, p=w)
    second = rng.integers(len(causes), size=n)
    text = texts[rng.integers(len(texts), size=n)].astype(object)
    phones = rng.random(n) < 0.02
    pool = [f"13{rng.integers(0, 10)}{rng.integers(10**7, 10**8)}" for _ in range(3000)]
    text[phones] = [f"{t} 联系电话{pool[k]}" for t, k in zip(text[phones], rng.integers(len(pool), size=int(phones.sum())))]
    start = pd.Timestamp("2025-11-01")
    day = rng.integers(365, size=n)
    df = pd.DataFrame({
        "工单号": [f"G{i:07d}" for i in range(n)],
        "text": text,
        "受理日期": (start + pd.to_timedelta(day, unit="D")).strftime("%Y-%m-%d"),
        "机构": [f"第{k + 1}支公司" for k in rng.integers(30, size=n)],
        "产品": [f"产品{k + 1}" for k in rng.integers(12, size=n)],
        "渠道": np.array(["热线", "柜面", "网络", "微信", "监管转办"])[rng.integers(5, size=n)],
        "pred_cause": [f"{causes[a]}|{causes[b]}" if a != b else causes[a] for a, b in zip(main, second)],
        "pred_cause_proba": [f"{p:.4f}|{(1 - p) / 2:.4f}" for p in rng.uniform(0.3, 1, size=n)],
        "pred_cause_group": [tax.group_of(causes[a]) for a in main],
        "pred_risk_level": np.array(RISK_LEVELS)[rng.choice(3, size=n, p=[0.5, 0.3, 0.2])],
        "pred_risk_flags": ["|".join(rng.choice(flags, size=k, replace=False)) for k in rng.choice(3, size=n, p=[0.5, 0.35, 0.15])],
        "pred_mindset": ["|".join(rng.choice(minds, size=k, replace=False)) for k in rng.choice(3, size=n, p=[0.2, 0.5, 0.3])],
        "review": rng.random(n) < 0.2,
        "error": "",
    })
    plant = df.sample(40, random_state=seed).index  # a claims spike at one branch in the last two days
    df.loc[plant, ["机构", "pred_cause", "受理日期"]] = ["第7支公司", "contract_claims", (start + pd.Timedelta(days=364)).strftime("%Y-%m-%d")]
    return df


def stages(path: Path) -> dict[str, float]:
    """Each step of the report in this process, in seconds."""
    from pipeline.apps.report import build_report, prepare
    from pipeline.apps.report_html import render_html
    from pipeline.io import read_table

    out = {}
    t = time.perf_counter()
    df = read_table(path)
    out["read"] = time.perf_counter() - t
    t = time.perf_counter()
    cases = prepare(df, str(path), id_column="工单号", date_column="受理日期", by=BY)
    out["prepare"] = time.perf_counter() - t
    t = time.perf_counter()
    report = build_report(cases)
    out["analyse"] = time.perf_counter() - t
    t = time.perf_counter()
    render_html(report)
    out["render"] = time.perf_counter() - t
    out["alerts"] = len(report.alerts)
    return {k: round(v, 2) if isinstance(v, float) else v for k, v in out.items()}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rows", type=int, default=100_000)
    ap.add_argument("--out", type=Path, default=ROOT / "bench" / "results")
    args = ap.parse_args()
    os.environ.setdefault("TOUSU_SECRET", "bench-only")  # no key file in the user's folder for a benchmark
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "tagged.csv"
        t = time.perf_counter()
        tagged_rows(args.rows).to_csv(src, index=False, encoding="utf-8-sig")
        built = time.perf_counter() - t
        print(f"built {args.rows:,} tagged rows in {built:.1f}s ({src.stat().st_size / 1e6:.0f} MB CSV)", file=sys.stderr)
        cmd = [sys.executable, "-m", "cli", "report", str(src), "-o", str(Path(tmp) / "report.html"), "--id-column", "工单号",
               "--date-column", "受理日期"] + [x for b in BY for x in ("--by", b)]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        t = time.perf_counter()
        proc = subprocess.run(cmd, cwd=ROOT, capture_output=True, text=True)
        wall = time.perf_counter() - t
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if proc.returncode != 0:
            sys.exit(f"tousu report failed ({proc.returncode}): {proc.stderr.strip()}")
        cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
        html_mb = (Path(tmp) / "report.html").stat().st_size / 1e6
        inproc = stages(src)
    load = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    result = {"rows": args.rows, "wall_s": round(wall, 2), "cpu_s": round(cpu, 2), "target_s": TARGET_S,
              "under_target": wall < TARGET_S, "html_mb": round(html_mb, 2), "stages_s": inproc,
              "cores": os.cpu_count(), "load_avg_1m": round(load, 1) if load is not None else None,
              "python": platform.python_version(), "machine": platform.machine(), "command": " ".join(cmd[1:]),
              "last_line": proc.stderr.strip().splitlines()[-1]}
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "report-speed.json").write_text(json.dumps(result, ensure_ascii=False, indent=2), encoding="utf-8")
    md = (f"# tousu report on {args.rows:,} tagged rows\n\n| measure | value |\n| --- | --- |\n"
          f"| wall, whole command (start-up included) | {wall:.1f} s (target < {TARGET_S:.0f} s) |\n"
          f"| CPU, whole command | {cpu:.1f} s |\n"
          + "".join(f"| stage: {k} | {v} s |\n" for k, v in inproc.items() if k != "alerts")
          + f"| alerts | {inproc['alerts']} |\n| HTML size | {html_mb:.1f} MB |\n"
          f"| cores / 1-min load average | {os.cpu_count()} / {result['load_avg_1m']} |\n")
    (args.out / "report-speed.md").write_text(md, encoding="utf-8")
    print(md)


if __name__ == "__main__":
    main()
