"""``GET <base>metrics`` (Prometheus text format) and ``GET <base>metrics/history`` (JSON rates).

Owns: these two ROOT routes, their access rule and the scrape-time collector that reads the
server's own statistics (store, flusher, queries, links, uploads, upload links, mail,
replication, process) when Prometheus asks, so nothing is computed between scrapes.
Must not: count requests (``edge.services.metrics.Recorder`` does, via the app hook), change
any state, or put unbounded label values in the exposition other than bucket and replication
names (both are few on a device, chosen by the operator).
Reads other rooms only through what they already expose (``outbox.list()``, ``Replication.info()``
and ``.diagnostics.hourly()``); a room that is missing or fails is left out of the scrape.

Access (``EDGE_METRICS_ACCESS``): ``token`` (default) needs, when authentication is enabled, a
full-access token or a scrape-only one (``"$metrics"`` in its read list: it can read nothing
else); ``open`` serves anyone (for a Prometheus on the local network without a token). With
authentication disabled both are open.
"""

from __future__ import annotations

import logging
import shutil
from typing import Callable, Iterator, TypeVar

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector

from ..auth.policy import ReadMetrics
from ..errors import InvalidInputError, NotReadyError
from ..services.metrics import Recorder
from ..services.replication import ReplicationService
from .context import AppContext, authorize
from .request import json_response
from .routing import Route
from ..server.types import Request, Response

log = logging.getLogger("edge.metrics")


def _gauge(name: str, doc: str, value: float, labels: dict[str, str] | None = None) -> GaugeMetricFamily:
    if labels:
        g = GaugeMetricFamily(name, doc, labels=list(labels))
        g.add_metric(list(labels.values()), value)
        return g
    return GaugeMetricFamily(name, doc, value=value)


def _counter(name: str, doc: str, value: float) -> CounterMetricFamily:
    return CounterMetricFamily(name, doc, value=value)


T = TypeVar("T")


def _stats(statistics: Callable[[], T]) -> T | None:
    """A room's ``statistics()``, or None when it fails: it must never break a scrape."""
    try:
        return statistics()
    except Exception:
        log.exception("%r failed", statistics)
        return None


