"""Which partition a user's records belong to (streams/worker/placement.py)."""

from __future__ import annotations

from aiokafka.partitioner import DefaultPartitioner
from hypothesis import given
from hypothesis import strategies as st

from streams.worker.placement import partition_for

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
