"""Where a user's records belong, whatever partitioner or key the producer used.

A user's state lives in one partition: the one the app's partitioner (murmur2 of the user id, as
Java clients, aiokafka and Faust use) gives the user id. Records produced by librdkafka's default
partitioner (CRC32), with a custom partitioner, keyed by something else or by nothing, arrive
elsewhere; the user handler forwards them to the right partition of the internal
``users-repartition`` topic first (as Kafka Streams repartitions), carrying where they were first
read in headers, so the user's state drops a copy forwarded twice after a crash.
"""

from __future__ import annotations

from typing import Any

from aiokafka.partitioner import murmur2
from faust.types import EventT

from schemas.topics import SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER, USERS_REPARTITION


def partition_for(key: str, partitions: int) -> int:
    """The partition the app's (and Java's default) partitioner gives ``key``."""
    return (murmur2(key.encode()) & 0x7FFFFFFF) % partitions


def source_of(event: EventT) -> tuple[str, int, int]:
    """(topic, partition, offset) where the record was first read: its own place, or for a
    forwarded record the place named in its headers."""
    msg = event.message
    if msg.topic == USERS_REPARTITION.name:
        headers = _headers(msg.headers)
        try:
            return (headers[SOURCE_TOPIC_HEADER].decode(), int(headers[SOURCE_PARTITION_HEADER]),
                    int(headers[SOURCE_OFFSET_HEADER]))
        except (KeyError, ValueError):
            pass  # not forwarded by a worker: treat it as an input of its own
    return msg.topic, msg.partition, msg.offset


def forward_headers(event: EventT) -> list[tuple[str, bytes]]:
    topic, partition, offset = source_of(event)
    return [(SOURCE_TOPIC_HEADER, topic.encode()), (SOURCE_PARTITION_HEADER, str(partition).encode()),
            (SOURCE_OFFSET_HEADER, str(offset).encode())]


def _headers(raw: Any) -> dict[str, bytes]:
    if not raw:
        return {}
    items = raw.items() if hasattr(raw, "items") else raw
    return {k: v if isinstance(v, bytes) else str(v).encode() for k, v in items}
