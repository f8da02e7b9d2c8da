"""How far behind the items topic the consumer group is, as the catalogue gate reads it
(streams/worker/catalogue.py): committed offsets, partitions never committed, retention; and when
a click on an unknown item needs a catch-up, and what a failed one leaves behind."""

from __future__ import annotations

import asyncio

from hypothesis import given
from hypothesis import strategies as st

from streams.worker.catalogue import CLOCK_MARGIN_S, CatalogueGate, items_behind


def test_behind_counts_from_the_commit_or_the_first_record_left():
    end = {0: 10, 1: 5, 2: 7, 3: 0}
    first = {0: 0, 1: 0, 2: 4, 3: 0}
    # 0: committed 6 -> 4 behind; 1: never committed (-1) -> 5; 2: retention removed 0..3 and the
    # group never committed -> 3, not 7; 3: empty -> 0.
    assert items_behind(end, first, {0: 6, 1: -1}) == 4 + 5 + 3
    assert items_behind(end, first, {0: 10, 1: 5, 2: 7}) == 0
    assert items_behind(end, first, {0: 12, 1: 5, 2: 7}) == 0  # a commit past a reported end counts as done


@given(st.lists(st.tuples(st.integers(0, 50), st.integers(0, 50), st.integers(-1, 60)), min_size=1, max_size=6))
def test_behind_is_zero_exactly_when_every_partition_is_committed_to_its_end(parts):
    end = {p: max(a, b) for p, (a, b, _) in enumerate(parts)}
    first = {p: min(a, b) for p, (a, b, _) in enumerate(parts)}
    committed = {p: c for p, (_, _, c) in enumerate(parts)}
    done = all(max(committed[p], first[p]) >= end[p] for p in end)
    assert (items_behind(end, first, committed) == 0) == done
    assert items_behind(end, first, committed) <= sum(end[p] - first[p] for p in end)


def test_a_catch_up_covers_records_produced_before_it_began_minus_the_clock_margin():
    gate = CatalogueGate("127.0.0.1:1", "g", "items", follower=None, max_wait_s=0)  # type: ignore[arg-type]
    assert not gate.covers(100.0)  # nothing known yet: any click on an unknown item waits
    gate.current_as_of = 1_000.0
    assert gate.covers(1_000.0 - CLOCK_MARGIN_S - 0.1)
    assert not gate.covers(1_000.0 - CLOCK_MARGIN_S + 0.1)  # a producer clock a little behind: wait
    assert not gate.covers(None)


def test_a_catch_up_without_a_broker_gives_up_counts_it_and_fetches_user_topics_again():
    """No broker listens on port 1 (a real refused connection): the catch-up returns False, is
    counted short, and user topics are fetched again whatever happened."""
    gate = CatalogueGate("127.0.0.1:1", "g", "items", follower=None, max_wait_s=0)  # type: ignore[arg-type]
    gate.fetching.set()

    async def run() -> bool:
        return await gate.catch_up(5.0)

    assert asyncio.run(run()) is False
    assert (gate.catch_ups, gate.catch_ups_short, gate.current_as_of) == (1, 1, None)
    assert gate.fetching.is_set()
