"""The Faust app: topics, tables, agents and web views, wired to the encoder and the item index.

Agents stay short: decode -> micro-batch -> encode (off the event loop) -> update tables -> emit.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
import weakref
from concurrent.futures import ThreadPoolExecutor
from contextlib import contextmanager
from typing import Any, Awaitable, Callable, Iterator, Sequence

import faust
import faust.streams
import numpy as np
from faust.types import EventT

from encoders import FacetEncoder, FacetVectors
from index import ItemIndex, UnknownItem
from index.topic_clusters import TopicClusters
from schemas import (
    ClickEvent,
    DeadLetter,
    ForgetEvent,
    InvalidEvent,
    ReviewEvent,
    WatchlistEvent,
    ItemEvent,
    decode_event,
    dump_json,
    load_json,
    pack_vector,
    unpack_vector,
)
from streams.decay import InterestState
from streams.drift import DriftMonitor
from streams.news import NEWS_TABLES, NEWS_TOPICS, NewsPipeline, watcher_record
from streams.profiles import (
    Outcome,
    UserEvent,
    apply_event,
    apply_watchlist,
    check_event_time,
    interest_changes,
    join_facets,
    split_facets,
    to_profile,
)
from streams.broker_health import BrokerHealth
from streams.replay import bootstrap_of
from streams.settings import Settings
from streams.consumer import GuardedConsumer
from streams.tables import DeliveredTable

log = logging.getLogger(__name__)

# Co-partitioned by user id and read by one agent, so a forget is ordered with the user's events.
USER_TOPICS = {"searches": "search", "clicks": "click", "reviews": "review", "forget": "forget",
               "watchlists": "watchlist"}
ITEMS_TOPIC = "items"
PROFILES_TOPIC = "profiles"
DEAD_LETTER_TOPIC = "dead-letters"
TABLES = ("users", "items", "heads")


def app_topics(app_id: str) -> tuple[list[str], list[str]]:
    """(topics the app reads or writes, its tables' changelog topics)."""
    topics = [*USER_TOPICS, ITEMS_TOPIC, PROFILES_TOPIC, DEAD_LETTER_TOPIC, *NEWS_TOPICS]
    return topics, [f"{app_id}-{t}-changelog" for t in (*TABLES, *NEWS_TABLES)]


@contextmanager
def event_context(event: EventT) -> Iterator[None]:
    """Make ``event`` Faust's current event while its table writes happen.

    ``take_events`` hands us a list of events outside Faust's own per-event iteration, so a table
    write would not know which partition's changelog it belongs to ("Cannot modify table key from
    outside of stream iteration", faust-streaming issue #497). Faust records the current event
    in a context variable; setting it per event is what its own iteration does, and keeps each
    changelog record in the source event's partition, which recovery and rebalancing rely on.
    """
    token = faust.streams._current_event.set(weakref.ref(event))
    try:
        yield
    finally:
        faust.streams._current_event.reset(token)


class InterestStreamApp:
    """One worker's app. Build it with settings (and optionally a ready encoder), then run
    ``faust.Worker(interest_app.app)``."""

    def __init__(self, settings: Settings, encoder: FacetEncoder | None = None) -> None:
        self.settings = settings
        self.encoder = encoder or FacetEncoder(settings.encoder)
        self.index = ItemIndex(self.encoder.layout, settings.index)
        self.started_at = time.time()
        self.stats = {
            "events_applied": 0,  # user events folded into a profile
            "user_events_dead_lettered": 0,
            "redelivered_skipped": 0,  # messages already in a user's state (at-least-once delivery)
            "duplicate_skipped": 0,  # event ids already in a user's state (re-sent by a producer)
            "items_applied": 0,
            "dead_lettered": 0,  # all topics
            "users_forgotten": 0,
            "watchlist_events": 0,  # follow/unfollow requests (applied, or already so)
            "batches": 0,
            "encode_calls": 0,  # micro-batches sent to the encoder ...
            "texts_encoded": 0,  # ... and the texts in them
            "recovered_after_s": None,  # process start -> tables restored and index rebuilt
        }
        # One thread: torch already uses every core for one forward pass; the point is only to
        # keep the event loop (consumer fetches, web requests) running while a batch encodes.
        self._encode_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode")
        s = settings
        self.app = faust.App(
            s.app_id,
            broker=s.broker,
            store=s.store,
            datadir=s.data_dir,
            web_host=s.web_host,
            web_port=s.web_port,
            web_enabled=True,
            topic_partitions=s.partitions,
            broker_session_timeout=s.session_timeout_s,
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
        # applied and delivered (streams/consumer.py: Faust can otherwise skip records after recovery).
        self.app.transport.Consumer = GuardedConsumer
        self._unconfirmed: set[asyncio.Future] = set()  # output records sent, not yet acknowledged
        raw = dict(key_type=bytes, value_type=bytes, key_serializer="raw", value_serializer="raw")
        self.user_topic = self.app.topic(*USER_TOPICS, **raw)
        self.forget_topic = self.app.topic("forget", **raw)
        self.watchlist_topic = self.app.topic("watchlists", **raw)
        self.items_topic = self.app.topic(ITEMS_TOPIC, **raw)
        self.profiles_topic = self.app.topic(PROFILES_TOPIC, **raw)
        self.dead_letter_topic = self.app.topic(DEAD_LETTER_TOPIC, **raw)
        # Plain JSON documents (no Faust model type: recovery decodes them without one).
        state_schema = faust.Schema(key_type=str, key_serializer="json", value_serializer="json")
        self.users = self.app.Table(TABLES[0], schema=state_schema)
        # Every worker's FAISS index holds the whole catalogue: its own items partitions come from
        # the item agent (and the rebuild after recovery), the others from their changelogs, which
        # Faust reads as standby replicas (table_standby_replicas; enough for N workers when N - 1).
        self.items = self.app.Table(TABLES[1], schema=state_schema, on_changelog_event=self._on_item_changelog)
        self.items.on_recover(self._rebuild_index)
        # Learned head weights (the sentiment head learns from review ratings), restored at start.
        # The newest version wins wherever it is read from: each write lands in the partition of
        # the review that caused it, so the key can be in several partitions of the changelog.
        self.heads = self.app.Table(TABLES[2], schema=state_schema, on_changelog_event=self._on_head_changelog)
        self.heads.on_recover(self._restore_heads)
        self._item_changes: dict[str, dict[str, Any] | None] = {}
        self.app.timer(0.5, name="item-index-sync")(self._apply_item_changes)
        # API requests about a user go to the worker that owns the user's partition.
        self.route_topic = self.app.topic(next(iter(USER_TOPICS)), **raw)
        self._register_agents()
        self.news = NewsPipeline(self)
        self.drift = DriftMonitor(self.encoder.layout, s.drift_window)
        self.topics = TopicClusters(s.topic_clusters, self.encoder.layout["topic"])
        self._topics_saved_at = 0.0
        self.broker_health = BrokerHealth(bootstrap_of(s.broker))
        self.app.timer(s.health_probe_s, name="broker-probe")(self.broker_health.probe)
        from streams.web import register_views

        register_views(self)

    # -- agents ----------------------------------------------------------------------------------
    def _register_agents(self) -> None:
        wait_s = self.settings.batch_wait_ms / 1000.0

        @self.app.agent(self.user_topic, name="user-events")
        async def user_events(stream: faust.StreamT) -> None:
            async for batch in stream.take_events(self.settings.batch_max, within=wait_s):
                await self.in_order(batch, self.handle_user_batch)

        @self.app.agent(self.items_topic, name="item-events")
        async def item_events(stream: faust.StreamT) -> None:
            async for batch in stream.take_events(self.settings.batch_max, within=wait_s):
                await self.in_order(batch, self.handle_item_batch)

    async def in_order(self, batch: Sequence[EventT], handle: Callable[[Sequence[EventT]], Awaitable[None]]) -> None:
        """Every agent's way in: ``handle`` gets the events the offset guard admits (each input
        record once, in offset order per partition) and must have awaited its table writes when it
        returns; once its other output records are acknowledged too, the events count as applied
        and their offsets may be committed."""
        consumer = self.app.consumer
        events = await consumer.admit(batch)
        if events:
            await handle(events)
            if self._unconfirmed:
                await asyncio.gather(*list(self._unconfirmed))
        consumer.applied(events)

    async def send(self, topic: faust.TopicT, key: bytes | None, value: bytes, **kwargs: Any) -> None:
        """Send an output record; ``in_order`` waits for its acknowledgement before the input
        offsets behind it may be committed."""
        fut = await topic.send(key=key, value=value, **kwargs)
        if not fut.done():
            self._unconfirmed.add(fut)
            fut.add_done_callback(self._unconfirmed.discard)

    async def encode(self, texts: Sequence[str]) -> FacetVectors | None:
        if not texts:
            return None
        self.stats["encode_calls"] += 1
        self.stats["texts_encoded"] += len(texts)
        loop = asyncio.get_running_loop()
        return await loop.run_in_executor(self._encode_pool, self.encoder.encode, list(texts))

    async def handle_user_batch(self, batch: Sequence[EventT]) -> None:
        self.stats["batches"] += 1
        decoded: list[tuple[EventT, UserEvent]] = []
        now = time.time()
        for event in batch:
            record = await self._decode_or_dead_letter(event, USER_TOPICS[event.message.topic])
            if record is None:
                continue
            if isinstance(record, ForgetEvent):
                decoded.append((event, record))
                continue
            try:
                check_event_time(record, self.settings, now)
            except InvalidEvent as exc:
                await self.dead_letter(event, exc.reason)
                continue
            decoded.append((event, record))
        texts = [r.query if r.kind == "search" else r.text for _, r in decoded if r.kind in ("search", "review")]
        vectors = await self.encode(texts)  # one forward pass for the whole micro-batch
        if texts:
            self.topics.observe(vectors.facets["topic"], texts)
        text_rows = iter(range(len(texts)))
        rated: list[tuple[EventT, str, int, int]] = []  # applied reviews: (event, text, row, rating)
        drift_rows: list[np.ndarray] = []  # z of every applied event, read for drift once per batch
        layout = self.encoder.layout
        states: dict[str, InterestState | None] = {}  # None: forgotten in this batch
        last_event: dict[str, EventT] = {}
        watcher_updates: list[tuple[bytes, bytes]] = []
        half_life = self.settings.decay.half_life_s
        for event, record in decoded:
            if isinstance(record, ForgetEvent):
                states[record.user_id], last_event[record.user_id] = None, event
                self.stats["users_forgotten"] += 1
                continue
            if isinstance(record, WatchlistEvent):
                self.stats["watchlist_events"] += 1
                state = self._batch_state(states, event, record.user_id)
                if apply_watchlist(state, record):
                    watcher_updates.append(watcher_record(record.user_id, record.entity, record.op, "watchlist"))
                states[record.user_id], last_event[record.user_id] = state, event
                continue
            if isinstance(record, ClickEvent):
                try:
                    z = join_facets(self.index.vectors(record.item_id), layout)
                except UnknownItem:
                    await self.dead_letter(event, f"click on unknown item_id {record.item_id!r}")
                    continue
            else:
                row = next(text_rows)
                z = join_facets(vectors.row(row), layout)
            state = self._batch_state(states, event, record.user_id)
            msg = event.message
            outcome = apply_event(state, record, z, self.settings, (msg.topic, msg.partition, msg.offset), layout)
            if outcome is not Outcome.APPLIED:
                self.stats[f"{outcome.value}_skipped"] += 1
                continue
            states[record.user_id], last_event[record.user_id] = state, event
            self.stats["events_applied"] += 1
            if isinstance(record, ReviewEvent):
                rated.append((event, record.text, row, record.rating))
            drift_rows.append(z)
            if record.kind != "click":  # entities a user searches for or writes about
                text = record.query if record.kind == "search" else record.text
                state.note_entities(self.news.entity_table.find(text), self.settings.decay.event_weights[record.kind],
                                    record.ts, half_life)
        # One table write and one published profile per user per micro-batch, carrying the state
        # after all of that user's events in it: recovery and profile readers need only the newest
        # state, and under load this saves most of the serialisation and producer work. Offsets
        # are acknowledged only after the whole batch, so a crash re-delivers the batch entirely.
        for user_id, state in states.items():
            if state is not None:
                add, drop = interest_changes(state, state.updated_at, self.settings.alerts.interest_min_weight, half_life)
                watcher_updates += [watcher_record(user_id, e, "add", "interest") for e in add]
                watcher_updates += [watcher_record(user_id, e, "remove", "interest") for e in drop]
            with event_context(last_event[user_id]):
                if state is None:
                    self.users.pop(user_id, None)  # a tombstone in the changelog
                    continue
                self.users[user_id] = state.to_dict()
            if state.empty:  # only watchlist changes so far: no Z to publish
                continue
            profile = self.profile_of(user_id, state)
            await self.send(self.profiles_topic, user_id.encode(), dump_json(profile.to_dict()))
        if drift_rows:
            for labels in self._drift_labels(np.stack(drift_rows), layout):
                self.drift.observe(labels)
        if rated:
            await self._learn_sentiment(rated, vectors)
        if decoded:
            await self._save_topics(decoded[-1][0])
        for key, value in watcher_updates:
            await self.send(self.news.watchers_topic, key, value)
        await self.users.delivered()  # before in_order lets this batch's offsets be committed

    async def handle_item_batch(self, batch: Sequence[EventT]) -> None:
        self.stats["batches"] += 1
        last: dict[str, tuple[EventT, ItemEvent]] = {}  # only the last op per item in a batch matters
        for event in batch:
            record = await self._decode_or_dead_letter(event, "item")
            if record is not None:
                last.pop(record.item_id, None)
                last[record.item_id] = (event, record)
        upserts = [(e, r) for e, r in last.values() if r.op == "upsert"]
        deletes = [(e, r) for e, r in last.values() if r.op == "delete"]
        vectors = await self.encode([r.document for _, r in upserts])
        if upserts:
            self.topics.observe(vectors.facets["topic"], [r.document for _, r in upserts])
            ids = [r.item_id for _, r in upserts]
            metas = [{"title": r.title, "category": r.category} for _, r in upserts]
            self.index.upsert(ids, vectors.facets, metas)
        self.index.delete(r.item_id for _, r in deletes)
        layout = self.encoder.layout
        for i, (event, record) in enumerate(upserts):
            with event_context(event):
                self.items[record.item_id] = {
                    "vector": pack_vector(join_facets(vectors.row(i), layout)),
                    "title": record.title,
                    "category": record.category,
                    "ts": record.ts,
                }
        for event, record in deletes:
            with event_context(event):
                self.items.pop(record.item_id, None)
        if upserts:
            await self._save_topics(upserts[-1][0])
        await self.items.delivered()
        self.stats["items_applied"] += len(last)

    @staticmethod
    def _local_rows(table: faust.Table) -> list[tuple[Any, Any]]:
        """Every (key, value) this worker holds for ``table``, standby partitions included.

        Why: RocksDB's items() lists active partitions only, and a restart replays just the
        changelog tail, so state kept beside the table (the FAISS index, the learned heads) must be
        read back from every local partition. A key may be in several partitions (the heads)."""
        store = table.data
        if hasattr(store, "_visible_items"):  # RocksDB: one database per partition
            return [(load_json(k), load_json(v)) for db in list(store._dbs.values()) for k, v in store._visible_items(db)]
        return list(table.items())

    async def _rebuild_index(self) -> None:
        """After the items table is restored, rebuild FAISS from it (no re-encoding)."""
        count = self._index_items(self._local_rows(self.items))
        self.stats["recovered_after_s"] = round(time.time() - self.started_at, 3)
        log.info("item index rebuilt from the items table: %d items", count)

    async def _restore_heads(self) -> None:
        """The learned sentiment head and the discovered topics, newest version wins (with the
        memory store the changelog replay has done this already; loading again changes nothing)."""
        for key, value in self._local_rows(self.heads):
            await self._load_head(key, value)

    async def _learn_sentiment(self, rated: list[tuple[EventT, str, int, int]], vectors: FacetVectors) -> None:
        """Review ratings are labels for the sentiment head; a kept update is stored as a new version."""
        rows = vectors.facets["topic"][[r for _, _, r, _ in rated]]
        loop = asyncio.get_running_loop()
        changed = await loop.run_in_executor(  # the encode thread: never mid-way through an encode
            self._encode_pool, self.encoder.learn_sentiment, [t for _, t, _, _ in rated], rows, [r for *_, r in rated])
        if changed:
            with event_context(rated[-1][0]):
                self.heads["sentiment"] = self.encoder.heads["sentiment"].online.to_dict()
            await self.heads.delivered()

    async def _save_topics(self, event: EventT, every_s: float = 10.0) -> None:
        """Store the discovered topics at most every ``every_s`` (a few tens of kB each time)."""
        if time.time() - self._topics_saved_at < every_s or not self.topics.counts:
            return
        self._topics_saved_at = time.time()
        with event_context(event):
            self.heads["topics"] = self.topics.to_dict()
        await self.heads.delivered()

    async def _on_head_changelog(self, event: EventT) -> None:
        msg = event.message
        if msg.value:
            await self._load_head(load_json(msg.key), load_json(msg.value))

    async def _load_head(self, key: str, value: dict[str, Any]) -> None:
        if key == "topics":
            self.topics.load(value)
        elif key == "sentiment":
            loop = asyncio.get_running_loop()  # the encode thread: never mid-way through an encode
            await loop.run_in_executor(self._encode_pool, self.encoder.heads["sentiment"].online.load, value)

    async def _on_item_changelog(self, event: EventT) -> None:
        """An items changelog record read by this worker (a standby partition, or recovery)."""
        msg = event.message
        self._item_changes[load_json(msg.key)] = load_json(msg.value) if msg.value else None

    async def _apply_item_changes(self) -> None:
        changes, self._item_changes = self._item_changes, {}
        if changes:
            self._index_items(list(changes.items()))

    def _index_items(self, rows: list[tuple[str, dict[str, Any] | None]]) -> int:
        """Upsert (value) or delete (None) items in the FAISS index, in one batch each."""
        upserts = [(i, v) for i, v in rows if v is not None]
        if upserts:
            vectors = np.stack([unpack_vector(v["vector"]) for _, v in upserts])
            metas = [{"title": v.get("title", ""), "category": v.get("category", "")} for _, v in upserts]
            self.index.upsert([i for i, _ in upserts], split_facets(vectors, self.encoder.layout), metas)
        self.index.delete(i for i, v in rows if v is None)
        return len(upserts)

    # -- helpers ---------------------------------------------------------------------------------
    async def _decode_or_dead_letter(self, event: EventT, kind: str) -> Any:
        try:
            return decode_event(event.value, kind)
        except InvalidEvent as exc:
            await self.dead_letter(event, exc.reason)
            return None

    async def dead_letter(self, event: EventT, reason: str) -> None:
        msg = event.message
        raw = event.value if isinstance(event.value, bytes) else b""
        letter = DeadLetter(reason, msg.topic, msg.partition, msg.offset, base64.b64encode(raw).decode(), time.time())
        await self.send(self.dead_letter_topic, msg.key, dump_json(letter.to_dict()))
        self.stats["dead_lettered"] += 1
        if msg.topic in USER_TOPICS:
            self.stats["user_events_dead_lettered"] += 1
        log.warning("dead-lettered %s[%s]@%s: %s", msg.topic, msg.partition, msg.offset, reason)

    def _drift_labels(self, rows: np.ndarray, layout: dict[str, int]) -> list[dict[str, str]]:
        """Each event's reading per facet, for the drift monitor: sentiment class (largest of the
        facet's probabilities), leading catalogue category, formality band (formality over the
        style facet's constant component, as StyleHead.describe reads it)."""
        facets = split_facets(rows, layout)
        classes = ("negative", "neutral", "positive")
        sentiment = np.argmax(facets["sentiment"], axis=1)
        topics = self.index.leading_categories(facets["topic"])
        style = facets["style"]
        formality = style[:, 0] / np.maximum(style[:, -1], 1e-12)
        return [
            {"sentiment": classes[s], "topic": t or "uncategorised",
             "style": "formal" if f > 0.2 else "casual" if f < -0.2 else "neutral"}
            for s, t, f in zip(sentiment, topics, formality)
        ]

    def _batch_state(self, states: dict[str, InterestState | None], event: EventT, user_id: str) -> InterestState:
        """The user's state as of this point in the micro-batch (a forget earlier in it: a new one)."""
        if user_id in states:
            return states[user_id] or InterestState()
        # Inside the event's context: Faust's RocksDB store reads a key from the partition of the
        # *current event*, and outside it that is whichever event take_events last buffered, from
        # any partition - a miss there silently restarted users' states.
        with event_context(event):
            return self.state_of(user_id) or InterestState()

    def state_of(self, user_id: str) -> InterestState | None:
        stored = self.users.get(user_id)
        return InterestState.from_dict(stored) if stored else None

    def profile_of(self, user_id: str, state: InterestState):
        if state.empty:
            return to_profile(user_id, state, self.encoder.layout, {}, self.settings)
        mean = split_facets(state.mean(), self.encoder.layout)
        summary = self.encoder.describe(mean)
        summary["topic"]["categories"] = dict(self.index.category_shares(mean["topic"]))
        summary["topic"]["discovered"] = dict(self.topics.shares(mean["topic"]))
        return to_profile(user_id, state, self.encoder.layout, summary, self.settings)

