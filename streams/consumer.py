"""Faust's aiokafka consumer, made to hand records over in offset order after a seek.

Found by tests/test_crash.py with the RocksDB store: after Faust's table recovery, its
``perform_seek`` moves each source partition back to the committed offset, but a fetch issued
before that seek can still return afterwards. Its records lie thousands of offsets ahead (during
recovery the fetcher keeps reading and Faust throws the records away), and Faust then
- records the offsets between the committed one and the stale record as a "gap" (which it treats
  as acknowledged, as it would for compacted offsets),
- delivers the stale record, and drops the records the seek fetches again as "already read".
The next commit jumps over everything in between: ~8,000 records per partition that no worker
ever applied (and since each user's state remembers the highest offset applied, the skipped ones
would not be applied even if read again). With the memory store recovery is slow enough that this
rarely lines up; with RocksDB it happened on most restarts under load.

The same happens before that seek: Faust resumes the flow of records just before it, so records
from wherever the fetcher had got to were applied first (and the skipped ones never, as above).
And a partition with no committed offset yet is not sought at all, so it started wherever the
fetcher had got to.

The fix here: hand over nothing for a partition until the post-recovery seek has positioned it
(at its first offset if nothing was committed);
keep, per partition, the next offset we expect to hand over (set by every seek), and refuse a
record that jumps past it. The partition is sought back to the expected offset, so the
records in between are read again, in order. A jump seen twice from the same place is a real hole
in the log (compaction, transaction markers) and is let through.
"""

from __future__ import annotations

from typing import Any, AsyncIterator

from aiokafka import TopicPartition
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaFaustConsumer
from faust.types import TP, Message


class InOrderConsumer(AIOKafkaFaustConsumer):
    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._next_offset: dict[TP, int] = {}  # the next offset to hand over, per partition
        self._positioned: set[TP] = set()  # partitions sought to their committed offset at least once
        self._holes: dict[TP, tuple[int, int]] = {}  # the last jump refused: (expected, got)
        self.refused_jumps = 0
        self._sources: frozenset[str] | None = None
        self._seeking = False
        self._dropped_while_seeking: set[TP] = set()

    def _is_source(self, tp: TP) -> bool:
        """Topics the agents consume. Changelogs are left alone: Faust's recovery reads them
        through this consumer too, before any seek of ours, and positions them itself."""
        if self._sources is None:
            self._sources = frozenset(t for agent in self.app.agents.values() for t in agent.channel.topics)
        return tp.topic in self._sources

    async def perform_seek(self) -> None:
        self._seeking, self._dropped_while_seeking = True, set()
        try:
            await super().perform_seek()
            # Faust's read offsets now hold the committed offsets (the next to read), or None.
            assigned = {tp for tp in self.assignment() if self._is_source(tp)}
            # aiokafka's seek_to_committed leaves a partition nobody has committed yet wherever the
            # fetcher got to during recovery; the app's reset policy is "earliest".
            never = [tp for tp in assigned if self._read_offset.get(tp) is None]
            if never:
                await self._thread.seek_to_beginning(*(TopicPartition(tp.topic, tp.partition) for tp in never))
        finally:
            self._seeking = False
        self._next_offset = {tp: off for tp, off in self._read_offset.items() if off is not None and tp in assigned}
        self._positioned = assigned
        # Records dropped while the seek ran may have been read from the new position: seek once
        # more, or a partition whose records all came in then would never be read again.
        for tp in self._dropped_while_seeking & assigned:
            if tp in self._next_offset:
                await self.seek(tp, self._next_offset[tp])

    async def seek(self, partition: TP, offset: int) -> None:
        await super().seek(partition, offset)
        if self._is_source(partition):
            self._next_offset[partition] = offset

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        refused: set[TP] = set()
        async for tp, message in super().getmany(timeout):
            if not self._is_source(tp):
                yield tp, message
                continue
            if tp in refused:
                continue  # the rest of a stale run: read again after the seek
            if tp not in self._positioned:
                if self._seeking:
                    self._dropped_while_seeking.add(tp)
                continue  # fetched before this partition's first seek: it is read again after it
            expected = self._next_offset.get(tp)
            if expected is not None and message.offset > expected and self._holes.get(tp) != (expected, message.offset):
                self._holes[tp] = (expected, message.offset)
                self.refused_jumps += 1
                refused.add(tp)
                self.log.warning("record %s@%d read while %d was expected: reading %s again from %d",
                                 tp, message.offset, expected, tp, expected)
                await self.seek(tp, expected)
                continue
            if expected is None or message.offset >= expected:
                self._next_offset[tp] = message.offset + 1
            yield tp, message
