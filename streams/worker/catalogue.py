"""The whole catalogue in every worker's FAISS index, for any number of workers.

The item agent writes each item's vector to the changelogged ``items`` table (and indexes the
items of its own partitions at once). Every worker also follows the items changelog from the
beginning (streams/worker/follower.py) and applies each change to the index in changelog order, so
an upsert or delete made by any worker reaches all of them, whatever the number of workers (table
standby replicas, which only covered workers <= standby replicas + 1, are not needed for it).

A change applied by the agent is applied again when its changelog record arrives (the same
vector: no effect). While the follower lags, an item changed twice in quick succession can
briefly show its previous version; the newest wins once the follower reaches it.

At a start the user agent waits for the catalogue to be current (``CatalogueGate``): a click is
folded in with its item's vector from the index, so reading a backlog of clicks before the index
holds their items would dead-letter them.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError

from schemas import load_json
from streams.worker.follower import LogFollower, topic_partitions

log = logging.getLogger(__name__)

Apply = Callable[[list[tuple[str, dict[str, Any] | None]]], int]  # (item id, value or None = delete)


class CatalogueFollower(LogFollower):
    def __init__(self, bootstrap: str, topic: str, apply: Apply, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None) -> None:
        super().__init__(bootstrap, topic, self._latest, fetch_max_wait_ms, on_caught_up)
        self.apply_rows = apply

    def _latest(self, records: list[ConsumerRecord]) -> None:
        # In offset order per partition, and an item lives in one partition: the last one wins.
        changes: dict[str, dict[str, Any] | None] = {}
        for r in records:
            changes[load_json(r.key)] = load_json(r.value) if r.value else None
        self.apply_rows(list(changes.items()))


class CatalogueGate:
    """Holds the user agent until the catalogue is current as of the worker's start.

    Why: a click's vector is its item's vector from the index, and a click on an item the index
    does not have is dead-lettered. At a start the user agent reads its backlog at once, while the
    index is still being rebuilt from the items changelog (a restart) or the item agents are still
    encoding the items topic's backlog (a new deployment or app id on topics with history); those
    clicks would be dead-lettered although their items are in the catalogue. So the gate opens once
    - the catalogue follower has read the items changelog as it was at the start,
    - the app's consumer group has committed the items topic up to its end offsets at the start
      (the item agents of any worker applied those records and their changelog writes landed), and
    - the follower has read the changelog up to its end offsets at that moment.
    It opens anyway after ``max_wait_s`` (0 = never gives up), logging a warning: a stuck item
    pipeline must not stop user events for good. On the bundled Tansu, whose end offset is the last
    batch's base offset + 1, it can open a few records early (docs/guarantees.md).
    """

    def __init__(self, bootstrap: str, group_id: str, items_topic: str, follower: LogFollower,
                 max_wait_s: float, poll_s: float = 0.5) -> None:
        self.bootstrap, self.group_id, self.items_topic = bootstrap, group_id, items_topic
        self.follower, self.max_wait_s, self.poll_s = follower, max_wait_s, poll_s
        self.opened = asyncio.Event()
        self.items_behind_at_start: int | None = None  # item records not yet applied by the group then
        self.waited_s: float | None = None
        self.gave_up = False

    def to_dict(self) -> dict[str, Any]:
        return {"open": self.opened.is_set(), "items_behind_at_start": self.items_behind_at_start,
                "waited_s": None if self.waited_s is None else round(self.waited_s, 3), "gave_up": self.gave_up}

    async def run(self) -> None:
        started = time.monotonic()
        try:
            await asyncio.wait_for(self._retrying(), self.max_wait_s or None)
        except asyncio.TimeoutError:
            self.gave_up = True
            log.warning("catalogue not current after %.0f s (items_behind_at_start=%s); user events go on, "
                        "clicks on items not indexed yet are dead-lettered", self.max_wait_s, self.items_behind_at_start)
        self.waited_s = time.monotonic() - started
        self.opened.set()
        log.info("catalogue gate open after %.1f s (%s item records were behind at the start)",
                 self.waited_s, self.items_behind_at_start)

    async def _retrying(self) -> None:
        while True:
            try:
                return await self._until_current()
            except (KafkaError, OSError) as exc:  # the broker went away meanwhile: ask again
                log.warning("catalogue gate: %s; asking again in 2 s", exc)
                await asyncio.sleep(2.0)

    async def _until_current(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await consumer.start()
            await admin.start()
            items = sorted_tps(await topic_partitions(consumer, self.items_topic), self.items_topic)
            end = await consumer.end_offsets(items)
            while True:
                committed = await admin.list_consumer_group_offsets(self.group_id, partitions=items)
                behind = sum(max(0, end[tp] - _offset(committed.get(tp))) for tp in items)
                if self.items_behind_at_start is None:
                    self.items_behind_at_start = behind
                if behind == 0 and self.follower.caught_up_at is not None:
                    break
                await asyncio.sleep(self.poll_s)
            changelog = sorted_tps(await topic_partitions(consumer, self.follower.topic), self.follower.topic)
            end = await consumer.end_offsets(changelog)
            while any(self.follower.positions.get(tp.partition, 0) < end[tp] for tp in changelog):
                await asyncio.sleep(self.poll_s)
        finally:
            await admin.close()
            await consumer.stop()


def _offset(committed: Any) -> int:
    return committed.offset if committed is not None and committed.offset >= 0 else 0


def sorted_tps(partitions: set[int], topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(partitions)]
