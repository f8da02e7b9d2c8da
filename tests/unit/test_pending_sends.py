"""PendingSends: what a micro-batch waits for before its offsets may be committed."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka.structs import RecordMetadata, TopicPartition

from streams.faust_ext.sends import PendingSends


def sent(partition: int, offset: int) -> RecordMetadata:
    return RecordMetadata("t", partition, TopicPartition("t", partition), offset, 0, 0, 0)


def test_wait_waits_for_every_send_handed_over_and_keeps_the_highest_offset_per_partition():
    async def run() -> None:
        loop = asyncio.get_running_loop()
        pending = PendingSends()
        futures = [loop.create_future() for _ in range(4)]
        for fut in futures:
            pending.add(fut)
        waiter = asyncio.ensure_future(pending.wait())
        for fut, (p, o) in zip(futures[:3], [(0, 5), (1, 2), (0, 7)]):
            fut.set_result(sent(p, o))
        await asyncio.sleep(0)
        assert not waiter.done() and len(pending) == 1  # the fourth is still in flight
        futures[3].set_result(sent(0, 6))
        await waiter
        assert pending.acked == {TopicPartition("t", 0): 7, TopicPartition("t", 1): 2}
    asyncio.run(run())


def test_a_send_that_failed_before_the_wait_still_fails_it_once():
    async def run() -> None:
        loop = asyncio.get_running_loop()
        pending = PendingSends()
        failed, ok = loop.create_future(), loop.create_future()
        pending.add(failed)
        pending.add(ok)
        failed.set_exception(RuntimeError("broker said no"))
        await asyncio.sleep(0)  # done and gone from the set before anyone waits
        ok.set_result(sent(0, 1))
        with pytest.raises(RuntimeError, match="broker said no"):
            await pending.wait()
        await pending.wait()  # reported once: the next batch's wait is not failed by it again
        done = loop.create_future()
        done.set_result(sent(0, 3))
        pending.add(done)  # already acknowledged when handed over
        await pending.wait()
        assert pending.acked == {TopicPartition("t", 0): 3}
    asyncio.run(run())
