"""Records handed to the producer and not yet acknowledged by the broker."""

from __future__ import annotations

import asyncio
from typing import Any


class PendingSends:
    """The producer's futures of records sent and not yet acknowledged. ``wait()`` waits for every
    record handed over before it and raises the first failure since the last ``wait()``: a failed
    send is kept until then, not dropped with its future (the micro-batch behind it must not count
    as done). ``acked``: per partition, the highest offset acknowledged so far (the table's
    persisted offset)."""

    def __init__(self) -> None:
        self._futures: set[asyncio.Future] = set()
        self._failed: list[BaseException] = []
        self.acked: dict[Any, int] = {}

    def add(self, fut: asyncio.Future) -> None:
        if fut.done():
            self._done(fut)
            return
        self._futures.add(fut)
        fut.add_done_callback(self._done)

    def _done(self, fut: asyncio.Future) -> None:
        self._futures.discard(fut)
        if fut.cancelled():
            self._failed.append(asyncio.CancelledError("a send was cancelled before the broker acknowledged it"))
            return
        exc = fut.exception()
        if exc is not None:
            self._failed.append(exc)
            return
        sent = fut.result()
        tp = getattr(sent, "topic_partition", None)
        if tp is not None and sent.offset > self.acked.get(tp, -1):
            self.acked[tp] = sent.offset

    async def wait(self) -> None:
        if self._futures:
            await asyncio.gather(*list(self._futures), return_exceptions=True)
        if self._failed:
            first, self._failed = self._failed[0], []
            raise first

    def __len__(self) -> int:
        return len(self._futures)
