"""Prometheus counters and latency histograms, kept in process (one set per worker)."""
from __future__ import annotations

import threading

__all__ = ["Metrics", "LATENCY_BUCKETS"]

LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)


class Metrics:
    """Counts requests, predictions and errors; `render` gives the Prometheus text format."""

    def __init__(self) -> None:
        self.lock = threading.Lock()
        self.requests: dict[tuple[str, str, int], int] = {}
        self.latency: dict[str, list[int]] = {}
        self.latency_sum: dict[str, float] = {}
        self.latency_count: dict[str, int] = {}
        self.predictions: dict[str, int] = {}
        self.errors: dict[str, int] = {}
        self.reloads = 0

    def observe(self, route: str, method: str, status: int, seconds: float) -> None:
        with self.lock:
            key = (route, method, status)
            self.requests[key] = self.requests.get(key, 0) + 1
            buckets = self.latency.setdefault(route, [0] * len(LATENCY_BUCKETS))
            for i, b in enumerate(LATENCY_BUCKETS):
                if seconds <= b:
                    buckets[i] += 1
            self.latency_sum[route] = self.latency_sum.get(route, 0.0) + seconds
            self.latency_count[route] = self.latency_count.get(route, 0) + 1
            if status >= 500:
                self.errors[f"http_{status}"] = self.errors.get(f"http_{status}", 0) + 1

    def predicted(self, level: str) -> None:
        with self.lock:
            self.predictions[level] = self.predictions.get(level, 0) + 1

    def error(self, kind: str) -> None:
        with self.lock:
            self.errors[kind] = self.errors.get(kind, 0) + 1

    def reloaded(self) -> None:
        with self.lock:
            self.reloads += 1

    def render(self, version: str | None) -> str:
        def lbl(**kw) -> str:
            return "{" + ",".join(f'{k}="{str(v).replace(chr(92), chr(92) * 2).replace(chr(34), chr(92) + chr(34))}"'
                                  for k, v in kw.items()) + "}"

        out = ["# HELP tousu_requests_total HTTP requests by route, method and status.",
               "# TYPE tousu_requests_total counter"]
        with self.lock:
            for (route, method, status), n in sorted(self.requests.items()):
                out.append(f"tousu_requests_total{lbl(route=route, method=method, status=status)} {n}")
            out += ["# HELP tousu_request_seconds Request latency.", "# TYPE tousu_request_seconds histogram"]
            for route, buckets in sorted(self.latency.items()):
                for b, n in zip(LATENCY_BUCKETS, buckets):
                    out.append(f"tousu_request_seconds_bucket{lbl(route=route, le=b)} {n}")
                out.append(f"tousu_request_seconds_bucket{lbl(route=route, le='+Inf')} {self.latency_count[route]}")
                out.append(f"tousu_request_seconds_sum{lbl(route=route)} {self.latency_sum[route]:.6f}")
                out.append(f"tousu_request_seconds_count{lbl(route=route)} {self.latency_count[route]}")
            out += ["# HELP tousu_predictions_total Notes scored, by predicted risk level.",
                    "# TYPE tousu_predictions_total counter"]
            for level in ("low", "medium", "high"):
                out.append(f"tousu_predictions_total{lbl(risk_level=level)} {self.predictions.get(level, 0)}")
            out += ["# HELP tousu_errors_total Server-side errors by kind.", "# TYPE tousu_errors_total counter"]
            for kind, n in sorted(self.errors.items()):
                out.append(f"tousu_errors_total{lbl(kind=kind)} {n}")
            out += ["# HELP tousu_model_reloads_total Successful model reloads.", "# TYPE tousu_model_reloads_total counter",
                    f"tousu_model_reloads_total {self.reloads}"]
        out += ["# HELP tousu_model_info The loaded model version (1 when one is loaded).", "# TYPE tousu_model_info gauge",
                f"tousu_model_info{lbl(version=version or '')} {1 if version else 0}"]
        return "\n".join(out) + "\n"
