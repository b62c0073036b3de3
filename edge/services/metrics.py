"""Metrics as a Trio room: the request recorder the app calls per response, and the rate sampler.

Owns: the ``Recorder`` (``AppContext.metrics``): per-route request counters, latency
histograms and byte counters (prometheus_client objects in a private ``CollectorRegistry`` per
server, never the global one), the fsync latency histogram (fed by the flusher), per-bucket
write counters (fed by the storage write hook), the "records read" counter derived from read
responses, and a bounded history of rates (``history()``) for the console's charts: every few
seconds for the last 15 minutes, every minute for the last 24 hours, in total and per bucket.
Must not: import ``edge.http`` or format the exposition (``edge.http.metrics`` does), read
request bodies, or put unbounded values (ids, entry names, tokens) into label values: labels are
the handler's name, the method, the status and (for the per-bucket series) the bucket name.

What is counted as it happened, not as it was announced: received bytes are the body bytes a
handler actually read (``Body.received``), not the declared ``Content-Length``; sent bytes and
the latency of a streamed answer are taken when its last chunk was handed to the connection
(or when the connection gave up on it), not when the handler returned.

Hook (``edge/http/app.py``): after every routed response,
``ctx.metrics.observe(req, response, handler, started, body)``; ``handler`` is the
route's handler function (None when nothing matched), ``started`` the ``time.perf_counter()``
of the request head, ``body`` the request body as the front gave it (before any decoding wrapper). A streamed
answer comes back as a callback: the app wraps its body in ``MeteredBody(body, finish)``.
"""

from __future__ import annotations

import logging
import platform
import re
import sys
import time
from collections import deque
from functools import partial
from typing import TYPE_CHECKING, AsyncIterable, AsyncIterator, Callable, Generic, Protocol, TypeVar

import trio
from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, disable_created_metrics

from edge import API_VERSION, __version__

if TYPE_CHECKING:
    from edge.config import Config
    from edge.services.storage import WrittenMeta
    from edge.store import Engine
    from .commit import Flusher
    from .storage import StorageService



class _Segment(Protocol):   # edge.server.types.FileSegment (this room must not import the server)
    @property
    def length(self) -> int: ...


Chunk = bytes | bytearray | memoryview | _Segment
C = TypeVar("C", bound=Chunk)   # the chunks of one body, as its iterator yields them


class _Received(Protocol):  # the request body (edge.server.types.Body)
    @property
    def received(self) -> int: ...


class _Answer(Protocol):    # what is read of a response (edge.server.types.Response)
    status: int
    headers: list[tuple[str, str]]

    @property
    def body(self) -> object: ...
    @property
    def content_length(self) -> int | None: ...


class _Method(Protocol):    # the request (edge.server.types.Request)
    @property
    def method(self) -> str: ...


# No ``*_created`` series: they double the exposition and nobody on a device graphs them.
disable_created_metrics()

log = logging.getLogger("edge.metrics")

SAMPLE_INTERVAL_S = 5.0
FINE_SPAN_S = 15 * 60            # the fine history covers this much
COARSE_INTERVAL_S = 60.0
COARSE_SAMPLES = 24 * 60         # one day at one minute
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)
FSYNC_BUCKETS = (0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5)
_V2_RECORD = re.compile(r"x-reduct-\d+-\d+$")
# Handlers whose 200/206 answer carries exactly one record.
_SINGLE_RECORD = {"edge.http.records.read_record", "edge.http.link_download.download", "edge.http.links.get_link"}
_BATCH_READ = {"edge.http.batch.read_batch", "edge.http.io_query.read_io_batch", "edge.http.queries.read_batch"}
_RATE_KEYS = ("records_written", "bytes_written", "records_read", "bytes_read")


def route_name(handler: object) -> str:
    if handler is None:
        return "unmatched"
    module = getattr(handler, "__module__", "") or ""
    name = getattr(handler, "__name__", "handler")
    return f"{module.rsplit('.', 1)[-1]}.{name}"


def _full_name(handler: object) -> str:
    return f"{getattr(handler, '__module__', '')}.{getattr(handler, '__name__', '')}"


def _response_bytes(response: _Answer) -> int:
    if response.content_length is not None:
        return int(response.content_length)
    body = response.body
    return len(body) if isinstance(body, (bytes, bytearray, memoryview)) else 0


