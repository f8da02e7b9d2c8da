"""How many keys (users) a table's active partitions hold, for /healthz, without walking them on
the event loop at every request: counted elsewhere (``streams.faust_ext.count_keys``: a thread),
only when asked, and not again until a while has passed."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Awaitable, Callable

log = logging.getLogger(__name__)


class KeyCount:
    """The last count and its age. A new count waits at least ``min_every_s`` and 20 times what the
    last one took, so even a table of millions costs a few % of one thread (which still shares the
    GIL with the event loop while it counts); after a failed or given-up count, ``min_every_s``."""

    def __init__(self, count: Callable[[], Awaitable[int | None]], min_every_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``count``: the keys now, or None when it gave up (a rebalance began)."""
        self._count = count
        self.min_every_s = min_every_s
        self._clock = clock
        self.value: int | None = None
        self._at: float | None = None
        self._next_at = float("-inf")
        self._task: asyncio.Task | None = None

    def read(self) -> tuple[int | None, float | None]:
        """(the last count, seconds since it was made); None before the first. Starts a count, when
        one is due and none runs, on the running event loop (none: the last count only)."""
        now = self._clock()
        if now >= self._next_at and self._task is None:
            try:
                self._task = asyncio.get_running_loop().create_task(self.refresh())
            except RuntimeError:  # no event loop in this thread
                pass
        return self.value, None if self._at is None else round(now - self._at, 1)

    async def refresh(self) -> None:
        started = self._clock()
        try:
            value = await self._count()
        except Exception:
            log.exception("counting the keys failed; the last count stands")
            value = None
        finally:
            self._task = None
        now = self._clock()
        if value is None:
            self._next_at = now + self.min_every_s
            return
        self.value, self._at = value, now
        self._next_at = now + max(self.min_every_s, 20 * (now - started))

    async def settled(self) -> None:
        """Until the count now running, if any, is done."""
        if self._task is not None:
            await asyncio.shield(self._task)