class ServerCollector:
    """Reads ``ctx`` at scrape time; registered once per recorder registry."""

    def __init__(self, ctx: AppContext):
        self.ctx = ctx

    def collect(self) -> Iterator[Metric]:
        ctx = self.ctx
        storage = ctx.storage
        recorder = ctx.metrics
        yield _counter("edge_records_written", "Records written (all write paths)", storage.records_written)
        yield _counter("edge_record_bytes_written", "Payload bytes of records written", storage.bytes_written)
        yield _counter("edge_records_read", "Records served by reads, batches and link downloads",
                       recorder.records_read)
        yield _counter("edge_record_bytes_read", "Payload bytes served by record reads", recorder.bytes_read)

        fs = _stats(ctx.flusher.statistics)
        if fs is not None:
            yield _counter("edge_fsync", "fdatasync rounds of the group commit", fs.syncs)
            yield _counter("edge_fsync_seconds", "Time spent in fsync rounds (the latency histogram is "
                           "edge_fsync_duration_seconds)", fs.sync_seconds_total)
            yield _counter("edge_fsync_waiters", "Writers acknowledged after a group commit", fs.waiters_served)
            yield _counter("edge_fsync_failures", "Failed fsync rounds", fs.failures)

        yield from self._buckets()
        if recorder is not None:
            rec_w = CounterMetricFamily("edge_bucket_records_written", "Records written per bucket since start",
                                        labels=["bucket"])
            bytes_w = CounterMetricFamily("edge_bucket_written_bytes", "Payload bytes written per bucket since start",
                                          labels=["bucket"])
            for name, (records, nbytes) in sorted(recorder.bucket_writes.items()):
                rec_w.add_metric([name], records)
                bytes_w.add_metric([name], nbytes)
            yield rec_w
            yield bytes_w

        qs = _stats(ctx.queries.statistics)
        if qs is not None:
            g = GaugeMetricFamily("edge_open_queries", "Queries currently registered", labels=["scope"])
            g.add_metric(["entry"], qs.entry_queries)
            g.add_metric(["bucket"], qs.bucket_queries)
            yield g
            yield _counter("edge_queries_opened", "Queries created", qs.opened)
            yield _counter("edge_queries_expired", "Queries dropped by the TTL reaper", qs.reaped)

        yield from self._links()
        yield from self._rooms()
        yield from self._system_events()
        yield _gauge("edge_damaged_state_files", "Small state files found damaged at start-up and set aside "
                     "(see the log and `edge check`)", len(ctx.damaged))
        yield from self._torn()

    def _torn(self) -> Iterator[Metric]:
        torn = self.ctx.engine.torn
        yield _gauge("edge_torn_files", "Torn tails kept by recovery (<block>.torn-<n>)", len(torn))
        yield _gauge("edge_torn_bytes", "Bytes of the torn tails kept by recovery (bound: EDGE_TORN_KEEP_SIZE)",
                     torn.bytes)
        yield _counter("edge_torn_files_removed", "Torn tails removed since start because the kept ones "
                       "exceeded EDGE_TORN_KEEP_SIZE (oldest first)", torn.removed_files)
        yield _counter("edge_torn_removed_bytes", "Bytes of the torn tails removed since start beyond the bound",
                       torn.removed_bytes)

    def _system_events(self) -> Iterator[Metric]:
        events = self.ctx.events
        if events is None:
            return
        st = events.statistics()
        yield _counter("edge_system_events_written", "$system events written", st["written"])
        yield _counter("edge_system_events_dropped", "$system events dropped because the queue was full",
                       st["dropped"])
        yield _counter("edge_system_events_write_failures", "$system events that could not be written "
                       "(disk full, quota)", st["write_failures"])
        yield _gauge("edge_system_events_queued", "$system events waiting for the writer", st["queued"])

    def _buckets(self) -> Iterator[Metric]:
        engine = self.ctx.engine
        size = GaugeMetricFamily("edge_bucket_size_bytes", "Bucket size incl. metadata", labels=["bucket"])
        quota = GaugeMetricFamily("edge_bucket_quota_bytes", "Bucket quota (0 = none)", labels=["bucket", "quota_type"])
        entries = GaugeMetricFamily("edge_bucket_entries", "Entries per bucket", labels=["bucket"])
        for name in engine.bucket_names():
            try:
                b = engine.get_bucket(name)
                info = b.info()
            except Exception:   # removed between listing and reading
                continue
            size.add_metric([name], info.size)
            qt = b.settings.quota_type.name
            quota.add_metric([name, qt], b.settings.quota_size or 0)
            entries.add_metric([name], info.entry_count)
        yield size
        yield quota
        yield entries
        try:
            du = shutil.disk_usage(self.ctx.config.data_path)
            yield _gauge("edge_disk_total_bytes", "Size of the file system holding the data folder", du.total)
            yield _gauge("edge_disk_free_bytes", "Free bytes on the file system holding the data folder", du.free)
        except OSError:
            pass
        es = _stats(engine.statistics)
        if es is not None:
            yield _gauge("edge_store_open_files", "Files the store holds open", es["open_fds"])

    def _links(self) -> Iterator[Metric]:
        try:
            recs = self.ctx.links.list()
            yield _counter("edge_link_downloads", "Counted downloads over all share links",
                           sum(r.downloads for r in recs))
            yield _gauge("edge_links", "Share links known (any state)", len(recs))
        except Exception:
            log.exception("link statistics failed")
        ul = _stats(self.ctx.upload_links.statistics)
        if ul is not None:
            yield _gauge("edge_upload_links", "Upload links known (any state)", ul.get("links", 0))
            yield _counter("edge_upload_link_files", "Files accepted through upload links", ul.get("files", 0))
            yield _counter("edge_upload_link_bytes", "Bytes announced by uploads through upload links",
                           ul.get("bytes", 0))
            yield _counter("edge_upload_link_refused", "Uploads refused by upload links", ul.get("refused", 0))

    def _rooms(self) -> Iterator[Metric]:
        uploads = self.ctx.uploads
        yield _gauge("edge_uploads_in_progress", "tus uploads staged", len(uploads.staging.uploads))
        yield _counter("edge_uploads_expired", "tus uploads removed by the reaper", uploads.expired)
        mail = self.ctx.mail
        g = GaugeMetricFamily("edge_mail_outbox", "Mails in the outbox by state", labels=["state"])
        counts: dict[str, int] = {"queued": 0, "sending": 0, "sent": 0, "failed": 0}
        try:
            for m in mail.outbox.list():
                counts[str(m.state)] = counts.get(str(m.state), 0) + 1
        except Exception:
            log.exception("mail outbox statistics failed")
        for state, n in sorted(counts.items()):
            g.add_metric([state], n)
        yield g
        yield _gauge("edge_mail_enabled", "1 when a mail host is configured", int(mail.enabled))
        yield from self._replication(self.ctx.replication)

    def _replication(self, svc: ReplicationService) -> Iterator[Metric]:
        reps = svc.replications
        pending = GaugeMetricFamily("edge_replication_pending_records", "Records waiting in the replication log",
                                    labels=["replication"])
        active = GaugeMetricFamily("edge_replication_active", "1 when the replication reaches its destination",
                                   labels=["replication"])
        ok = GaugeMetricFamily("edge_replication_ok_last_hour", "Records replicated in the last hour (the API's "
                               "window; graph rate(edge_replication_records_total))", labels=["replication"])
        errored = GaugeMetricFamily("edge_replication_errors_last_hour", "Records that failed in the last hour",
                                    labels=["replication"])
        ok_total = CounterMetricFamily("edge_replication_records", "Records replicated since start",
                                       labels=["replication"])
        err_total = CounterMetricFamily("edge_replication_errors", "Records that failed to replicate since start, by "
                                        "the destination's status (0: no answer)", labels=["replication", "status"])
        for name, rep in sorted(reps.items()):
            try:
                info = rep.info()
                diag = rep.diagnostics
                hourly = diag.hourly()
            except Exception:
                log.exception("replication statistics of %s failed", name)
                continue
            pending.add_metric([str(name)], info.get("pending_records", 0))
            active.add_metric([str(name)], int(bool(info.get("is_active"))))
            ok.add_metric([str(name)], hourly.get("ok", 0))
            errored.add_metric([str(name)], hourly.get("errored", 0))
            ok_total.add_metric([str(name)], diag.total_ok)
            for status, n in sorted(diag.total_errors.items()):
                err_total.add_metric([str(name), str(status)], n)
        yield from (pending, active, ok, errored, ok_total, err_total)