def _chunk_size(chunk: Chunk) -> int:
    if isinstance(chunk, (bytes, bytearray)):
        return len(chunk)
    if isinstance(chunk, memoryview):
        return chunk.nbytes
    return int(chunk.length)      # a FileSegment (sent with sendfile)


def _records_in(response: _Answer) -> int:
    n = 0
    for name, _ in response.headers:
        lname = name.lower()
        if lname.startswith("x-reduct-time-") or (_V2_RECORD.match(lname) and not lname.startswith("x-reduct-error")):
            n += 1
    return n


def read_counts(method: str, status: int, handler: object, response: _Answer) -> tuple[int, int]:
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


class MeteredBody(Generic[C]):
    """A streamed response body that reports, once, how many bytes went out and when it ended."""

    __slots__ = ("_inner", "_it", "_sent", "_done")

    def __init__(self, inner: AsyncIterable[C], done: Callable[[int], None]):
        self._inner = inner
        self._it: AsyncIterator[C] | None = None
        self._sent = 0
        self._done: Callable[[int], None] | None = done

    def __aiter__(self) -> "MeteredBody[C]":
        return self

    async def __anext__(self) -> C:
        if self._it is None:
            self._it = self._inner.__aiter__()
        try:
            chunk = await self._it.__anext__()
        except StopAsyncIteration:
            self._finish()
            raise
        self._sent += _chunk_size(chunk)
        return chunk

    def _finish(self) -> None:
        done, self._done = self._done, None
        if done is not None:
            done(self._sent)

    async def aclose(self) -> None:
        try:
            close = getattr(self._it if self._it is not None else self._inner, "aclose", None)
            if close is not None:
                await close()
        finally:
            self._finish()


