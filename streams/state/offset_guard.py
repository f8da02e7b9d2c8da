"""Per-partition bookkeeping that makes agents apply each input record once, in offset order.

Pure logic (no Kafka, no Faust): ``streams/faust_ext/consumer.py`` feeds it the records Faust hands to the
agents, the seeks it makes and the offsets the agents have applied, and does the I/O it asks for.

Why it exists: each user's state remembers the highest offset it has applied per source partition
(``streams/state/updates.py``), which is only right if nothing below that offset was ever skipped. Faust
does skip records: after table recovery it hands over records fetched before its seek back to the
committed offset, and its offset commit can move past records no agent ever applied (its "gaps"
count as acknowledged). So instead of trusting Faust's commit, the guard
- hands over a record only if its offset is the next one expected for its partition,
- drops records below that (read again after a seek: already applied),
- drops records above it and asks for the partition to be read again from the expected offset,
  unless a seek there showed the offsets in between do not exist (a hole: transaction markers,
  compaction, retention): the first record of the first fetch that began after the seek is where
  the log goes on from there,
- asks for a re-read too when records were fetched past the expected offset but none has reached
  the agent for ``stall_after_s`` (the expected one was lost on its way and no later one came to
  show it),
- and offers for commit only offsets below which every record was applied *and* its table writes
  delivered (``applied``), so a restart never starts past a record nobody applied.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from enum import Enum
from typing import Generic, Hashable, TypeVar

P = TypeVar("P", bound=Hashable)  # a topic partition


class Verdict(Enum):
    APPLY = "apply"  # the next record of its partition
    REREAD = "reread"  # already handed over (read again after a seek)
    AHEAD = "ahead"  # records before it are missing: the partition is read again
    UNPOSITIONED = "unpositioned"  # fetched before the partition's start position was set


@dataclass
class GuardStats:
    reread_dropped: int = 0
    ahead_dropped: int = 0
    unpositioned_dropped: int = 0
    rereads_asked: int = 0
    holes_skipped: int = 0  # offsets that do not exist in the log, stepped over


@dataclass
class OffsetGuard(Generic[P]):
    # A partition asked to be read again and still delivering records ahead is asked once more
    # after this long: the re-read records can be lost on their way to the agent (a rebalance
    # cancels Faust's delivery of a fetched record).
    reread_again_after_s: float = 5.0
    # Records fetched, none handed over for this long: the next one was lost (long enough that a
    # busy agent, e.g. a long encode, is not mistaken for a loss; a false alarm costs one re-read).
    stall_after_s: float = 30.0
    stats: GuardStats = field(default_factory=GuardStats)
    _next: dict[P, int] = field(default_factory=dict)  # the next offset to hand over
    _safe: dict[P, int] = field(default_factory=dict)  # everything below is applied and delivered
    _holes: dict[P, tuple[int, int]] = field(default_factory=dict)  # [start, end) known not to exist
    _reread: dict[P, tuple[int, float]] = field(default_factory=dict)  # last re-read asked: (offset, when)
    _fetched: dict[P, int] = field(default_factory=dict)  # one past the highest offset fetched since positioned
    _seen_at: dict[P, float] = field(default_factory=dict)  # when a record last reached admit (or a re-read was asked)
    _sought: dict[P, tuple[int, int]] = field(default_factory=dict)  # our seek, no record read since: (offset, fetches begun before it)

    def position(self, tp: P, offset: int) -> None:
        """The partition was just sought to ``offset``, its committed offset (or first one)."""
        self._next[tp] = offset
        self._safe[tp] = offset
        self._holes.pop(tp, None)
        self._reread.pop(tp, None)
        self._fetched.pop(tp, None)
        self._seen_at.pop(tp, None)

    def keep_only(self, assigned: set[P]) -> None:
        """Forget partitions no longer assigned (another worker applies them now)."""
        for book in (self._next, self._safe, self._holes, self._reread, self._fetched, self._seen_at, self._sought):
            for tp in [tp for tp in book if tp not in assigned]:
                del book[tp]

    def positioned(self, tp: P) -> bool:
        return tp in self._next

    def hole(self, tp: P, start: int, end: int) -> None:
        """A read from ``start`` began at ``end``: offsets start..end-1 do not exist."""
        if end > start:
            self._holes[tp] = (start, end)

    def sought(self, tp: P, offset: int, fetches_begun: int) -> None:
        """The consumer moved the partition's read position to ``offset`` when ``fetches_begun``
        fetches had begun (those may still return records read from the old position)."""
        self._sought[tp] = (offset, fetches_begun)

    def fetched(self, tp: P, offset: int, now: float, fetch: int) -> None:
        """The consumer fetched the record at ``offset`` in its ``fetch``-th fetch (it is on its way
        to the agent). The partition's first record from a fetch begun after our seek tells where
        the log goes on from the sought offset (a hole if past it)."""
        sought = self._sought.get(tp)
        if sought is not None and fetch > sought[1]:
            del self._sought[tp]
            self.hole(tp, sought[0], offset)
        if offset + 1 > self._fetched.get(tp, -1):
            self._fetched[tp] = offset + 1
        self._seen_at.setdefault(tp, now)

    def stalled(self, now: float) -> list[tuple[P, int]]:
        """Partitions to read again, and from where: records were fetched past the expected offset
        but nothing reached the agent for ``stall_after_s``."""
        out = []
        for tp, expected in self._next.items():
            if self._fetched.get(tp, expected) <= expected or now - self._seen_at.get(tp, now) < self.stall_after_s:
                continue
            self._seen_at[tp] = now
            self._reread[tp] = (expected, now)
            self.stats.rereads_asked += 1
            out.append((tp, expected))
        return out

    def admit(self, tp: P, offset: int, now: float) -> tuple[Verdict, int | None]:
        """What to do with a record; the second value, when set, is the offset to read the
        partition again from."""
        self._seen_at[tp] = now
        expected = self._next.get(tp)
        if expected is None:
            self.stats.unpositioned_dropped += 1
            return Verdict.UNPOSITIONED, None
        hole = self._holes.get(tp)
        if hole is not None and hole[0] == expected and offset >= hole[1]:
            self.stats.holes_skipped += hole[1] - hole[0]
            del self._holes[tp]
            expected = self._next[tp] = hole[1]
        if offset < expected:
            self.stats.reread_dropped += 1
            return Verdict.REREAD, None
        if offset == expected:
            self._next[tp] = offset + 1
            self._reread.pop(tp, None)
            return Verdict.APPLY, None
        self.stats.ahead_dropped += 1
        asked = self._reread.get(tp)
        if asked is not None and asked[0] == expected and now - asked[1] < self.reread_again_after_s:
            return Verdict.AHEAD, None  # a re-read from there is on its way
        self._reread[tp] = (expected, now)
        self.stats.rereads_asked += 1
        return Verdict.AHEAD, expected

    def applied(self, tp: P, offset: int) -> None:
        """The record at ``offset`` (handed over by ``admit``) is applied and its writes delivered."""
        if tp in self._safe and offset + 1 > self._safe[tp]:
            self._safe[tp] = offset + 1

    def committable(self, tp: P) -> int | None:
        """The offset to commit: every record below it is applied and delivered."""
        return self._safe.get(tp)

    def unapplied(self, tp: P, end: int) -> int | None:
        """Records of the partition not applied yet, given its end as a fetch last saw it (what
        was fetched counts too: a broker may give an end short of records it served, as the
        bundled Tansu does for list offsets, streams/end_offsets.py); None when not positioned.
        A transaction's commit marker after the partition's last record counts as one."""
        safe = self._safe.get(tp)
        if safe is None:
            return None
        return max(0, max(end, self._fetched.get(tp, 0)) - safe)
