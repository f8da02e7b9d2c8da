"""streams.faust_ext.micro_batches on a real Faust stream over an in-memory channel (no broker:
the app's transport is never connected). Lower bounds on time only: each is guaranteed by
construction, never a measure of speed."""

from __future__ import annotations

import asyncio
import time

import faust
from hypothesis import given, settings
from hypothesis import strategies as st

from streams.faust_ext import micro_batches


async def run(sends: list[float], max_: int, interval: float, hold: dict[int, float], max_heavy: int | None = None,
              heavy: set[int] = frozenset()) -> list[tuple[list[int], float, float]]:
    """Send 0, 1, ... (sleeping ``sends[i]`` s before value i) to a stream read with
    ``micro_batches`` (values in ``heavy`` count against ``max_heavy``); the agent holds list k for
    ``hold[k]`` s. (values, handed at, handed back at) per list, until every value came."""
    app = faust.App("micro-batches-test", broker="kafka://127.0.0.1:9", store="memory://", web_enabled=False)
    app.flow_control.resume()  # what the worker's consumer does once partitions are assigned
    channel = app.channel()
    stream = app.stream(channel)
    lists: list[tuple[list[int], float, float]] = []
    done = asyncio.Event()

    async def agent() -> None:
        async for batch in micro_batches(stream, max_, interval, max_heavy, lambda e: e.value in heavy):
            at = time.monotonic()
            await asyncio.sleep(hold.get(len(lists), 0.0))
            lists.append(([e.value for e in batch], at, time.monotonic()))
            if sum(len(v) for v, _, _ in lists) == len(sends):
                done.set()

    task = asyncio.ensure_future(agent())
    for i, gap in enumerate(sends):
        await asyncio.sleep(gap)
        await channel.send(value=i)
    await asyncio.wait_for(done.wait(), 30)
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    await stream.stop()
    return lists


@settings(max_examples=15, deadline=None)
@given(sends=st.lists(st.sampled_from([0.0, 0.0, 0.002, 0.01]), min_size=1, max_size=40),
       max_=st.integers(1, 8), holds=st.lists(st.sampled_from([0.0, 0.005, 0.03]), max_size=10))
def test_every_event_once_in_order_in_lists_of_at_most_max(sends, max_, holds):
    interval = 0.01
    lists = asyncio.run(run(sends, max_, interval, dict(enumerate(holds))))
    assert [v for values, _, _ in lists for v in values] == list(range(len(sends)))
    assert all(1 <= len(values) <= max_ for values, _, _ in lists)
    # A list that is not full is handed over no sooner than one interval after the previous one.
    for (_, before, _), (values, at, _) in zip(lists, lists[1:]):
        assert len(values) == max_ or at - before >= interval * 0.99


@settings(max_examples=15, deadline=None)
@given(sends=st.lists(st.sampled_from([0.0, 0.0, 0.0, 0.002]), min_size=1, max_size=40),
       heavy=st.sets(st.integers(0, 39)), max_=st.integers(2, 12), max_heavy=st.integers(1, 4),
       holds=st.lists(st.sampled_from([0.0, 0.005, 0.03]), max_size=10))
def test_lists_hold_at_most_max_heavy_heavy_events(sends, heavy, max_, max_heavy, holds):
    # Texts for the encoder (heavy) are capped apart from all events (clicks): a list is full, and
    # goes at once, at either cap.
    interval = 0.01
    lists = asyncio.run(run(sends, max_, interval, dict(enumerate(holds)), max_heavy, heavy))
    assert [v for values, _, _ in lists for v in values] == list(range(len(sends)))
    counts = [(len(values), len(heavy.intersection(values))) for values, _, _ in lists]
    assert all(1 <= n <= max_ and h <= max_heavy for n, h in counts)
    for (_, before, _), (values, at, _) in zip(lists, lists[1:]):
        full = len(values) == max_ or len(heavy.intersection(values)) == max_heavy
        assert full or at - before >= interval * 0.99


def test_a_list_is_full_at_max_heavy_heavy_events_before_max_events():
    interval = 1.0
    lists = asyncio.run(run([0.0, 0.05, 0.0, 0.0, 0.0, 0.0, 0.05], 10, interval, {}, 2, {1, 3, 4}))
    assert [v for v, _, _ in lists] == [[0], [1, 2, 3], [4, 5, 6]]
    handed = [at for _, at, _ in lists]
    assert handed[1] - handed[0] < interval / 2  # two heavy ones: full, no wait
    assert handed[2] - handed[1] >= interval * 0.99  # one heavy of two, 3 of 10: the interval


def test_records_that_came_while_the_agent_was_busy_go_next_without_another_wait():
    # The interval (2 s) is far longer than the agent's hold of the first list (2.5 s) minus the
    # time it took: Faust's take_events would wait 2 s more after the hold; this hands over at once.
    interval = 2.0
    lists = asyncio.run(run([0.0] + [0.1] * 5, 64, interval, {0: 2.5}))
    (first, _, back), (second, at, _) = lists
    assert first == [0]  # an idle stream's first record goes at once
    assert second == [1, 2, 3, 4, 5]  # all that came during the hold, together
    assert at - back < interval / 2


def test_a_full_list_goes_at_once_and_an_idle_stream_waits_for_the_interval():
    interval = 1.0
    lists = asyncio.run(run([0.0, 0.05, 0.0, 0.0, 0.0, 0.0, 0.0, 0.05], 3, interval, {}))
    assert [v for v, _, _ in lists] == [[0], [1, 2, 3], [4, 5, 6], [7]]
    handed = [at for _, at, _ in lists]
    assert handed[2] - handed[0] < interval / 2  # full: no wait
    assert handed[3] - handed[2] >= interval * 0.99  # not full: one interval after the last list


def test_no_interval_hands_over_whatever_has_come_and_an_idle_stream_waits():
    # batch_wait_ms=0 is a valid setting: lists go as soon as the agent is free, and between
    # records the agent waits for the next one (it must not spin; the CPU it used is checked).
    cpu = time.process_time()
    lists = asyncio.run(run([0.0, 0.3, 0.3, 0.0, 0.0], 8, 0.0, {}))
    assert [v for values, _, _ in lists for v in values] == [0, 1, 2, 3, 4]
    assert time.process_time() - cpu < 0.5  # 0.6 s of idle waiting; a busy loop would use it all
