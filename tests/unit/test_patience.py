"""The waits of tests and tools: a worker still making progress is waited for, a stuck one is not
(streams/tools/process.py). Time is the test's own clock, advanced by hand."""

from __future__ import annotations

from streams.tools.process import Patience, progress_of
from tests.helpers.clock import Clock


def test_gives_up_after_the_timeout_without_progress():
    clock = Clock()
    patience = Patience(10, clock=clock)
    clock.now += 9.9
    assert patience.waiting(5)
    clock.now += 9.9  # 9.9 s since 5 was first seen
    assert patience.waiting(5)
    clock.now += 0.2
    assert not patience.waiting(5)
    assert "the last 10s without progress" in str(patience)


def test_progress_restarts_the_timeout_up_to_the_limit():
    clock = Clock()
    patience = Patience(10, limit=3, clock=clock)
    for count in range(1, 6):  # something new every 5 s: 25 s in all, far past one timeout
        clock.now += 5
        assert patience.waiting(count), count
    clock.now += 6  # still moving, but 31 s is past 3 x 10 s
    assert not patience.waiting(6)
    assert str(patience).startswith("after 31s")


def test_progress_is_the_status_and_the_counters_not_the_clocks():
    health = {"status": "starting", "uptime_s": 1.5, "items_indexed": 10, "events_applied": 0,
              "broker": {"reachable": True}, "recovered_after_s": None}
    same = progress_of(health)
    assert progress_of({**health, "uptime_s": 9.0, "broker": {"reachable": False}}) == same
    assert progress_of({**health, "items_indexed": 11}) != same
    assert progress_of({**health, "status": "ok"}) != same
    assert progress_of(None) != same  # not answering is a state of its own
