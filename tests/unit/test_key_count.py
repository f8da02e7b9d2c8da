from __future__ import annotations

import asyncio
import threading

from streams.worker.key_count import KeyCount


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def test_counts_in_a_thread_when_asked_and_answers_the_last_count_meanwhile():
    clock, keys, threads = Clock(), [1, 2, 3], []

    def counter():
        def count() -> int:
            threads.append(threading.get_ident())
            return len(keys)
        return count

    async def scenario():
        c = KeyCount(counter, min_every_s=5.0, clock=clock)
        assert c.read() == (None, None)  # nothing counted yet: a count starts
        await asyncio.sleep(0.05)
        assert c.read() == (3, 0.0) and len(threads) == 1
        keys.append(4)
        clock.now += 4.9
        assert c.read() == (3, 4.9)  # not due yet: the last count, no new one
        await asyncio.sleep(0.05)
        assert len(threads) == 1
        clock.now += 0.2
        assert c.read() == (3, 5.1)  # due: answered with the last count, a new one started
        await asyncio.sleep(0.05)
        assert c.read() == (4, 0.0) and len(threads) == 2
        return threading.get_ident()

    loop_thread = asyncio.run(scenario())
    assert loop_thread not in threads  # the counting never ran on the event loop


def test_a_slow_count_is_renewed_less_often_and_a_failed_one_keeps_the_last():
    clock, calls = Clock(), []

    def counter():
        def count() -> int:
            calls.append(clock.now)
            if len(calls) == 2:
                raise OSError("store closed")
            clock.now += 1.0  # this count took a second
            return 7
        return count

    async def scenario():
        c = KeyCount(counter, min_every_s=5.0, clock=clock)
        c.read()
        await asyncio.sleep(0.05)
        clock.now += 10.0  # past 5 s, not past 20 x 1 s
        assert c.read() == (7, 10.0)
        await asyncio.sleep(0.05)
        assert len(calls) == 1
        clock.now += 10.0
        c.read()  # due: this count fails
        await asyncio.sleep(0.05)
        assert len(calls) == 2 and c.read()[0] == 7  # the last count stands, and a new one starts

    asyncio.run(scenario())
