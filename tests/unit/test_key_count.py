from __future__ import annotations

import asyncio

from streams.worker.key_count import KeyCount
from tests.helpers.clock import Clock


def test_counts_when_asked_and_answers_the_last_count_meanwhile():
    clock, keys, counts = Clock(), [1, 2, 3], []

    async def count() -> int:
        counts.append(clock.now)
        return len(keys)

    async def scenario():
        c = KeyCount(count, min_every_s=5.0, clock=clock)
        assert c.read() == (None, None)  # nothing counted yet: a count starts
        await c.settled()
        assert c.read() == (3, 0.0) and len(counts) == 1
        keys.append(4)
        clock.now += 4.9
        assert c.read() == (3, 4.9)  # not due yet: the last count, and no new one
        await c.settled()
        assert len(counts) == 1
        clock.now += 0.2
        assert c.read() == (3, 5.1)  # due: answered with the last count while a new one runs
        await c.settled()
        assert c.read() == (4, 0.0) and len(counts) == 2

    asyncio.run(scenario())


def test_a_slow_count_is_renewed_less_often():
    clock, counts = Clock(), []

    async def count() -> int:
        counts.append(clock.now)
        clock.now += 1.0  # this count takes a second
        return 7

    async def scenario():
        c = KeyCount(count, min_every_s=5.0, clock=clock)
        c.read()
        await c.settled()
        clock.now += 19.0  # past 5 s, not yet 20 x 1 s
        assert c.read() == (7, 19.0)
        await c.settled()
        assert len(counts) == 1
        clock.now += 1.0
        c.read()
        await c.settled()
        assert len(counts) == 2

    asyncio.run(scenario())


def test_a_failed_or_given_up_count_keeps_the_last_and_waits_before_the_next(caplog):
    clock, outcomes = Clock(), [7, OSError("store closed"), None, 9]

    async def count() -> int | None:
        outcome = outcomes.pop(0)
        if isinstance(outcome, Exception):
            raise outcome
        return outcome

    async def scenario():
        c = KeyCount(count, min_every_s=5.0, clock=clock)
        c.read()
        await c.settled()
        for left in (2, 1):  # the failure, then the count given up (a rebalance)
            clock.now += 5.0
            c.read()
            await c.settled()
            assert len(outcomes) == left and c.read()[0] == 7
            clock.now += 4.9
            c.read()  # retried only after min_every_s, not at every request
            await c.settled()
            assert len(outcomes) == left
            clock.now -= 4.9
        clock.now += 5.0
        c.read()
        await c.settled()
        assert c.read() == (9, 0.0)

    asyncio.run(scenario())
    assert "counting the keys failed" in caplog.text


def test_without_an_event_loop_it_answers_the_last_count():
    async def count() -> int:
        return 1

    assert KeyCount(count).read() == (None, None)  # no loop here: nothing started, nothing raised
