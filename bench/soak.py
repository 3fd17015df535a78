"""Bounded soak of the scoring service (a script, not a test).

Starts the service on loopback, sends single-note requests at a steady rate
from this (second) process for --seconds, samples the service's resident
memory every 5 s, calls POST /v1/admin/reload half-way through, and every
20 s sends faults: malformed JSON (expect 422), a body over the limit
(expect 413) and a slow client that trickles its body (expect no 5xx and no
stuck worker). Prints requests, status counts, 5xx, memory first/last/max.

    python bench/soak.py --seconds 600 --rate 20
"""
from __future__ import annotations

import argparse
import collections
import http.client
import json
import socket
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load_check import notes, running_service  # noqa: E402


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def post(port: int, path: str, body: bytes, timeout: float = 30) -> int:
    c = http.client.HTTPConnection("127.0.0.1", port, timeout=timeout)
    try:
        c.request("POST", path, body=body, headers={"Content-Type": "application/json"})
        r = c.getresponse()
        r.read()
        return r.status
    finally:
        c.close()


def slow_client(port: int, body: bytes, pause: float = 0.5) -> int | str:
    """Send the headers, then the body a few bytes at a time."""
    s = socket.create_connection(("127.0.0.1", port), timeout=30)
    try:
        head = (f"POST /v1/triage HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                f"Content-Length: {len(body)}\r\n\r\n").encode()
        s.sendall(head)
        for i in range(0, len(body), 8):
            s.sendall(body[i:i + 8])
            time.sleep(pause / 10)
        data = s.recv(200)
        return int(data.split()[1]) if data.startswith(b"HTTP/") else "no answer"
    except OSError as exc:
        return f"closed: {type(exc).__name__}"
    finally:
        s.close()


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--seconds", type=float, default=600)
    ap.add_argument("--rate", type=float, default=20, help="requests per second")
    args = ap.parse_args()
    statuses: collections.Counter = collections.Counter()
    faults: list[tuple[str, object]] = []
    memory: list[float] = []
    with running_service("tousu-soak-") as (port, proc):
        bodies = [json.dumps({"text": t}, ensure_ascii=False).encode() for t in notes()]
        start = time.perf_counter()
        stop = start + args.seconds
        lock = threading.Lock()
        reload_result: dict = {}

        def sender(k: int, n: int) -> None:
            i, interval = k, n / args.rate
            next_at = start + k / args.rate
            while next_at < stop:
                time.sleep(max(0.0, next_at - time.perf_counter()))
                try:
                    st = post(port, "/v1/triage", bodies[i % len(bodies)])
                except OSError:
                    st = "connection error"
                with lock:
                    statuses[st] += 1
                i += n
                next_at += interval

        threads = [threading.Thread(target=sender, args=(k, 4)) for k in range(4)]
        for t in threads:
            t.start()
        last_fault = last_mem = start
        reloaded = False
        while time.perf_counter() < stop:
            now = time.perf_counter()
            if now - last_mem >= 5:
                memory.append(round(rss_mb(proc.pid), 1))
                last_mem = now
            if not reloaded and now - start >= args.seconds / 2:
                c = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
                c.request("POST", "/v1/admin/reload")
                r = c.getresponse()
                reload_result = {"status": r.status, "body": json.loads(r.read() or b"{}")}
                reloaded = True
            if now - last_fault >= 20:
                faults.append(("malformed JSON", post(port, "/v1/triage", b'{"text": "broken')))
                faults.append(("huge body", post(port, "/v1/triage", b'{"text": "' + "很".encode() * 600_000 + b'"}')))
                faults.append(("slow client", slow_client(port, bodies[0][:200])))
                last_fault = now
            time.sleep(0.2)
        for t in threads:
            t.join()
        five = sum(v for k, v in statuses.items() if isinstance(k, int) and k >= 500)
        fault_summary = collections.Counter(f"{name} -> {st}" for name, st in faults)
        result = {"seconds": args.seconds, "rate": args.rate, "requests": sum(statuses.values()),
                  "statuses": {str(k): v for k, v in statuses.items()}, "5xx": five, "reload": reload_result,
                  "rss_mb_first": memory[0] if memory else None, "rss_mb_last": memory[-1] if memory else None,
                  "rss_mb_max": max(memory) if memory else None, "faults": dict(fault_summary)}
        print(json.dumps(result, ensure_ascii=False, indent=1))


if __name__ == "__main__":
    main()
