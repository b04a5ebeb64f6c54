"""Health and metrics over HTTP: ``/healthz`` and ``/metrics`` in the Prometheus text format (0.0.4).

A few counters, gauges and histograms, written by the ingest threads and rendered on request; small
enough not to need a client library.
"""

from __future__ import annotations

import bisect
import threading
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

# Seconds: batch write latency and publish-to-commit lag (the target is p99 < 1 s).
LATENCY_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 0.75, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)


class Histogram:
    """Cumulative-bucket histogram; ``observe`` is called from one thread (the writer)."""

    def __init__(self, buckets: tuple[float, ...] = LATENCY_BUCKETS) -> None:
        self.buckets = buckets
        self.counts = [0] * (len(buckets) + 1)
        self.sum = 0.0
        self.count = 0

    def observe(self, value: float) -> None:
        self.counts[bisect.bisect_left(self.buckets, value)] += 1
        self.sum += value
        self.count += 1

    def observe_many(self, values: list[float]) -> None:
        counts, buckets = self.counts, self.buckets
        for v in values:
            counts[bisect.bisect_left(buckets, v)] += 1
        self.sum += sum(values)
        self.count += len(values)

    def quantile(self, q: float) -> float:
        """Upper bound of the bucket holding quantile ``q`` (inf when beyond the last bucket)."""
        if not self.count:
            return 0.0
        target, running = q * self.count, 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            if running >= target:
                return bound
        return float("inf")

    def render(self, name: str, help_text: str) -> list[str]:
        lines = [f"# HELP {name} {help_text}", f"# TYPE {name} histogram"]
        running = 0
        for bound, n in zip((*self.buckets, float("inf")), self.counts, strict=True):
            running += n
            le = "+Inf" if bound == float("inf") else repr(bound)
            lines.append(f'{name}_bucket{{le="{le}"}} {running}')
        lines += [f"{name}_sum {self.sum!r}", f"{name}_count {self.count}"]
        return lines


def counter(name: str, help_text: str, value: float) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} counter", f"{name} {_num(value)}"]


def gauge(name: str, help_text: str, value: float) -> list[str]:
    return [f"# HELP {name} {help_text}", f"# TYPE {name} gauge", f"{name} {_num(value)}"]


def labelled_counter(name: str, help_text: str, label: str, values: dict[str, int]) -> list[str]:
    lines = [f"# HELP {name} {help_text}", f"# TYPE {name} counter"]
    for key in sorted(values):
        escaped = key.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
        lines.append(f'{name}{{{label}="{escaped}"}} {values[key]}')
    return lines


def _num(v: float) -> str:
    return str(int(v)) if float(v).is_integer() else repr(float(v))


class MetricsServer:
    """Serves ``/metrics`` (``render()``) and ``/healthz`` (``health()`` -> (ok, detail)) on a thread."""

    def __init__(self, addr: str, render: Callable[[], str], health: Callable[[], tuple[bool, str]]) -> None:
        host, _, port = addr.rpartition(":")
        if not port.isdigit():
            raise ValueError(f"metrics address must be host:port, got {addr!r}")

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                if self.path.split("?")[0] == "/metrics":
                    status, ctype, body = 200, "text/plain; version=0.0.4; charset=utf-8", render()
                elif self.path.split("?")[0] == "/healthz":
                    ok, detail = health()
                    status, ctype, body = (200 if ok else 503), "text/plain; charset=utf-8", detail + "\n"
                else:
                    status, ctype, body = 404, "text/plain; charset=utf-8", "not found: try /metrics or /healthz\n"
                data = body.encode()
                self.send_response(status)
                self.send_header("Content-Type", ctype)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer((host or "127.0.0.1", int(port)), Handler)
        self.httpd.daemon_threads = True
        self._thread = threading.Thread(target=self.httpd.serve_forever, name="ingest-metrics", daemon=True)

    @property
    def port(self) -> int:
        return int(self.httpd.server_address[1])

    def start(self) -> MetricsServer:
        self._thread.start()
        return self

    def stop(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()
