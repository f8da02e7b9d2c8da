"""End offsets read from the records (streams/end_offsets.py) against the real bundled broker, which
reports a partition's end short of a multi-record producer batch: what table recovery and the
catalogue gate read up to."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

import pytest
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from streams.end_offsets import exact_end_offsets
from streams.tools.broker import EmbeddedBroker
from streams.worker.topic_admin import ensure_topics
from tests.helpers.tcp_outage import OutageProxy, proxy_port

pytestmark = pytest.mark.integration


async def _produce_batches(bootstrap: str, topic: str, partitions: int,
                           batches: tuple[tuple[int, int], ...]) -> tuple[list[TopicPartition], AIOKafkaConsumer]:
    """(partition, records) producer batches into a new topic; its partitions and a started
    group-less consumer. linger: each batch's records go in one producer batch."""
    await ensure_topics(bootstrap, [topic], partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=200)
    await producer.start()
    try:
        for part, count in batches:
            await asyncio.gather(*[await producer.send(topic, b"x%d" % n, partition=part) for n in range(count)])
    finally:
        await producer.stop()
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False)
    await consumer.start()
    return [TopicPartition(topic, p) for p in range(partitions)], consumer


async def _produce_and_read(bootstrap: str, topic: str) -> tuple[dict, dict, list[int]]:
    # partition 0: a batch of 3, then one of 10; partition 1: one of 7
    tps, consumer = await _produce_batches(bootstrap, topic, 3, ((0, 3), (0, 10), (1, 7)))
    try:
        reported = await consumer.end_offsets(tps)
        exact = await exact_end_offsets(consumer, tps)
        assert consumer.assignment() == set()  # left unassigned: the followers assign after it
        consumer.assign(tps)
        await consumer.seek_to_beginning(*tps)
        offsets: list[int] = []
        for _ in range(20):
            for records in (await consumer.getmany(timeout_ms=300)).values():
                offsets += [r.offset for r in records if r.partition == 0]
            if len(offsets) >= 13:
                break
    finally:
        await consumer.stop()
    return reported, exact, offsets


def test_the_end_offset_counts_every_record_of_the_last_batch(broker):
    reported, exact, offsets = asyncio.run(_produce_and_read(broker.bootstrap, "end-offsets"))
    p = [TopicPartition("end-offsets", n) for n in range(3)]
    assert sorted(offsets) == list(range(13))  # the records are all there ...
    assert exact == {p[0]: 13, p[1]: 7, p[2]: 0}  # ... and the end is after the last of them
    # What the broker itself says is never more, and on the bundled broker less (its known fault;
    # an exact broker would say the same as exact_end_offsets).
    assert all(reported[tp] <= exact[tp] for tp in p)


async def _ends_without_time_to_read(bootstrap: str, topic: str) -> tuple[dict, dict, set]:
    tps, consumer = await _produce_batches(bootstrap, topic, 2, ((0, 5),))
    try:
        reported = await consumer.end_offsets(tps)
        # No time to read the last records: the fallback keeps what the broker reported, and says
        # so. (With time to read and a broker that stalls: the test below.)
        kept = await exact_end_offsets(consumer, tps, timeout_s=0.0)
        return reported, kept, consumer.assignment()
    finally:
        await consumer.stop()


def test_a_last_record_not_read_in_time_keeps_the_reported_end_and_is_logged(broker, caplog):
    with caplog.at_level("WARNING", logger="streams.end_offsets"):
        reported, kept, assignment = asyncio.run(_ends_without_time_to_read(broker.bootstrap, "end-offsets-slow"))
    assert kept == reported and assignment == set()  # left unassigned even so
    p0 = TopicPartition("end-offsets-slow", 0)
    assert [r.message for r in caplog.records] == [
        f"last records not read within 0 s; reported end offsets kept for {[p0]}"]


FETCH = 1  # Kafka API key


async def _ends_while_fetches_stall(bootstrap: str, proxy: OutageProxy, topic: str) -> tuple[dict, dict, float, bool]:
    tps, consumer = await _produce_batches(bootstrap, topic, 2, ((0, 5),))
    try:
        reported = await consumer.end_offsets(tps)
        proxy.stall({FETCH})  # the broker answers metadata and offsets, but never a fetch
        t = time.monotonic()
        kept = await exact_end_offsets(consumer, tps, timeout_s=1.0)
        took = time.monotonic() - t
    finally:
        stopping = asyncio.ensure_future(consumer.stop())
        stopped, _ = await asyncio.wait({stopping}, timeout=10)
        proxy.release()
        await stopping
    return reported, kept, took, bool(stopped)


def test_a_broker_that_stalls_the_fetch_leaves_the_reported_end_after_the_timeout(tmp_path: Path, caplog):
    # A real fetch that never comes back (a proxy holds the broker's fetch requests), not a 0 s
    # budget: the read gives up at its deadline, keeps the reported end, and the consumer still
    # stops (what table recovery's reader does next) while the fetch is outstanding.
    port = proxy_port()
    with EmbeddedBroker(log_file=tmp_path / "tansu.log", advertised_port=port) as broker:
        proxy = OutageProxy(port, broker.port)
        proxy.up()
        try:
            with caplog.at_level("WARNING", logger="streams.end_offsets"):
                reported, kept, took, stopped = asyncio.run(_ends_while_fetches_stall(broker.bootstrap, proxy, "stalled"))
        finally:
            proxy.close()
    p0 = TopicPartition("stalled", 0)
    assert kept == reported and reported[p0] >= 1
    assert took >= 1.0  # it waited for the fetch until its deadline
    assert stopped, "the consumer did not stop within 10 s while its fetch was held"
    assert [r.message for r in caplog.records] == [
        f"last records not read within 1 s; reported end offsets kept for {[p0]}"]
