"""Faust tables whose changelog writes can be awaited, and reading every local partition of a table."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import faust
from faust.stores.memory import Store as MemoryStore
from faust.types import FutureMessage

from schemas import load_json


class DeliveredTable(faust.Table):
    """A ``faust.Table`` that remembers the changelog sends made since the last ``delivered()``.

    Why: Faust commits a source offset after ``producer.flush()``, but its buffer flush gives up
    after 100 ms without a send (``ProducerBuffer.flush_atmost``), so under CPU load the offset of
    an event can be committed while the changelog record carrying its effect is still unsent; a
    kill -9 then loses that update for good (found by tests/test_crash.py). Agents await
    ``delivered()`` at the end of each micro-batch, before the worker's ``in_order`` counts
    its events as applied (only applied offsets are committed: streams/state/offset_guard.py), so a
    committed offset always has its table write on the broker.
    """

    _unconfirmed: list[FutureMessage] | None = None

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        fut = super().send_changelog(*args, **kwargs)
        if self._unconfirmed is None:
            self._unconfirmed = []
        self._unconfirmed.append(fut)
        return fut

    async def delivered(self) -> int:
        """Wait until every changelog record written so far is acknowledged by the broker."""
        pending, self._unconfirmed = self._unconfirmed or [], None
        if pending:
            await asyncio.gather(*pending)
        return len(pending)


def local_rows(table: faust.Table) -> list[tuple[Any, Any]]:
    """Every (key, value) this worker holds for ``table``, standby partitions included.

    Why: RocksDB's items() lists active partitions only, and a restart replays just the changelog
    tail, so state kept beside a table (the FAISS index, the learned heads) must be read back from
    every local partition. A key may be in several partitions (the heads)."""
    store = table.data
    if hasattr(store, "_visible_items"):  # RocksDB: one database per partition
        return [(load_json(k), load_json(v)) for db in list(store._dbs.values()) for k, v in store._visible_items(db)]
    return list(table.items())



async def count_keys(table: faust.Table, should_stop: Callable[[], bool]) -> int | None:
    """The keys in the table's active partitions, counted in a thread; None if ``should_stop()``
    turned true first (asked every 1,024 keys: a rebalance began).

    Why: ``len(table)`` on the RocksDB store walks every key of every partition on the calling
    thread, 1.4 s per 100,000 users with their states (2026-12-07); /healthz called it on the
    event loop. The count holds the store's rebalance lock and its partitions' databases only while
    it runs: Faust revokes a partition by dropping its database for the garbage collector to close,
    then opens the same path again (as a standby, or later as an active), which a handle still held
    here would make fail. So a rebalance waits for the lock, and the count gives way to it."""
    store = table.data
    if isinstance(store, MemoryStore):
        return len(table)  # a dict's length
    async with store.db_lock:  # the RocksDB store: one database per partition
        if should_stop():
            return None
        dbs = list(store._dbs_for_actives())  # on the loop: standby reads add databases here
        try:
            return await asyncio.to_thread(_count_keys, store, dbs, should_stop)
        finally:
            del dbs  # no handle outlives the lock


def _count_keys(store: Any, dbs: list[Any], should_stop: Callable[[], bool]) -> int | None:
    n = 0
    for db in dbs:
        for _ in store._visible_keys(db):
            n += 1
            if not n & 1023 and should_stop():
                return None
    return n
