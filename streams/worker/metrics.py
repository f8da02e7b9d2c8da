"""Prometheus metrics of one worker, served at GET /metrics with Faust's own (prometheus_client,
in a registry of the worker's own so several workers in one process never mix).

Three kinds:
- recorded where things happen (``WorkerMetrics``): dead letters by topic and reason, event ->
  profile latency (arrival time and event time), micro-batch sizes, encoder seconds, alerts by rule,
  and each user micro-batch's seconds by stage (``StageClock``: slow batches are logged with them);
- read when scraped (``StateCollector``): the worker's counters (``WorkerStats``), index size,
  encoder cache, learned-head versions, broker reachability, consumer lag per input partition;
- the garbage collector's passes per generation (prometheus_client's ``GCCollector``) and the
  objects frozen out of them once the worker was ready (streams/worker/heap.py).
"""

from __future__ import annotations

import logging
import time
from dataclasses import asdict
from typing import TYPE_CHECKING, Callable, Iterator

from prometheus_client import CollectorRegistry, Counter, Gauge, GCCollector, Histogram
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, Metric

if TYPE_CHECKING:  # the app module builds both; only its type is needed here
    from streams.worker.app import Worker

log = logging.getLogger(__name__)
PREFIX = "interest_stream"
# Counters of WorkerStats that are not event counts.
_NOT_COUNTERS = {"recovered_after_s", "last_applied_at"}
LATENCY_BUCKETS = (0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
STAGE_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0)
EVENT_TIME_BUCKETS = (1.0, 10.0, 60.0, 600.0, 3600.0, 6 * 3600.0, 86400.0, 7 * 86400.0, 30 * 86400.0)


def reason_class(reason: str) -> str:
    """A dead letter's reason as one of a few labels (the full reason is in the dead letter)."""
    text = reason.lower()
    for needle, label in (("stored state of user", "state_unreadable"), ("unknown item", "unknown_item"), ("in the future", "future_ts"),
                          ("not valid json", "malformed"), ("expected a json object", "malformed"),
                          ("empty message", "malformed"), ("on the topic for", "wrong_topic"),
                          ("webhook", "webhook"), ("unreadable", "malformed")):
        if needle in text:
            return label
    return "invalid_field"


class WorkerMetrics:
    def __init__(self, registry: CollectorRegistry | None = None) -> None:
        self.registry = r = registry or CollectorRegistry()
        GCCollector(registry=r)
        self.dead_letters = Counter(f"{PREFIX}_dead_letters", "Records refused, by source topic and reason",
                                    ["topic", "reason"], registry=r)
        self.event_to_profile = Histogram(
            f"{PREFIX}_event_to_profile_seconds", "From a user record's arrival at the broker to its profile being sent",
            buckets=LATENCY_BUCKETS, registry=r)
        self.event_time_to_profile = Histogram(
            f"{PREFIX}_event_time_to_profile_seconds", "From a user event's own ts to its profile being sent",
            buckets=EVENT_TIME_BUCKETS, registry=r)
        self.batch_records = Histogram(f"{PREFIX}_batch_records", "Records per micro-batch handed to a handler",
                                       ["agent"], buckets=(1, 2, 4, 8, 16, 32, 64, 128, 256, 512, 1024), registry=r)
        self.encode_seconds = Histogram(f"{PREFIX}_encode_seconds", "Encoder time per micro-batch",
                                        buckets=LATENCY_BUCKETS, registry=r)
        # Offsets are committed only after the batch's state writes are acknowledged; a broker
        # slow to take them (or a producer sending them in many small requests) shows here.
        self.changelog_wait_seconds = Histogram(
            f"{PREFIX}_changelog_wait_seconds", "Wait per user micro-batch for its state writes to be acknowledged (0 when it wrote none)",
            buckets=LATENCY_BUCKETS, registry=r)
        # Set once, when the heap is frozen: gc.get_freeze_count() walks every frozen object (40 ms
        # for the worker's ~550,000), too long for the event loop at every scrape.
        self.gc_frozen_objects = Gauge(f"{PREFIX}_gc_frozen_objects",
                                       "Objects kept out of full garbage collections (frozen once ready)", registry=r)
        self.alerts = Counter(f"{PREFIX}_alerts", "News-sentiment alerts fired, by rule", ["rule"], registry=r)
        # Finer than LATENCY_BUCKETS: most stages take well under a millisecond.
        self.stage_seconds = Histogram(f"{PREFIX}_batch_stage_seconds", "Seconds per stage of a user micro-batch",
                                       ["stage"], buckets=STAGE_BUCKETS, registry=r)


