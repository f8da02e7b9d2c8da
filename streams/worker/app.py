"""Builds one worker: the Faust app, its topics, tables, agents and timers, the handlers and the
API. The only module that knows all of them; run it with ``faust.Worker(build_worker(s).app)``.

Every agent is the same: take a micro-batch (``micro_batches``), let the offset guard admit its
records (each once, in offset order: ``in_order``), hand them to a handler, and count them as
applied once the handler's table writes and output records are acknowledged by the broker.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import asdict, dataclass, field
from typing import Any, Awaitable, Callable, Sequence

import faust
from faust.sensors.prometheus import setup_prometheus_sensors
from faust.types import EventT

from encoders import FacetEncoder
from encoders.entities import EntityTable
from encoders.topic_clusters import TopicClusters
from index import ItemIndex
from schemas.topics import (
    ALERTS,
    ALERTS_TABLE,
    ENGAGEMENTS,
    ENTITY_STATE_TABLE,
    ENTITY_WINDOWS_TABLE,
    HEADS_TABLE,
    ITEMS,
    MENTIONS,
    NEWS,
    TOPICS,
    USER_TOPICS,
    USERS_REPARTITION,
    USERS_TABLE,
    WATCHERS,
    WATCHERS_TABLE,
    item_vectors_topic,
)
from streams.api import ApiDeps, register_views
from streams.faust_ext import DeliveredTable, count_keys, guarded_consumer, micro_batches
from streams.settings import Settings
from streams.state.drift import DriftMonitor
from streams.state.engagement import Engagements
from streams.state.ranker import OnlineRanker
from streams.state.recommend import Recommender, topic_lookup
from streams.worker.broker_health import BrokerHealth
from streams.worker.catalogue import CatalogueFollower, CatalogueGate, catalogue_snapshot
from streams.worker.context import Outbox, WorkerContext
from streams.worker.engagement import EngagementFollower, snapshot_file
from streams.worker.heads import LearnedHeads
from streams.worker.heap import freeze_heap
from streams.worker.items import ItemHandler
from streams.worker.key_count import KeyCount
from streams.worker.learner import LearnerClient, LearnerSpec
from streams.worker.metrics import StateCollector
from streams.worker.news import NewsHandler, NewsTables
from streams.worker.progress import ProgressLog
from streams.worker.users import UserHandler, carries_text
from streams.worker.webhook import AlertForwarder, Webhook

Handler = Callable[[Sequence[EventT]], Awaitable[None]]


@dataclass
class Worker:
    """One worker's parts: ``app`` for faust.Worker, the rest for tools and tests in-process."""

    app: faust.App
    ctx: WorkerContext
    users: UserHandler
    items: ItemHandler
    news: NewsHandler
    drift: DriftMonitor
    broker_health: BrokerHealth
    catalogue: CatalogueFollower
    catalogue_gate: CatalogueGate
    engagements: EngagementFollower | None = None
    learner: LearnerClient | None = None  # builds the ranking lessons in a process of its own
    user_count: KeyCount = field(init=False)

    def __post_init__(self) -> None:
        self.user_count = KeyCount(lambda: count_keys(self.users.table, should_stop=lambda: self.app.rebalancing))

    def ready(self) -> bool:
        return (self.app.tables.recovery.completed.is_set() and not self.app.rebalancing
                and self.catalogue.caught_up_at is not None and self.catalogue_gate.opened.is_set())

    def health(self) -> dict[str, Any]:
        ctx = self.ctx
        lag, unknown = self.app.consumer.input_lag()
        # degraded: the broker does not answer; the worker keeps retrying and resumes by itself.
        status = "degraded" if not self.broker_health.reachable else "ok" if self.ready() else "starting"
        return {
            "status": status,
            "broker": self.broker_health.to_dict(),
            "uptime_s": round(time.time() - ctx.started_at, 3),
            "items_indexed": len(ctx.index),
            "catalogue_records_read": self.catalogue.records,
            "catalogue_records_malformed": self.catalogue.malformed,  # skipped: the index keeps the item's last good version
            "index_rebuild_s": _rounded(self.catalogue.rebuild_s),
            "catalogue_snapshot": self.catalogue.snapshot,  # taken over at the start; written since
            # User events wait at a start until the catalogue is current (streams/worker/catalogue.py).
            "catalogue_gate": self.catalogue_gate.to_dict(),
            "index": ctx.index.ann.to_dict(),  # exact or IVF search (big catalogues), its last build
            # Counted in a thread, now and then (streams/worker/key_count.py): len() of a RocksDB
            # table walks every key, seconds for a million users.
            **dict(zip(("users", "users_counted_s_ago"), self.user_count.read())),
            "model": ctx.encoder.model_name,
            "device": str(ctx.encoder.device),
            "encoder_dtype": str(ctx.encoder.dtype).removeprefix("torch."),
            "index_on_gpu": ctx.index.use_gpu,
            "encoder_forward_passes": ctx.encoder.forward_passes,
            "encoder_cache_hits": ctx.encoder.cache_hits,
            "sentiment_head": ctx.encoder.heads["sentiment"].online.status(),
            "recommender": self.recommender_status(),
            # What the offset guard dropped or had read again (streams/state/offset_guard.py).
            "input_order": asdict(self.app.consumer.guard.stats),
            # Input records not yet applied, over every assigned partition; None until each one's
            # end is known (unknown -1: the consumer not started, or its assignment changing).
            # 0: caught up with the inputs as last fetched (also with no input partition here).
            "input_lag": {"records": sum(lag.values()) if unknown == 0 and (lag or self.ready()) else None,
                          "partitions": len(lag) + max(0, unknown), "unknown": unknown},
            **asdict(ctx.stats),
        }

    def recommender_status(self) -> dict[str, Any] | None:
        rec, follower = self.ctx.recommender, self.engagements
        if rec is None or follower is None:
            return None
        ranker = rec.ranker.status()  # the steps applied here; lessons built here (in line)
        lessons: dict[str, Any] = {"where": "inline"}
        if self.learner is not None:  # and the lessons the learner processes built
            for key, value in self.learner.proposer_status().items():
                ranker[key] = value if key == "held_back" and self.learner.alive else ranker[key] + value
            lessons = self.learner.status()
        return {"ranker": ranker, "lessons": lessons, "engagements": rec.engagements.status(),
                "engagement_records_read": follower.records, "engagement_records_malformed": follower.malformed,
                "engagements_read": follower.folded,
                # Every worker's kept steps, applied here in the log's order (the same weights everywhere).
                "ranker_steps_applied": follower.steps, "ranker_steps_skipped": follower.steps_skipped,
                "engagements_caught_up": follower.caught_up_at is not None,
                "engagements_rebuild_s": _rounded(follower.rebuild_s), "engagements_snapshot": follower.snapshot}


