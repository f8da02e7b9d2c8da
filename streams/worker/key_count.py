"""How many keys (users) a table's active partitions hold, for /healthz, without holding up the
event loop: counted in a thread, only when asked, and not again until a while has passed."""

from __future__ import annotations

import asyncio
import logging
import time
from typing import Callable

log = logging.getLogger(__name__)


class KeyCount:
    """The last count and its age. Counting again waits at least ``min_every_s`` and 20 times what
    the last count took, so even a table of millions costs its thread a few % at most."""

    def __init__(self, counter: Callable[[], Callable[[], int]], min_every_s: float = 5.0,
                 clock: Callable[[], float] = time.monotonic) -> None:
        """``counter``: called on the event loop, returns the function that counts (in a thread)."""
        self._counter = counter
        self.min_every_s = min_every_s
        self._clock = clock
        self.value: int | None = None
        self._at: float | None = None
        self._took = 0.0
        self._task: asyncio.Task | None = None

    def read(self) -> tuple[int | None, float | None]:
        """(the last count, seconds since it was made); None before the first. Starts a count when
        the last one is due for renewal and none is running."""
        now = self._clock()
        due = self._at is None or now - self._at >= max(self.min_every_s, 20 * self._took)
        if due and self._task is None:
            self._task = asyncio.get_running_loop().create_task(self.refresh())
        return self.value, None if self._at is None else round(now - self._at, 1)

    async def refresh(self) -> None:
        try:
            count = self._counter()
            started = self._clock()
            self.value = await asyncio.to_thread(count)
            self._at = self._clock()
            self._took = self._at - started
        except Exception:  # e.g. a partition's store closed under it: the last count stands
            log.exception("counting the table's keys failed")
        finally:
            self._task = None
