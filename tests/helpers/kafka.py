"""Produce to and read back from the real test broker with aiokafka."""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition

from streams.tools.replay import replay


def produce(broker_url: str, events: list[dict[str, Any]], partitions: int = 3) -> int:
    return asyncio.run(replay(events, broker_url, partitions=partitions))


def read_topic(bootstrap: str, topic: str, timeout_s: float = 10.0) -> list[Any]:
    """Every record currently in ``topic`` (all partitions), as aiokafka ConsumerRecords."""

    async def run() -> list[Any]:
        consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        await consumer.start()
        try:
            await consumer.topics()  # refreshes cluster metadata
            partitions = consumer.partitions_for_topic(topic) or set()
            tps = [TopicPartition(topic, p) for p in sorted(partitions)]
            if not tps:
                return []
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            end = await consumer.end_offsets(tps)
            records: list[Any] = []
            loop = asyncio.get_running_loop()
            deadline = loop.time() + timeout_s
            while loop.time() < deadline:
                positions = [await consumer.position(tp) for tp in tps]
                if all(pos >= end[tp] for pos, tp in zip(positions, tps)):
                    break
                batch = await consumer.getmany(timeout_ms=200)
                for recs in batch.values():
                    records.extend(recs)
            return records
        finally:
            await consumer.stop()

    return asyncio.run(run())


def topic_config(bootstrap: str, topic: str) -> dict[str, str]:
    """The configuration entries the broker holds for ``topic`` (those set at its creation)."""
    from aiokafka.admin import AIOKafkaAdminClient
    from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType

    async def run() -> dict[str, str]:
        admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
        await admin.start()
        try:
            [response] = await admin.describe_configs([ConfigResource(ConfigResourceType.TOPIC, topic)])
            [(error, _, _, _, entries)] = response.resources
            assert error == 0, response
            return {name: value for name, value, *_ in entries}
        finally:
            await admin.close()

    return asyncio.run(run())


def produce_raw(bootstrap: str, records: list[tuple], partitions: int = 3) -> None:
    """Send (topic, key, value) byte records as they are, malformed ones included; (topic, key,
    value, partition) to a given partition."""
    from aiokafka import AIOKafkaProducer

    from streams.worker.topic_admin import ensure_topics

    async def run() -> None:
        await ensure_topics(bootstrap, sorted({r[0] for r in records}), partitions)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
        await producer.start()
        try:
            futures = [await producer.send(r[0], r[2], key=r[1], partition=r[3] if len(r) > 3 else None) for r in records]
            await asyncio.gather(*futures)
        finally:
            await producer.stop()

    asyncio.run(run())