def _rounded(seconds: float | None) -> float | None:
    return None if seconds is None else round(seconds, 3)


def faust_app(s: Settings, hold: tuple[list[str], asyncio.Event] | None = None) -> faust.App:
    """The Faust app; ``hold``: topics not fetched until the event is set (the catalogue gate)."""
    app = faust.App(
        s.app_id,
        broker=s.broker,
        store=s.store,
        datadir=s.data_dir,
        web_host=s.web_host,
        web_port=s.web_port,
        web_enabled=True,
        topic_partitions=s.partitions,
        broker_session_timeout=s.session_timeout_s,
        # Faust logs an error for a partition not fetched for this long; user partitions are not
        # fetched on purpose while the catalogue gate is closed (up to catalogue_wait_s).
        stream_processing_timeout=max(300.0, s.catalogue_wait_s + 60.0),
        broker_heartbeat_interval=min(3.0, s.session_timeout_s / 3),
        producer_max_batch_size=s.producer_max_batch_bytes,
        topic_replication_factor=1,
        autodiscover=False,
        consumer_auto_offset_reset="earliest",
        Table=DeliveredTable,
        table_standby_replicas=s.standby_replicas,
        canonical_url=s.canonical_url or f"http://{s.web_host}:{s.web_port}",
    )
    # Agents apply each input record once and in offset order, and commit only what they have
    # applied and delivered (streams/faust_ext/consumer.py: Faust can otherwise skip records).
    app.transport.Consumer = guarded_consumer(s.fetch_max_wait_ms, hold, s.bootstrap)
    return app


