"""Load check for the scoring service (a script, not a test).

Starts `uvicorn pipeline.apps.service:app_factory` in a subprocess on loopback,
sends single-note POST /v1/triage requests from this process with N threads
for D seconds, and prints requests per second and p50/p99 latency.

    python bench/load_check.py                       # 30 s at concurrency 4, promoted model
    python bench/load_check.py --seconds 10 --concurrency 8 --workers 2
    python bench/load_check.py --database off        # without the case store, for the ratio

The notes are the bundled sample (data/sample/notes.csv) plus the seed case,
sent round robin. Uses the registry in $TOUSU_MODELS_DIR (default models/).
"""
from __future__ import annotations

import argparse
import contextlib
import http.client
import json
import os
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
SEED = ("客户李先生(68岁)上门投诉，其爱人王某于2004年3月购买公司红双喜A款保单，所交保费45000元，"
        "08年9月因急需用钱选择退保，所退保费51142.75元。客户对退保现金价值十分不满，坚持购买时业务人员"
        "并未对退保损失做任何说明，属于公司欺骗行为，要求公司给予退保差额的50%(¥2459.79)作为补偿。"
        "客户情绪冲动，称如果公司不予解决将做媒体曝光。")


def notes() -> list[str]:
    out = [SEED]
    sample = ROOT / "data" / "sample" / "notes.csv"
    if sample.exists():
        import csv

        with open(sample, encoding="utf-8-sig", newline="") as fh:
            out += [r["text"] for r in csv.DictReader(fh) if r.get("text", "").strip()]
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(port: int, proc: subprocess.Popen, timeout: float = 120) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        if proc.poll() is not None:
            sys.exit(f"the service exited with {proc.returncode} before it was ready")
        try:
            c = http.client.HTTPConnection("127.0.0.1", port, timeout=2)
            c.request("GET", "/readyz")
            if c.getresponse().status == 200:
                return
        except OSError:
            pass
        time.sleep(0.2)
    sys.exit("the service was not ready in time")


@contextlib.contextmanager
def running_service(prefix: str, workers: int = 1, database: str | None = None):
    """The service on a free loopback port, ready; stopped on exit. Its per-request log goes to a
    file, never an unread pipe (a full pipe blocks the service). Yields (port, process).

    `database`: "off" (no case store), a URL, or None for a throwaway SQLite store, so a benchmark
    never fills the user's real case store."""
    port = free_port()
    cmd = [sys.executable, "-m", "uvicorn", "pipeline.apps.service:app_factory", "--factory", "--host", "127.0.0.1",
           "--port", str(port), "--workers", str(workers), "--no-access-log", "--log-level", "warning"]
    log_file = tempfile.NamedTemporaryFile(prefix=prefix, suffix=".log", delete=False)
    scratch = tempfile.TemporaryDirectory(prefix=prefix)
    env = {**os.environ, "TOUSU_API_TOKEN": "", "TOUSU_NO_STORE": "1" if database == "off" else "",
           "TOUSU_DATABASE_URL": database if database not in (None, "off") else f"sqlite:///{scratch.name}/cases.db"}
    if workers > 1 and database != "off":  # create the schema once, before the workers race to it
        sys.path.insert(0, str(ROOT))
        from pipeline.apps.store import CaseStore

        CaseStore(env["TOUSU_DATABASE_URL"]).close()
    proc = subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=log_file)
    try:
        wait_ready(port, proc)
        yield port, proc
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
        log_file.close()
        scratch.cleanup()
        print(f"service log: {log_file.name}", file=sys.stderr)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=30)
    ap.add_argument("--concurrency", type=int, default=4)
    ap.add_argument("--workers", type=int, default=1, help="uvicorn worker processes")
    ap.add_argument("--warmup", type=int, default=20, help="requests sent before timing starts")
    ap.add_argument("--database", default=None,
                    help="case store: 'off', a URL, or (default) a throwaway SQLite file")
    args = ap.parse_args()

    with running_service("tousu-load-", args.workers, args.database) as (port, _proc):
        texts = [json.dumps({"text": t}, ensure_ascii=False).encode() for t in notes()]
        headers = {"Content-Type": "application/json"}

        def one(conn: http.client.HTTPConnection, body: bytes) -> tuple[int, float]:
            t0 = time.perf_counter()
            conn.request("POST", "/v1/triage", body=body, headers=headers)
            resp = conn.getresponse()
            resp.read()
            return resp.status, time.perf_counter() - t0

        warm = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
        for i in range(args.warmup):
            one(warm, texts[i % len(texts)])
        warm.close()

        latencies: list[float] = []
        failures = [0]
        lock = threading.Lock()
        stop_at = time.perf_counter() + args.seconds

        def worker(k: int) -> None:
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            mine, bad, i = [], 0, k
            while time.perf_counter() < stop_at:
                try:
                    status, dt = one(conn, texts[i % len(texts)])
                except OSError:
                    conn.close()
                    conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
                    bad += 1
                    continue
                i += 1
                if status == 200:
                    mine.append(dt)
                else:
                    bad += 1
            conn.close()
            with lock:
                latencies.extend(mine)
                failures[0] += bad

        t0 = time.perf_counter()
        threads = [threading.Thread(target=worker, args=(k,)) for k in range(args.concurrency)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        wall = time.perf_counter() - t0
        latencies.sort()
        q = statistics.quantiles(latencies, n=100, method="inclusive") if len(latencies) > 1 else latencies * 99
        result = {"seconds": round(wall, 1), "concurrency": args.concurrency, "workers": args.workers,
                  "requests": len(latencies), "failed": failures[0], "rps": round(len(latencies) / wall, 1),
                  "p50_ms": round(q[49] * 1000, 1), "p99_ms": round(q[98] * 1000, 1), "cpus": os.cpu_count()}
        print(f"{result['requests']} requests in {result['seconds']} s at concurrency {args.concurrency} "
              f"({args.workers} worker(s)): {result['rps']} req/s, p50 {result['p50_ms']} ms, p99 {result['p99_ms']} ms, "
              f"{result['failed']} failed")
        print(json.dumps(result))


if __name__ == "__main__":
    main()
