"""Decoded user states kept from one micro-batch to the next, each valid only while the users
table still holds the very bytes it was decoded from or written as.

Why: a user handler read every user of a micro-batch from the table and decoded the bytes
(``InterestState.from_bytes``), about 5 % of a click's CPU (py-spy, 2026-12-05), though the
worker itself had written those bytes one batch earlier. Keeping the state object with its
bytes and comparing the bytes the table gives now (a ``memcmp`` of ~14 KB) skips the decode
without trusting the cache: whatever changed the table meanwhile (a rebalance's restore from the
changelog, a standby promoted, a forget) changes the bytes, and the state is decoded again. No
hook into the table's rebalance machinery is needed for that.

The states handed out are the kept objects and callers update them in place, so after a
micro-batch a caller ``settle``s: each state it wrote is kept with the bytes written, each one it
read and did not write (changed in place, maybe: a duplicate's offset) is dropped. A batch that
fails half-way ``clear``s everything.
"""

from __future__ import annotations

from collections import OrderedDict
from typing import Iterable, Mapping

from streams.state.decay import InterestState


class DecodedStates:
    """A bounded LRU of user id -> (the table's bytes, the state they decode to)."""

    def __init__(self, capacity: int) -> None:
        """``capacity``: users kept at most (0 keeps none: every read decodes)."""
        self.capacity = capacity
        self._kept: OrderedDict[str, tuple[bytes, InterestState]] = OrderedDict()
        self.reused = 0  # reads answered by a kept state
        self.decoded = 0  # reads that decoded the bytes

    def __len__(self) -> int:
        return len(self._kept)

    def read(self, user_id: str, raw: bytes | None) -> InterestState | None:
        """The state the table stores for ``user_id`` as ``raw`` (None: no state)."""
        if not raw:
            self._kept.pop(user_id, None)
            return None
        kept = self._kept.get(user_id)
        if kept is not None and (kept[0] is raw or kept[0] == raw):
            self._kept.move_to_end(user_id)
            self.reused += 1
            return kept[1]
        self.decoded += 1
        state = InterestState.from_bytes(raw)
        self.keep(user_id, raw, state)
        return state

    def settle(self, read: Iterable[str], written: Mapping[str, tuple[bytes, InterestState] | None]) -> None:
        """After a micro-batch that ``read`` these users and wrote ``written`` to the table (user
        id -> the bytes written and the state they encode; None: the user's state deleted)."""
        for user_id in read:
            if user_id not in written:
                self.drop(user_id)
        for user_id, kept in written.items():
            if kept is None:
                self.drop(user_id)
            else:
                self.keep(user_id, *kept)

    def keep(self, user_id: str, raw: bytes, state: InterestState) -> None:
        """``state`` is what ``raw``, in the table for ``user_id`` now, decodes to."""
        if self.capacity <= 0:
            return
        self._kept[user_id] = (raw, state)
        self._kept.move_to_end(user_id)
        while len(self._kept) > self.capacity:
            self._kept.popitem(last=False)

    def drop(self, user_id: str) -> None:
        self._kept.pop(user_id, None)

    def clear(self) -> None:
        self._kept.clear()
