"""Which partition a user's records belong to (streams/worker/placement.py), and which of them are texts."""

from __future__ import annotations

import faust
from aiokafka.partitioner import DefaultPartitioner
from faust.types.tuples import Message
from hypothesis import given
from hypothesis import strategies as st

from schemas.topics import CLICKS, REVIEWS, SEARCHES, SOURCE_OFFSET_HEADER, SOURCE_PARTITION_HEADER, SOURCE_TOPIC_HEADER, USERS_REPARTITION
from streams.worker.placement import partition_for
from streams.worker.users import carries_text

# Kafka's own test vectors for its murmur2 (org.apache.kafka.common.utils.UtilsTest), as Java ints.
JAVA_MURMUR2 = {"21": -973932308, "foobar": -790332482, "a-little-bit-long-string": -985981536,
                "a-little-bit-longer-string": -1486304829, "abc": 479470107,
                "lkjh234lh9fiuh90y23oiuhsafujhadof229phr9h19h89h8": -58897971}


def test_the_partition_is_the_java_default_partitioners():
    for key, h in JAVA_MURMUR2.items():
        for n in (1, 3, 4, 12):
            assert partition_for(key, n) == (h & 0x7FFFFFFF) % n  # Utils.toPositive(murmur2(key)) % n


@given(st.text(min_size=1, max_size=40), st.integers(1, 64))
def test_the_partition_is_the_one_aiokafka_and_faust_send_a_key_to(key, n):
    partitions = list(range(n))
    assert partition_for(key, n) == DefaultPartitioner()(key.encode(), partitions, partitions)


def _event(topic: str, headers: list[tuple[str, bytes]] | None = None) -> faust.Event:
    message = Message(topic, 0, 7, 1.7e9, 0, headers or [], b"u1", b"{}", None)
    return faust.Event(None, b"u1", b"{}", message.headers, message)  # type: ignore[arg-type]  # no app needed


def test_texts_are_counted_by_the_topic_a_record_was_first_read_from():
    # Searches and reviews count against a micro-batch's batch_max_texts; clicks do not, and
    # neither does a record forwarded from the clicks topic, nor one with no source headers.
    assert carries_text(_event(SEARCHES.name)) and carries_text(_event(REVIEWS.name))
    assert not carries_text(_event(CLICKS.name))
    forwarded = [(SOURCE_TOPIC_HEADER, b"reviews"), (SOURCE_PARTITION_HEADER, b"2"), (SOURCE_OFFSET_HEADER, b"9")]
    assert carries_text(_event(USERS_REPARTITION.name, forwarded))
    assert not carries_text(_event(USERS_REPARTITION.name, [(SOURCE_TOPIC_HEADER, b"clicks"), *forwarded[1:]]))
    assert not carries_text(_event(USERS_REPARTITION.name))