def _recorder(ctx: AppContext) -> Recorder:
    rec = ctx.metrics
    if not rec.collectors_registered:
        rec.registry.register(ServerCollector(ctx))
        try:
            ProcessCollector(registry=rec.registry)     # process_resident_memory_bytes, process_open_fds ...
        except Exception:  # pragma: no cover - non-Linux
            pass
        rec.collectors_registered = True
    return rec


def _check_access(req: Request, ctx: AppContext, rec: Recorder) -> None:
    if rec.access != "open":
        authorize(req, ctx, ReadMetrics())


# GET <base>metrics
async def metrics(req: Request, ctx: AppContext) -> Response:
    rec = _recorder(ctx)
    _check_access(req, ctx, rec)
    body = generate_latest(rec.registry)
    return Response(200, [("content-type", CONTENT_TYPE_LATEST), ("cache-control", "no-store")], body)


# GET <base>metrics/history[?span=15m|24h]  (the console's rate charts)
async def history(req: Request, ctx: AppContext) -> Response:
    rec = _recorder(ctx)
    _check_access(req, ctx, rec)
    span = req.query.get("span") or "15m"
    if span not in ("15m", "24h"):
        raise InvalidInputError(f"Unknown span '{span}': use 15m or 24h")
    return json_response(rec.history(span), headers=[("cache-control", "no-store")])


ROUTES = [
    Route("GET", "metrics", metrics),
    Route("GET", "metrics/history", history),
]
