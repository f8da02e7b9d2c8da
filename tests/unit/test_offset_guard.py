"""The offset guard (streams/state/offset_guard.py): whatever order records reach the agents in, each
record of the log is applied once, in offset order, and nothing is committed past a record that is
not applied yet.

The property test drives the guard with a simulated consumer: fetches are honest (they read the log
from the current position, as aiokafka does after a seek), but what reaches the agent is not:
stale runs of records from anywhere in the log are slipped in (what Faust delivered after its
post-recovery seek), records are lost on the way (what a rebalance does to a fetched record) or
delivered twice, and rebalances move the partition back to its committed offset. The log has holes
(offsets that do not exist, as transaction markers or compaction leave)."""

from __future__ import annotations

from collections import deque

from hypothesis import given, settings
from hypothesis import strategies as st

from streams.state.offset_guard import OffsetGuard, Verdict

TP = ("clicks", 0)


class SimulatedPartition:
    """One partition: the log, the fetch position, a fetch in flight and the records on their way
    to the agent. A fetch reads the log at the position it began at; a seek from the agent can come
    while it is in flight (its records then come from the old position)."""

    def __init__(self, log: list[int], guard: OffsetGuard) -> None:
        self.log, self.guard = log, guard
        self.position = log[0] if log else 0
        self.on_the_way: deque[int] = deque()
        self.fetches = 0  # fetches begun
        self.in_flight: tuple[int, list[int]] | None = None  # (its number, what it read)
        self.applied: list[int] = []
        self.now = 0.0

    def seek(self, offset: int) -> None:
        self.position = offset
        self.guard.sought(TP, offset, self.fetches)

    def rebalance(self) -> None:
        """Faust's post-recovery positioning: back to the committed offset (or the first one)."""
        start = self.guard.committable(TP)
        start = (self.log[0] if self.log else 0) if start is None else start
        self.seek(start)
        self.guard.position(TP, start)

    def fetch(self, n: int) -> None:
        """One poll of the consumer, as ``GuardedConsumer.getmany``: the fetch in flight returns,
        re-reads for stalled partitions are sought, then the next fetch begins."""
        if self.in_flight is not None:
            number, got = self.in_flight
            for offset in got:
                self.guard.fetched(TP, offset, self.now, number)
            self.on_the_way.extend(got)
        for _, offset in self.guard.stalled(self.now):
            self.seek(offset)
        self.fetches += 1
        got = [o for o in self.log if o >= self.position][:n]
        if got:
            self.position = got[-1] + 1
        self.in_flight = (self.fetches, got)

    def deliver(self, n: int) -> None:
        for _ in range(min(n, len(self.on_the_way))):
            offset = self.on_the_way.popleft()
            verdict, reread_from = self.guard.admit(TP, offset, self.now)
            if verdict is Verdict.APPLY:
                unapplied = [o for o in self.log if o not in self.applied]
                assert offset == unapplied[0], "handed over out of order, twice, or past a missing record"
                self.applied.append(offset)
                self.guard.applied(TP, offset)
            if reread_from is not None:
                self.seek(reread_from)
            self.check_commit_is_safe()

    def check_commit_is_safe(self) -> None:
        committable = self.guard.committable(TP)
        if committable is not None:
            assert all(o in self.applied for o in self.log if o < committable), "commit would skip a record"


actions = st.lists(st.tuples(st.sampled_from(["fetch", "deliver", "stale", "lose", "twice", "rebalance", "wait"]),
                             st.integers(0, 40)), max_size=80)


@settings(max_examples=300, deadline=None)
@given(size=st.integers(0, 60), holes=st.sets(st.integers(0, 59), max_size=12), steps=actions)
def test_every_record_is_applied_once_in_order_whatever_the_delivery(size, holes, steps):
    log = [o for o in range(size) if o not in holes]
    part = SimulatedPartition(log, OffsetGuard(reread_again_after_s=5.0, stall_after_s=30.0))
    part.rebalance()
    for action, n in steps:
        part.now += 0.5
        if action == "fetch":
            part.fetch(1 + n % 8)
        elif action == "deliver":
            part.deliver(1 + n % 8)
        elif action == "stale":  # a run of records from anywhere, slipped in ahead of the rest
            part.on_the_way.extendleft(reversed([o for o in log if o >= n][: 1 + n % 5]))
        elif action == "lose" and part.on_the_way:
            part.on_the_way.popleft()
        elif action == "twice" and part.on_the_way:
            part.on_the_way.appendleft(part.on_the_way[0])
        elif action == "rebalance":
            part.rebalance()
        elif action == "wait":
            part.now += n
    # From here on delivery is honest but slow: everything must arrive, once, in order.
    for _ in range(4 * len(log) + 20):
        if part.applied == log and not part.on_the_way:
            break
        part.now += 6.0  # long enough for a lost re-read to be asked for again
        part.fetch(8)
        part.fetch(8)
        part.deliver(len(part.on_the_way))
    assert part.applied == log
    if log:
        assert part.guard.committable(TP) == log[-1] + 1


def test_records_before_the_first_position_are_dropped_and_read_later():
    guard = OffsetGuard()
    assert guard.admit(TP, 5, 0.0) == (Verdict.UNPOSITIONED, None)
    guard.position(TP, 3)
    assert guard.admit(TP, 5, 0.0) == (Verdict.AHEAD, 3)
    assert guard.admit(TP, 6, 1.0) == (Verdict.AHEAD, None)  # the re-read asked for is on its way
    assert guard.admit(TP, 3, 1.5)[0] is Verdict.APPLY
    assert guard.admit(TP, 3, 1.6)[0] is Verdict.REREAD
    assert guard.stats.unpositioned_dropped == 1 and guard.stats.ahead_dropped == 2
    assert guard.stats.rereads_asked == 1 and guard.stats.reread_dropped == 1


