"""count_keys on Faust's own RocksDB store (local files, no broker)."""

from __future__ import annotations

import asyncio
import threading

import faust
import pytest
from faust.assignor.client_assignment import ClientAssignment

from streams.faust_ext import count_keys


@pytest.fixture
def table(tmp_path):
    app = faust.App("count-keys", store="rocksdb://", datadir=str(tmp_path), broker="kafka://127.0.0.1:1")
    users = app.Table("users", partitions=3)
    # This worker is assigned partitions 0 and 1 as active, 2 as a standby.
    app.assignor._assignment = ClientAssignment(actives={users.changelog_topic_name: [0, 1]},
                                                standbys={users.changelog_topic_name: [2]})
    for partition, n in ((0, 1500), (1, 700), (2, 50)):
        db = users.data._db_for_partition(partition)
        for i in range(n):
            db[f"user-{partition}-{i}".encode()] = b"state"
    return users


def test_counts_the_active_partitions_keys_in_a_thread(table):
    asked = []

    def should_stop() -> bool:
        asked.append(threading.get_ident())
        return False

    assert asyncio.run(count_keys(table, should_stop)) == 2200  # not the standby's 50
    assert len(asked) == 1 + 2200 // 1024  # once before, then every 1,024 keys
    assert len(set(asked[1:])) == 1 and asked[0] not in asked[1:]  # the walk: another thread


def test_gives_way_to_a_rebalance_and_lets_go_of_the_lock(table):
    asked = []

    def rebalancing() -> bool:
        asked.append(1)
        return len(asked) > 1  # it begins after the count did

    async def scenario():
        assert await count_keys(table, rebalancing) is None
        assert not table.data.db_lock.locked()  # the rebalance can take it at once
        assert await count_keys(table, lambda: True) is None  # already rebalancing: no walk

    asyncio.run(scenario())
    assert len(asked) == 2


def test_the_memory_store_answers_its_length(tmp_path):
    app = faust.App("count-keys-memory", store="memory://", datadir=str(tmp_path), broker="kafka://127.0.0.1:1")
    table = app.Table("users")
    table.data.data.update({b"a": b"1", b"b": b"2"})
    assert asyncio.run(count_keys(table, lambda: True)) == 2