class Recorder:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=False)
        self.requests = Counter("edge_http_requests", "HTTP requests answered, by route, method and status",
                                ["route", "method", "status"], registry=self.registry)
        self.latency = Histogram("edge_http_request_duration_seconds",
                                 "Time from the request head until the answer was handed to the connection "
                                 "(streamed bodies: their last chunk)",
                                 ["route"], buckets=LATENCY_BUCKETS, registry=self.registry)
        self.bytes_in = Counter("edge_http_received_bytes", "Request body bytes received (read by the handler)",
                                ["route"], registry=self.registry)
        self.bytes_out = Counter("edge_http_sent_bytes", "Response body bytes handed to the connection",
                                 ["route"], registry=self.registry)
        self.fsync = Histogram("edge_fsync_duration_seconds", "Duration of one group-commit fsync round",
                               buckets=FSYNC_BUCKETS, registry=self.registry)
        build = Gauge("edge_build_info", "Always 1; the labels say which build is running",
                      ["version", "api_version", "python", "arch", "build"], registry=self.registry)
        build.labels(__version__, API_VERSION, platform.python_version(), platform.machine() or "unknown",
                     "onefile" if getattr(sys, "frozen", False) else "python").set(1)
        self.records_read = 0
        self.bytes_read = 0            # payload bytes of record reads (single, batch, link downloads)
        # Per bucket: [records written, payload bytes written] (fed by the storage write hook).
        self.bucket_writes: dict[str, list[int]] = {}
        self.started = time.time()
        self.interval_s = SAMPLE_INTERVAL_S
        self._fine: deque[dict] = deque(maxlen=int(FINE_SPAN_S / SAMPLE_INTERVAL_S))
        self._coarse: deque[dict] = deque(maxlen=COARSE_SAMPLES)
        self._last: dict | None = None
        self._last_coarse: dict | None = None
        self.access = "token"
        self.collectors_registered = False

    # --- feeds -------------------------------------------------------------------------------

    def on_write(self, bucket: str, entry: str, ts_us: int, record: WrittenMeta) -> None:
        """Storage write hook: ``record`` is ``(size, content_type, labels)``; returns no Durability."""
        counts = self.bucket_writes.get(bucket)
        if counts is None:
            counts = self.bucket_writes[bucket] = [0, 0]
        counts[0] += 1
        counts[1] += int(record[0])
        return None

    def on_fsync(self, seconds: float) -> None:
        self.fsync.observe(max(0.0, seconds))

    def observe(self, req: _Method, response: _Answer, handler: object, started: float,
                body: _Received | None = None) -> Callable[[int], None] | None:
        """Count an answer. None when it is counted in full now (HEAD, a body of bytes); else the
        callback of its streamed body: the caller wraps it, ``MeteredBody(response.body, finish)``,
        and its latency and bytes are taken when the last chunk went out."""
        route = route_name(handler)
        status = response.status
        self.requests.labels(route, req.method, str(status)).inc()
        received = body.received if body is not None else 0
        if received:
            self.bytes_in.labels(route).inc(received)
        reads, _ = read_counts(req.method, status, handler, response)   # bytes: counted as sent, below
        self.records_read += reads

        def finish(sent: int) -> None:
            self.latency.labels(route).observe(max(0.0, time.perf_counter() - started))
            if sent:
                self.bytes_out.labels(route).inc(sent)
                if reads:
                    self.bytes_read += sent

        payload = response.body
        if req.method == "HEAD":
            finish(0)
            return None
        if isinstance(payload, (bytes, bytearray, memoryview)):
            finish(_chunk_size(payload))
            return None
        return finish

    # --- history for the console ------------------------------------------------------------

    def _snapshot(self, storage: StorageService, engine: Engine | None, now: float) -> dict:
        sizes: dict[str, int] = {}
        if engine is not None:
            for name in engine.bucket_names():
                try:
                    sizes[name] = int(engine.get_bucket(name).size)
                except Exception:   # removed between listing and reading
                    continue
        for gone in [b for b in self.bucket_writes if b not in sizes]:
            del self.bucket_writes[gone]
        return {"t": now, "records_written": storage.records_written,
                "bytes_written": storage.bytes_written,
                "records_read": self.records_read, "bytes_read": self.bytes_read,
                "buckets": {name: (self.bucket_writes.get(name, (0, 0))[0], self.bucket_writes.get(name, (0, 0))[1], size)
                            for name, size in sizes.items()}}

    @staticmethod
    def _rates(last: dict, cur: dict) -> dict:
        dt = max(1e-6, cur["t"] - last["t"])
        out: dict[str, object] = {"t": round(cur["t"], 3)}
        for k in _RATE_KEYS:
            out[k + "_per_s"] = round(max(0, cur[k] - last[k]) / dt, 3)
        buckets = {}
        for name, (records, nbytes, size) in cur["buckets"].items():
            before = last["buckets"].get(name, (records, nbytes, size))
            buckets[name] = {"records_written_per_s": round(max(0, records - before[0]) / dt, 3),
                             "bytes_written_per_s": round(max(0, nbytes - before[1]) / dt, 3), "size": size}
        out["buckets"] = buckets
        return out

    def sample(self, storage: StorageService, now: float | None = None, engine: Engine | None = None) -> None:
        now = time.time() if now is None else now
        cur = self._snapshot(storage, engine, now)
        last, self._last = self._last, cur
        if last is not None:
            self._fine.append(self._rates(last, cur))
        if self._last_coarse is None:
            self._last_coarse = cur
        elif now - self._last_coarse["t"] >= COARSE_INTERVAL_S:
            self._coarse.append(self._rates(self._last_coarse, cur))
            self._last_coarse = cur

    def history(self, span: str = "15m") -> dict:
        if span == "24h":
            return {"interval_s": COARSE_INTERVAL_S, "samples": list(self._coarse)}
        return {"interval_s": self.interval_s, "samples": list(self._fine)}

    async def run_sampler(self, storage: StorageService, *, task_status: trio.TaskStatus[None] = trio.TASK_STATUS_IGNORED,
                          interval_s: float = SAMPLE_INTERVAL_S, engine: Engine | None = None) -> None:
        self.interval_s = interval_s
        self._fine = deque(maxlen=max(2, int(FINE_SPAN_S / interval_s)))
        self.sample(storage, engine=engine)
        task_status.started()
        while True:
            await trio.sleep(interval_s)
            self.sample(storage, engine=engine)


async def start(nursery: trio.Nursery, engine: Engine, storage: StorageService, flusher: Flusher,
                config: Config) -> Recorder:
    """Room starter: the recorder, its feeds and its sampler task."""
    recorder = Recorder()
    recorder.access = config.metrics_access
    storage.write_hooks.append(recorder.on_write)
    flusher.sync_observers.append(recorder.on_fsync)
    interval = config.metrics_sample_s
    await nursery.start(partial(recorder.run_sampler, storage, interval_s=interval, engine=engine))
    return recorder
