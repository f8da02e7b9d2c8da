"""The whole catalogue in every worker's FAISS index, for any number of workers.

The item agent writes each item's vector to the changelogged ``items`` table (and indexes the
items of its own partitions at once). Every worker also runs this follower: a consumer with no
group that reads every partition of the items changelog from the beginning, then keeps reading
it, and applies each change to the index in changelog order, so an upsert or delete made by any
worker reaches all of them, whatever the number of workers (table standby replicas, which only
covered workers <= standby replicas + 1, are not needed for it).

A change applied by the agent is applied again when its changelog record arrives (the same
vector: no effect). While the follower lags, an item changed twice in quick succession can
briefly show its previous version; the newest wins once the follower reaches it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Any, Callable

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import KafkaError

from schemas import load_json

log = logging.getLogger(__name__)

Apply = Callable[[list[tuple[str, dict[str, Any] | None]]], int]  # (item id, value or None = delete)


class CatalogueFollower:
    def __init__(self, bootstrap: str, topic: str, apply: Apply, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None) -> None:
        self.bootstrap, self.topic, self.apply = bootstrap, topic, apply
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.on_caught_up = on_caught_up
        self.caught_up_at: float | None = None  # when the changelog as of the start was all applied
        self.records = 0

    async def run(self) -> None:
        """Follow the changelog until cancelled; retries while the broker is away."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:  # the consumer gave up on something: start again from scratch
                log.warning("catalogue follower: %s; starting again in 2 s", exc)
                await asyncio.sleep(2.0)

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=self.fetch_max_wait_ms)
        await consumer.start()
        try:
            partitions = await self._partitions(consumer)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)  # what "caught up" means at start
            while True:
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                changes: dict[str, dict[str, Any] | None] = {}
                for records in batch.values():
                    for r in records:  # in offset order per partition; an item lives in one partition
                        changes[load_json(r.key)] = load_json(r.value) if r.value else None
                        self.records += 1
                if changes:
                    self.apply(list(changes.items()))
                if self.caught_up_at is None and all([await consumer.position(tp) >= end[tp] for tp in tps]):
                    self.caught_up_at = time.time()
                    if self.on_caught_up:
                        self.on_caught_up()
                    log.info("catalogue follower caught up: %d changelog records", self.records)
        finally:
            await consumer.stop()

    async def _partitions(self, consumer: AIOKafkaConsumer) -> set[int]:
        """The changelog's partitions, once it exists (Faust creates it when the app starts)."""
        while True:
            await consumer.topics()  # refreshes metadata
            partitions = consumer.partitions_for_topic(self.topic)
            if partitions:
                return partitions
            await asyncio.sleep(0.5)