class StageClock:
    """Seconds per stage of one micro-batch, into ``histogram`` when done; a batch that took longer
    than ``slow_s`` is logged with its stages, so a stall shows where it went without a profiler."""

    def __init__(self, histogram: Histogram, slow_s: float, clock: Callable[[], float] = time.perf_counter) -> None:
        self.histogram, self.slow_s, self.clock = histogram, slow_s, clock
        self.started = self._last = clock()
        self.stages: dict[str, float] = {}

    def lap(self, stage: str) -> None:
        """The time since the last lap (or the start) was spent in ``stage``."""
        now = self.clock()
        self.stages[stage] = self.stages.get(stage, 0.0) + now - self._last
        self._last = now

    def done(self, records: int) -> float:
        """Observe each stage's seconds; the batch's total (logged when over ``slow_s``, if set)."""
        total = self.clock() - self.started
        for stage, seconds in self.stages.items():
            self.histogram.labels(stage).observe(seconds)
        if self.slow_s and total > self.slow_s:
            log.warning("slow user micro-batch: %.0f ms for %d records (%s)", total * 1000, records,
                        ", ".join(f"{k} {v * 1000:.0f}" for k, v in self.stages.items() if v >= 0.0005))
        return total


class StateCollector:
    """Values read from the worker at scrape time (no second bookkeeping of what it already counts)."""

    def __init__(self, worker: Worker) -> None:
        self.worker = worker

    def collect(self) -> Iterator[Metric]:
        w, ctx = self.worker, self.worker.ctx
        for name, value in asdict(ctx.stats).items():
            if name not in _NOT_COUNTERS:
                yield CounterMetricFamily(f"{PREFIX}_{name}", f"Worker counter {name} (as on /healthz)", value=value)
        if ctx.stats.last_applied_at is not None:  # for an alert on a worker that stopped applying events
            yield _gauge("last_applied_timestamp_seconds", "When a user micro-batch last applied events (Unix time)",
                         ctx.stats.last_applied_at)
        if ctx.stats.recovered_after_s is not None:
            yield _gauge("recovered_after_seconds", "Process start -> tables restored and catalogue indexed",
                         ctx.stats.recovered_after_s)
        yield _gauge("items_indexed", "Items in this worker's FAISS index", len(ctx.index))
        yield _gauge("catalogue_records_read", "Item vectors log records read by the catalogue follower",
                     w.catalogue.records)
        yield CounterMetricFamily(f"{PREFIX}_catalogue_records_malformed", "Item vectors log records the catalogue "
                                  "follower could not index and skipped", value=w.catalogue.malformed)
        followers = [("catalogue", w.catalogue), ("engagements", w.engagements)]
        rebuild = GaugeMetricFamily(f"{PREFIX}_rebuild_seconds", "Seconds the last read of a followed topic from "
                                    "its beginning took to catch up (the index, the engagements)", labels=["state"])
        for name, follower in followers:
            if follower is not None and follower.rebuild_s is not None:
                rebuild.add_metric([name], follower.rebuild_s)
        if ctx.index.ann.build_s is not None:  # the IVF index of a big catalogue
            rebuild.add_metric(["ivf"], ctx.index.ann.build_s)
        yield rebuild
        yield _gauge("index_ivf", "1 when searches use the IVF index (big catalogue), 0 when exact",
                     int(ctx.index.ann.search == "ivf"))
        encoder = ctx.encoder
        yield CounterMetricFamily(f"{PREFIX}_encoder_forward_passes", "Transformer forward passes",
                                  value=encoder.forward_passes)
        yield CounterMetricFamily(f"{PREFIX}_encoder_cache_hits", "Texts served from the encoder's cache",
                                  value=encoder.cache_hits)
        texts = ctx.stats.texts_encoded
        yield _gauge("encoder_cache_hit_ratio", "Share of encoded texts served from the cache",
                     encoder.cache_hits / texts if texts else 0.0)
        head = encoder.heads["sentiment"].online.status()
        yield _gauge("sentiment_head_version", "Version of the learned sentiment head", head["version"])
        yield CounterMetricFamily(f"{PREFIX}_sentiment_head_updates_refused", "Updates the held-back guard refused",
                                  value=head["rejected"])
        rec = w.recommender_status()
        if rec is not None:
            yield _gauge("ranker_version", "Version of the recommender's learned ranker", rec["ranker"]["version"])
            yield CounterMetricFamily(f"{PREFIX}_ranker_updates_refused", "Ranker updates the held-back guard refused",
                                      value=rec["ranker"]["rejected"])
            yield CounterMetricFamily(f"{PREFIX}_engagements_folded", "Engagements folded into popularity and links",
                                      value=rec["engagements"]["engagements"])
        yield _gauge("broker_reachable", "1 when the broker answers the health probe", int(w.broker_health.reachable))
        yield _gauge("ready", "1 when tables are restored, no rebalance runs and the catalogue is current", int(w.ready()))
        lag = GaugeMetricFamily(f"{PREFIX}_consumer_lag", "Input records not yet applied (end offset - committable)",
                                labels=["topic", "partition"])
        for tp, behind in w.app.consumer.input_lag()[0].items():
            lag.add_metric([tp.topic, str(tp.partition)], behind)
        yield lag


def _gauge(name: str, doc: str, value: float) -> GaugeMetricFamily:
    return GaugeMetricFamily(f"{PREFIX}_{name}", doc, value=value)
