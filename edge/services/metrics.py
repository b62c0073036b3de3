"""Metrics as a Trio room: the request recorder the app calls per response, and the rate sampler.

Owns: ``ctx.services["metrics"]`` (a ``Recorder``): per-route request counters, latency
histograms and byte counters (prometheus_client objects in a private ``CollectorRegistry`` per
server, never the global one), the "records read" counter derived from read responses, and a
short history of rates (``history()``) for the console's chart, sampled every few seconds.
Must not: import ``edge.http`` or format the exposition (``edge.http.metrics`` does), read
request bodies, or put unbounded values (ids, entry names, tokens) into label values: labels are
the handler's name, the method and the status only.

Hook (``edge/http/app.py``): after every routed response,
``ctx.services["metrics"].observe(req, response, handler, seconds)``; ``handler`` is the route's
handler function (None when nothing matched), ``seconds`` the time until the handler returned
(streamed bodies are sent after that).
"""

from __future__ import annotations

import logging
import re
import time
from collections import deque
from typing import Any

import trio
from prometheus_client import CollectorRegistry, Counter, Histogram, disable_created_metrics

# No ``*_created`` series: they double the exposition and nobody on a device graphs them.
disable_created_metrics()

log = logging.getLogger("edge.metrics")

SAMPLE_INTERVAL_S = 5.0
HISTORY_SAMPLES = 120            # ten minutes at 5 s
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
_V2_RECORD = re.compile(r"x-reduct-\d+-\d+$")
# Handlers whose 200/206 answer carries exactly one record.
_SINGLE_RECORD = {"edge.http.records.read_record", "edge.http.link_download.download", "edge.http.links.get_link"}
_BATCH_READ = {"edge.http.batch.read_batch", "edge.http.io_query.read_io_batch", "edge.http.queries.read_batch"}


def route_name(handler: Any) -> str:
    if handler is None:
        return "unmatched"
    module = getattr(handler, "__module__", "") or ""
    name = getattr(handler, "__name__", "handler")
    return f"{module.rsplit('.', 1)[-1]}.{name}"


def _full_name(handler: Any) -> str:
    return f"{getattr(handler, '__module__', '')}.{getattr(handler, '__name__', '')}"


def _response_bytes(response: Any) -> int:
    if response.content_length is not None:
        return int(response.content_length)
    body = response.body
    return len(body) if isinstance(body, (bytes, bytearray, memoryview)) else 0


def _records_in(response: Any) -> int:
    n = 0
    for name, _ in response.headers:
        lname = name.lower()
        if lname.startswith("x-reduct-time-") or (_V2_RECORD.match(lname) and not lname.startswith("x-reduct-error")):
            n += 1
    return n


def read_counts(method: str, status: int, handler: Any, response: Any) -> tuple[int, int]:
    """(records, body bytes) a read response serves; (0, 0) for anything that is not a read.

    The one rule of "what is a read", shared by these counters and the ``$system`` usage events."""
    if status not in (200, 206) or handler is None:
        return 0, 0
    full = _full_name(handler)
    nbytes = _response_bytes(response) if method != "HEAD" else 0
    if full in _SINGLE_RECORD and any(n.lower() == "x-reduct-time" or n.lower() == "content-disposition"
                                      for n, _ in response.headers):
        return 1, nbytes
    if full in _BATCH_READ:
        return _records_in(response), nbytes
    return 0, 0


class Recorder:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("edge_http_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("edge_http_request_duration_seconds",
                                 "Time from request head to the handler's answer (body streaming excluded)",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.bytes_in = Counter("edge_http_received_bytes", "Request body bytes declared (Content-Length)",
                                ["route"], registry=self.registry)
        self.bytes_out = Counter("edge_http_sent_bytes", "Response body bytes", ["route"], registry=self.registry)
        self.records_read = 0
        self.bytes_read = 0            # payload bytes of record reads (single, batch, link downloads)
        self.started = time.time()
        self._history: deque[dict] = deque(maxlen=HISTORY_SAMPLES)
        self._last: dict | None = None
        self.interval_s = SAMPLE_INTERVAL_S
        self.access = "token"

    def observe(self, req: Any, response: Any, handler: Any, seconds: float) -> None:
        route = route_name(handler)
        status = response.status
        self.requests.labels(route, req.method, str(status)).inc()
        self.latency.labels(route).observe(max(0.0, seconds))
        length = getattr(req.body, "length", None) if getattr(req, "body", None) is not None else None
        if length:
            self.bytes_in.labels(route).inc(length)
        nbytes = _response_bytes(response)
        if nbytes and req.method != "HEAD":
            self.bytes_out.labels(route).inc(nbytes)
        records, payload = read_counts(req.method, status, handler, response)
        self.records_read += records
        self.bytes_read += payload

    # --- history for the console ------------------------------------------------------------

    def sample(self, storage: Any, now: float | None = None) -> None:
        now = time.time() if now is None else now
        cur = {"t": now, "records_written": getattr(storage, "records_written", 0),
               "bytes_written": getattr(storage, "bytes_written", 0),
               "records_read": self.records_read, "bytes_read": self.bytes_read}
        last = self._last
        self._last = cur
        if last is None:
            return
        dt = max(1e-6, now - last["t"])
        self._history.append({"t": round(now, 3), **{
            k + "_per_s": round((cur[k] - last[k]) / dt, 3)
            for k in ("records_written", "bytes_written", "records_read", "bytes_read")}})

    def history(self) -> dict:
        return {"interval_s": self.interval_s, "samples": list(self._history)}

    async def run_sampler(self, storage: Any, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                          interval_s: float = SAMPLE_INTERVAL_S) -> None:
        self.interval_s = interval_s
        self.sample(storage)
        task_status.started()
        while True:
            await trio.sleep(interval_s)
            self.sample(storage)


async def start(ctx: Any, nursery: trio.Nursery) -> None:
    """Room starter: the recorder on ``ctx.services['metrics']`` and its sampler task."""
    from edge.errors import ConfigError

    recorder = Recorder()
    env = ctx.config.env or {}
    access = (env.get("EDGE_METRICS_ACCESS") or "token").strip().lower()
    if access not in ("open", "token"):
        raise ConfigError(f"EDGE_METRICS_ACCESS must be 'open' or 'token', got {access!r}")
    recorder.access = access
    ctx.services["metrics"] = recorder
    interval = SAMPLE_INTERVAL_S
    text = env.get("EDGE_METRICS_SAMPLE_S")
    if text:
        try:
            interval = max(0.2, float(text))
        except ValueError:
            log.warning("EDGE_METRICS_SAMPLE_S=%r is not a number; using %s", text, SAMPLE_INTERVAL_S)
    await nursery.start(lambda task_status=trio.TASK_STATUS_IGNORED: recorder.run_sampler(
        ctx.storage, task_status=task_status, interval_s=interval))