def build_worker(settings: Settings, encoder: FacetEncoder | None = None) -> Worker:
    s = settings
    encoder = encoder or FacetEncoder(s.encoder)
    # A click is folded in with its item's vector from the index: at a start, user records are
    # not fetched until the catalogue is current (CatalogueGate, streams/worker/catalogue.py).
    user_topics = [t.name for t in (*USER_TOPICS, USERS_REPARTITION)]
    catalogue_current = asyncio.Event()
    users_fetched = asyncio.Event()  # set by the gate: from its opening on, except while it catches up
    app = faust_app(s, hold=(user_topics, users_fetched))
    raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
    topics = {t.name: app.topic(t.name, **raw) for t in TOPICS}
    vectors = item_vectors_topic(s.app_id)  # created compacted with the other topics (streams/cli.py)
    topics[vectors] = app.topic(vectors, **raw)
    ctx = WorkerContext(
        settings=s,
        encoder=encoder,
        index=ItemIndex(encoder.layout, s.index),
        topics=TopicClusters(s.topic_clusters, encoder.layout["topic"]),
        outbox=Outbox(app.producer),
    )
    r = s.recommend
    if r.enabled:
        ctx.recommender = Recommender(Engagements(r.engagement, topic_lookup(ctx.index)), OnlineRanker(r.ranker), ctx.index,
                                      r.candidates)
    # Plain JSON documents (no Faust model type: recovery decodes them without one).
    schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
    heads = LearnedHeads(ctx, None)  # its table needs its changelog callback first
    heads.table = app.Table(HEADS_TABLE, schema=schema, on_changelog_event=heads.on_changelog)
    heads.table.on_recover(heads.restore)
    items = ItemHandler(ctx, vectors, heads)
    recovered: dict[str, float] = {}

    def mark_recovered(what: str) -> None:
        """recovered_after_s: process start -> tables restored and the catalogue indexed; then the
        heap is frozen (streams/worker/heap.py)."""
        recovered.setdefault(what, time.time())
        if len(recovered) == 2 and ctx.stats.recovered_after_s is None:
            ctx.stats.recovered_after_s = round(max(recovered.values()) - ctx.started_at, 3)
            # Start-up is over: keep full collections off its ~550,000 objects.
            ctx.metrics.gc_frozen_objects.set(freeze_heap(s.gc_young_threshold))

    async def tables_restored() -> None:
        mark_recovered("tables")

    heads.table.on_recover(tables_restored)
    catalogue = CatalogueFollower(s.bootstrap, vectors, items.index_rows, sum(encoder.layout.values()),
                                  s.fetch_max_wait_ms, on_caught_up=lambda: mark_recovered("catalogue"), index=ctx.index,
                                  snapshots=catalogue_snapshot(s.snapshot_folder, s.app_id, ctx.index) if s.catalogue_snapshot_s else None,
                                  snapshot_every_s=s.catalogue_snapshot_s)
    app.task(catalogue.run)
    gate = CatalogueGate(s.bootstrap, s.app_id, ITEMS.name, catalogue, s.catalogue_wait_s, opened=catalogue_current,
                         fetching=users_fetched)
    app.task(gate.run)
    engagements = None
    if ctx.recommender is not None:
        # The behaviour facet starts an item's vectors from its text in the index, so engagements
        # are folded once the catalogue is current too.
        engagements = EngagementFollower(s.bootstrap, ENGAGEMENTS.name, ctx.recommender, s.fetch_max_wait_ms,
                                         after=gate.opened.wait, snapshot_every_s=r.snapshot_every_s,
                                         snapshots=snapshot_file(s.snapshot_folder, s.app_id, r.engagement, encoder.layout)
                                         if r.snapshot_every_s else None)
        app.task(engagements.run)
    entities = EntityTable.from_csv(s.alerts.tickers_file or None)
    drift = DriftMonitor(encoder.layout, s.drift_window)
    # User states in their own binary format (InterestState.to_bytes: read and written per user per
    # micro-batch). A table takes its serializers from key_type and value_type, not from its schema.
    states = faust.Schema(key_type=str, key_serializer="json", value_type=bytes, value_serializer="raw")
    learner = None
    if ctx.recommender is not None and r.lessons == "process":
        learner = LearnerClient(LearnerSpec(s, dict(encoder.layout), vectors), after=gate.opened.wait)
        app.task(learner.run)
    users = UserHandler(ctx, app.Table(USERS_TABLE, schema=states, key_type=str, value_type=bytes), heads, entities, drift,
                        catalogue=gate, learner=learner)
    if learner is not None:
        learner.publish = users.publish_step
    a = s.alerts
    news = NewsHandler(ctx, NewsTables(
        entity_state=app.Table(ENTITY_STATE_TABLE, schema=schema),
        # Event time: mentions are produced with the news item's ts as their timestamp.
        windows=app.Table(ENTITY_WINDOWS_TABLE, schema=schema, default=list)
        .hopping(a.window_s, a.step_s, expires=a.expires_s).relative_to_stream(),
        watchers=app.Table(WATCHERS_TABLE, schema=schema),
        alerts=app.Table(ALERTS_TABLE, schema=schema),
    ), entities)

    progress = ProgressLog(ctx.stats, s.log_every_batches, s.log_format)

    async def in_order(batch: Sequence[EventT], handle: Handler) -> None:
        """``handle`` gets the events the offset guard admits (each input record once, in offset
        order per partition) and must have awaited its table writes when it returns; once its
        output records are acknowledged too, the events count as applied and may be committed."""
        events = await app.consumer.admit(batch)
        if events:
            await handle(events)
            await ctx.outbox.confirmed()
        app.consumer.applied(events)
        progress.batch_done()

    def agent(channel: faust.ChannelT, name: str, handle: Handler, max_: int = s.batch_max,
              text: Callable[[EventT], bool] | None = None) -> None:
        """``text``: which events the encoder reads (at most batch_max_texts of them a batch)."""
        async def run(stream: faust.StreamT) -> None:
            async for batch in micro_batches(stream, max_, s.batch_wait_ms / 1000.0, s.batch_max_texts, text):
                ctx.metrics.batch_records.labels(name).observe(len(batch))
                await in_order(batch, handle)

        app.agent(channel, name=name)(run)

    agent(app.topic(*user_topics, **raw), "user-events", users.handle, text=carries_text)
    # Every item and news record is a text to encode; mentions and watchers are not.
    texts_max = min(s.batch_max, s.batch_max_texts)
    agent(topics[ITEMS.name], "item-events", items.handle, texts_max)
    agent(topics[NEWS.name], "news-events", news.handle_news, texts_max)
    agent(app.topic(MENTIONS.name, WATCHERS.name, **raw), "entity-events", news.handle_entities)
    if a.webhook_url:
        forwarder = AlertForwarder(ctx, Webhook(a.webhook_url, a.webhook_attempts))

        async def alert_webhook(stream: faust.StreamT) -> None:
            # One alert at a time: a webhook that is down holds up this agent alone.
            async for event in stream.events():
                await in_order([event], forwarder.handle)

        app.agent(topics[ALERTS.name], name="alert-webhook")(alert_webhook)

    broker_health = BrokerHealth(s.bootstrap)
    app.timer(s.health_probe_s, name="broker-probe")(broker_health.probe)
    worker = Worker(app, ctx, users, items, news, drift, broker_health, catalogue, gate, engagements, learner)
    # GET /metrics: ours and, when asked for (they cost CPU per record), Faust's own sensors; its
    # setup then serves the page (same registry), otherwise register_views does.
    if s.faust_metrics:
        setup_prometheus_sensors(app, registry=ctx.metrics.registry, name_prefix="faust")
    ctx.metrics.registry.register(StateCollector(worker))
    # Requests about a user are answered by the worker owning the user's partition (of any user
    # topic: they are co-partitioned).
    register_views(app, ApiDeps(ctx, users, news, drift, worker.health, route_topic=topics[USER_TOPICS[0].name]),
                   metrics_page=not s.faust_metrics)
    return worker
