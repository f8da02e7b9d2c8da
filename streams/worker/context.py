"""What every handler of the worker gets: settings, the encoder and index, counters, and the ways
out (send an output record, dead-letter an input one). Built once by ``streams/worker/app.py``;
handlers depend on this, never on the Faust app.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from typing import Any, Callable, Sequence, TypeVar

from faust.types import EventT, ProducerT

from encoders import FacetEncoder, FacetVectors
from encoders.topic_clusters import TopicClusters
from index import ItemIndex
from schemas import DeadLetter, InvalidEvent, decode_event, dump_json
from schemas.records import AnyEvent
from schemas.topics import DEAD_LETTERS, KIND_OF_TOPIC, USER_TOPICS, USERS_REPARTITION
from streams.faust_ext.sends import PendingSends
from streams.settings import Settings
from streams.state.recommend import Recommender
from streams.worker.metrics import WorkerMetrics, reason_class
from streams.worker.placement import source_of

log = logging.getLogger(__name__)
T = TypeVar("T")
# The user agent's inputs: a record on the repartition topic that names no source is one of its own.
_USER_TOPIC_NAMES = frozenset(t.name for t in (*USER_TOPICS, USERS_REPARTITION))


@dataclass
class WorkerStats:
    """The worker's counters, shown on /healthz (field names are the JSON keys)."""

    events_applied: int = 0  # user events folded into a profile
    misplaced_forwarded: int = 0  # user records that arrived in another partition than their user's
    user_events_dead_lettered: int = 0
    redelivered_skipped: int = 0  # messages already in a user's state (at-least-once delivery)
    duplicate_skipped: int = 0  # event ids already in a user's state (re-sent by a producer)
    user_states_unreadable: int = 0  # (user, micro-batch) whose stored state could not be read: events dead-lettered
    items_applied: int = 0
    dead_lettered: int = 0  # all topics
    users_forgotten: int = 0
    watchlist_events: int = 0  # follow/unfollow requests (applied, or already so)
    batches: int = 0
    states_reused: int = 0  # user states the agent read as it had written them (no decode) ...
    states_decoded: int = 0  # ... and read from the table's bytes
    encode_calls: int = 0  # micro-batches sent to the encoder ...
    texts_encoded: int = 0  # ... and the texts in them
    news_received: int = 0
    news_without_entity: int = 0
    mentions: int = 0
    mentions_redelivered_skipped: int = 0
    alerts_fired: int = 0
    user_alerts_sent: int = 0
    webhook_delivered: int = 0
    webhook_failed: int = 0
    recovered_after_s: float | None = None  # process start -> tables restored and index rebuilt
    # Wall-clock time the last user micro-batch that applied events was counted: where a backlog's
    # processing ended, to the batch (a reader polling /healthz sees it up to a poll later).
    last_applied_at: float | None = None


class Outbox:
    """Output records. ``send`` does not wait for the broker; ``confirmed`` waits for everything
    sent so far (and raises if a send failed), which the worker does before it lets the input
    offsets behind them be committed.

    Sent through Faust's producer, not ``Topic.send``: Faust's per-record wrapping and its yield to
    the event loop on every send cost about 4x the producer's own send, and the producer then
    ships produce requests of a record or two (streams/faust_ext/tables.py says how it was measured)."""

    def __init__(self, producer: ProducerT) -> None:
        self._producer = producer
        self._pending = PendingSends()

    async def send(self, topic: str, key: bytes | None, value: bytes | None, partition: int | None = None,
                   timestamp: float | None = None, headers: list[tuple[str, bytes]] | None = None) -> None:
        """``value`` None: a tombstone; ``partition`` None: the producer's partitioner (murmur2 of
        the key, as Java clients); ``timestamp`` in seconds (None: now)."""
        self._pending.add(await self._producer.send(topic, key, value, partition, timestamp, headers))

    async def publish(self, topic: str, key: bytes | None, value: bytes, partition: int | None = None) -> None:
        """Send and wait until the broker has it (for API requests, answered after that; and for
        records no micro-batch waits for, which ``confirmed`` leaves out)."""
        await (await self._producer.send(topic, key, value, partition, None, None))

    async def confirmed(self) -> None:
        await self._pending.wait()


@dataclass
class WorkerContext:
    settings: Settings
    encoder: FacetEncoder
    index: ItemIndex
    topics: TopicClusters  # discovered from every encoded text
    outbox: Outbox
    recommender: Recommender | None = None  # None: recommendations are facet Z only (recommend.enabled off)
    stats: WorkerStats = field(default_factory=WorkerStats)
    metrics: WorkerMetrics = field(default_factory=WorkerMetrics)
    started_at: float = field(default_factory=time.time)
    # One thread: torch already uses every core for one forward pass; the point is only to keep
    # the event loop (consumer fetches, web requests) running while a batch encodes. The learning
    # heads are updated in the same thread, so never mid-way through an encode.
    encode_pool: ThreadPoolExecutor = field(
        default_factory=lambda: ThreadPoolExecutor(max_workers=1, thread_name_prefix="encode"))

    @property
    def layout(self) -> dict[str, int]:
        return self.encoder.layout

    async def encode(self, texts: Sequence[str]) -> FacetVectors | None:
        """One forward pass (or a few) for a whole micro-batch, off the event loop."""
        if not texts:
            return None
        self.stats.encode_calls += 1
        self.stats.texts_encoded += len(texts)
        with self.metrics.encode_seconds.time():
            return await self.in_encode_thread(self.encoder.encode, list(texts))

    async def in_encode_thread(self, fn: Callable[..., T], *args: Any) -> T:
        return await asyncio.get_running_loop().run_in_executor(self.encode_pool, fn, *args)

    async def decode(self, event: EventT) -> AnyEvent | None:
        """The record in ``event`` (its source topic says the type), or None after dead-lettering it."""
        topic = source_of(event)[0]
        try:
            if topic not in KIND_OF_TOPIC:  # on users-repartition without the headers a worker forwards with
                raise InvalidEvent(f"a record on {topic!r} that names no source topic of user events in its headers")
            return decode_event(event.value, KIND_OF_TOPIC[topic])
        except InvalidEvent as exc:
            await self.dead_letter(event, exc.reason)
            return None

    async def dead_letter(self, event: EventT, reason: str) -> None:
        """Send the input record to the dead-letter topic with ``reason``, its raw bytes and where
        it was first read."""
        topic, partition, offset = source_of(event)
        raw = event.value if isinstance(event.value, bytes) else b""
        letter = DeadLetter(reason, topic, partition, offset, base64.b64encode(raw).decode(), time.time())
        await self.outbox.send(DEAD_LETTERS.name, event.message.key, dump_json(letter.to_dict()))
        self.stats.dead_lettered += 1
        self.metrics.dead_letters.labels(topic, reason_class(reason)).inc()
        if topic in _USER_TOPIC_NAMES:
            self.stats.user_events_dead_lettered += 1
        # Not a warning per record: a bad producer would flood the log. The dead-letter topic has
        # every record and reason, /metrics counts them by reason, the progress line in total.
        log.debug("dead-lettered %s[%s]@%s: %s", topic, partition, offset, reason)
