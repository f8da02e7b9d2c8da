"""End offsets read from the records themselves, for brokers that report them short.

Tansu 0.6 (the bundled broker) reports a partition's end offset as its last producer batch's
*base* offset + 1: after a batch of ten records at offsets 0-9 it says 1. Whoever reads "up to the
end" (Faust's table recovery, the catalogue gate) would then stop before the batch's other
records. Kafka returns whole batches, so reading from the reported end - 1 returns the rest of the
last batch: its last offset + 1 is the real end. On a broker that reports the end right this
reads one record per partition and changes nothing.
"""

from __future__ import annotations

import asyncio
from typing import Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition


async def exact_end_offsets(consumer: AIOKafkaConsumer, partitions: Sequence[TopicPartition],
                            timeout_s: float = 5.0) -> dict[TopicPartition, int]:
    """The offset after the last record of each partition. ``consumer`` has no group; its
    assignment is replaced. A partition whose last record cannot be read within ``timeout_s``
    (its end is a transaction marker, or the broker is slow) keeps the reported end."""
    ends = dict(await consumer.end_offsets(list(partitions)))
    pending = {tp for tp, end in ends.items() if end > 0}
    if not pending:
        return ends
    consumer.assign(sorted(pending))
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
    return ends
