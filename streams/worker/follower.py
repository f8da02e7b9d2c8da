"""Reading a whole topic on every worker: a consumer with no group that reads every partition
from the beginning, then keeps reading, and hands each fetched batch to a callback. The
catalogue (streams/worker/catalogue.py) and the engagements (streams/worker/engagement.py) are
followed this way, so each worker has all of them whatever partitions it owns.
"""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from streams.end_offsets import exact_end_offsets

log = logging.getLogger(__name__)

ApplyRecords = Callable[[list[ConsumerRecord]], None]  # in offset order within each partition


class LogFollower:
    def __init__(self, bootstrap: str, topic: str, apply: ApplyRecords, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None) -> None:
        self.bootstrap, self.topic, self.apply = bootstrap, topic, apply
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.on_caught_up = on_caught_up
        self.caught_up_at: float | None = None  # when the topic as of the start was all applied
        # Seconds the last read from the beginning took to catch up (applying included): the
        # rebuild time of what the callback builds (the index, the engagements).
        self.rebuild_s: float | None = None
        self.records = 0
        self.positions: dict[int, int] = {}  # partition -> the next offset to read (all before it applied)
        # Set by a subclass that took over a state folded up to these offsets (a snapshot): the
        # next read starts there instead of at the beginning.
        self.resume: dict[int, int] | None = None

    async def run(self) -> None:
        """Follow the topic until cancelled; retries while the broker is away."""
        while True:
            try:
                await self._follow()
            except asyncio.CancelledError:
                raise
            except KafkaError as exc:  # the consumer gave up on something: start again from scratch
                log.warning("%s follower: %s; starting again in 2 s", self.topic, exc)
                await asyncio.sleep(2.0)

    def restarting(self) -> None:
        """Called before reading from the beginning again (after the first time): the callback's
        owner drops what it folded in, or is idempotent."""

    async def before_reading(self) -> None:
        """Awaited before each read from the start (after ``restarting``): where a subclass takes
        over a state and sets ``resume``."""

    def resume_refused(self, why: str) -> None:
        """``resume`` named offsets this topic does not have (it was deleted and made again): the
        read starts at the beginning, and what was taken over must be dropped."""

    async def after_apply(self) -> None:
        """Awaited after each fetched batch is applied, with ``positions`` past it (nothing is
        applied meanwhile)."""

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=self.fetch_max_wait_ms)
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, self.topic)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            # What "caught up" means at start (read before assigning: it leaves no assignment).
            end = await exact_end_offsets(consumer, tps)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            if self.records:
                self.restarting()
            await self.before_reading()
            await self._resume(consumer, tps, end)
            started, caught_up = time.monotonic(), False
            while True:
                # Checked before waiting for more, so an idle wait never counts as rebuilding.
                if not caught_up and all([await consumer.position(tp) >= end[tp] for tp in tps]):
                    caught_up, self.rebuild_s = True, time.monotonic() - started
                    if self.caught_up_at is None:
                        self.caught_up_at = time.time()
                        if self.on_caught_up:
                            self.on_caught_up()
                    log.info("%s follower caught up: %d records in %.1f s", self.topic, self.records, self.rebuild_s)
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                records = [r for rs in batch.values() for r in rs]
                if records:
                    self.records += len(records)
                    self.apply(records)
                    # Before any await: a task cancelled below still has positions that match what
                    # was applied (a snapshot written as the worker stops takes both).
                    self.positions.update({r.partition: r.offset + 1 for r in records})
                # Past what was applied too (a compacted or aborted range the consumer skipped).
                self.positions = {tp.partition: await consumer.position(tp) for tp in tps}
                if records:
                    await self.after_apply()
        finally:
            await consumer.stop()

    async def _resume(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], end: dict[TopicPartition, int]) -> None:
        """Seek to ``resume`` (once). An offset past a partition's end, or a partition the topic
        lacks, means the topic is not the one it was read from: from the beginning then. Offsets
        that retention has removed since are read from the first one kept (aiokafka resets them)."""
        resume, self.resume = self.resume, None
        if resume is None:
            return
        ends = {tp.partition: end[tp] for tp in tps}
        wrong = [f"{p}@{o} (end {ends.get(p)})" for p, o in sorted(resume.items()) if p not in ends or o > ends[p]]
        if wrong:
            log.warning("%s follower: cannot resume at %s; reading from the beginning", self.topic, ", ".join(wrong))
            self.resume_refused(f"offsets past the topic's end: {', '.join(wrong)}")
            return
        for tp in tps:
            if resume.get(tp.partition):
                consumer.seek(tp, resume[tp.partition])
        log.info("%s follower resumes at %s", self.topic, resume)


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The topic's partitions, once it exists (the worker creates its topics when it starts)."""
    while True:
        await consumer.topics()  # refreshes metadata
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return partitions
        await asyncio.sleep(0.5)