def test_a_lost_re_read_is_asked_for_again_after_a_while():
    guard = OffsetGuard(reread_again_after_s=5.0)
    guard.position(TP, 0)
    assert guard.admit(TP, 4, 0.0) == (Verdict.AHEAD, 0)
    assert guard.admit(TP, 5, 4.9) == (Verdict.AHEAD, None)
    assert guard.admit(TP, 6, 5.1) == (Verdict.AHEAD, 0)


def test_a_hole_found_by_a_seek_is_stepped_over_once():
    guard = OffsetGuard()
    guard.position(TP, 10)
    guard.hole(TP, 10, 13)  # reading from 10 began at 13
    assert guard.admit(TP, 14, 0.0) == (Verdict.AHEAD, 13)  # 13 itself must come first
    assert guard.admit(TP, 13, 0.1)[0] is Verdict.APPLY
    assert guard.stats.holes_skipped == 3
    guard.applied(TP, 13)
    assert guard.committable(TP) == 14


def test_only_applied_records_move_the_commit_and_revoked_partitions_are_forgotten():
    guard = OffsetGuard()
    other = ("clicks", 1)
    guard.position(TP, 7)
    guard.position(other, 0)
    assert guard.committable(TP) == 7
    assert guard.admit(TP, 7, 0.0)[0] is Verdict.APPLY
    assert guard.committable(TP) == 7  # handed over, not yet applied
    guard.applied(TP, 7)
    assert guard.committable(TP) == 8
    guard.keep_only({TP})
    assert guard.committable(other) is None and not guard.positioned(other)
    guard.applied(other, 3)  # a batch that finished after the partition was revoked
    assert guard.committable(other) is None


def test_unapplied_counts_what_is_past_the_commit_up_to_the_end_or_what_was_fetched():
    guard = OffsetGuard()
    assert guard.unapplied(TP, 10) is None  # not positioned yet
    guard.position(TP, 4)  # after a restart: committed at 4, the log ends at 10
    assert guard.unapplied(TP, 10) == 6
    for offset in (4, 5, 6):
        guard.fetched(TP, offset, 0.0, 1)
        guard.admit(TP, offset, 0.0)
    guard.applied(TP, 4)
    guard.applied(TP, 5)
    # A broker that gives an end short of what it served (the last batch's first offset): the
    # record fetched and not applied still counts.
    assert guard.unapplied(TP, 6) == 1
    guard.applied(TP, 6)
    assert guard.unapplied(TP, 6) == 0 and guard.unapplied(TP, 10) == 3


def test_a_lost_last_record_is_read_again_once_the_partition_stalls():
    """Nothing after it would show it missing, so the guard notices the silence instead."""
    guard = OffsetGuard(stall_after_s=30.0)
    guard.position(TP, 0)
    guard.fetched(TP, 0, now=0.0, fetch=1)  # fetched, then lost on its way to the agent
    assert guard.stalled(now=10.0) == []  # an agent busy for a while is not a loss
    assert guard.stalled(now=31.0) == [(TP, 0)]
    assert guard.stalled(now=32.0) == []  # asked once; again only after another stall_after_s
    assert guard.admit(TP, 0, now=33.0) == (Verdict.APPLY, None)
    guard.applied(TP, 0)
    assert guard.stalled(now=100.0) == []  # nothing fetched past what was handed over
    assert guard.committable(TP) == 1



def test_records_read_again_after_a_stall_and_lost_again_are_not_taken_for_a_hole():
    """The re-read's own fetch tells where the log goes on; a later fetch's first record comes
    after what that one read, so taking it for the end of a hole would skip records lost twice."""
    guard = OffsetGuard(stall_after_s=30.0)
    guard.position(TP, 0)
    for offset in range(5):
        guard.fetched(TP, offset, now=0.0, fetch=1)  # then all lost on their way to the agent
    assert guard.stalled(now=31.0) == [(TP, 0)]
    guard.sought(TP, 0, fetches_begun=1)  # the re-read, before the second fetch begins
    for offset in range(5):
        guard.fetched(TP, offset, now=31.0, fetch=2)  # read again from 0: no hole; lost again
    guard.fetched(TP, 5, now=40.0, fetch=3)
    assert guard.admit(TP, 5, now=40.0) == (Verdict.AHEAD, 0)  # 0 to 4 are asked for again
    assert guard.stats.holes_skipped == 0


def test_a_fetch_in_flight_during_a_seek_does_not_mark_the_end_of_a_hole():
    """Its records were read from the old position; the first record of a fetch begun after the
    seek shows where the log goes on (here: offsets 2 to 4 do not exist)."""
    guard = OffsetGuard()
    guard.position(TP, 0)
    guard.sought(TP, 2, fetches_begun=7)  # fetch 7 is still in flight
    guard.fetched(TP, 6, now=0.0, fetch=7)
    guard.fetched(TP, 5, now=0.0, fetch=8)
    assert [guard.admit(TP, o, 0.0)[0] for o in (0, 1)] == [Verdict.APPLY, Verdict.APPLY]
    assert guard.admit(TP, 6, 0.1) == (Verdict.AHEAD, 5)  # past the hole, 5 must come first
    assert guard.admit(TP, 5, 0.2)[0] is Verdict.APPLY
    assert guard.stats.holes_skipped == 3
