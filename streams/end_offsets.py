"""End offsets read from the records themselves, for brokers that report them short.

Tansu 0.6 (the bundled broker) reports a partition's end offset as its last producer batch's
*base* offset + 1: after a batch of ten records at offsets 0-9 it says 1. Whoever reads "up to the
end" (Faust's table recovery, the catalogue gate, the followers) would then stop before the
batch's other records. Kafka returns whole batches, so reading from the reported end - 1 returns
the rest of the last batch: its last offset + 1 is the real end. On a broker that reports the end
right this reads one record per partition and changes nothing.
"""

from __future__ import annotations

import asyncio
import logging
from typing import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition

log = logging.getLogger(__name__)


async def exact_end_offsets(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition],
                            timeout_s: float = 5.0) -> dict[TopicPartition, int]:
    """The offset after the last record of each partition. ``consumer`` has no group; it is left
    with no assignment. A partition with no records (empty, or all removed by retention) keeps
    its reported end, and so does one whose last record cannot be read within ``timeout_s`` (a
    transaction marker at the end, or a slow broker; logged)."""
    tps = list(partitions)
    ends = dict(await consumer.end_offsets(tps))
    first = await consumer.beginning_offsets(tps)
    pending = {tp for tp in tps if ends[tp] > first[tp]}
    if not pending:
        return ends
    if timeout_s <= 0:  # no time to read: assigning and at once unassigning races aiokafka's fetch task
        log.warning("last records not read within 0 s; reported end offsets kept for %s", sorted(pending))
        return ends
    consumer.assign(sorted(pending))
    try:
        for tp in pending:
            consumer.seek(tp, ends[tp] - 1)
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout_s
        while pending and loop.time() < deadline:
            fetched = await consumer.getmany(*pending, timeout_ms=200)
            for tp, records in fetched.items():
                if records:
                    ends[tp] = max(ends[tp], records[-1].offset + 1)
                    pending.discard(tp)
    finally:
        consumer.unsubscribe()
    if pending:
        log.warning("last records not read within %.0f s; reported end offsets kept for %s", timeout_s, sorted(pending))
    return ends
