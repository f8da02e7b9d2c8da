"""Faust tables whose changelog writes can be awaited, and reading every local partition of a table."""

from __future__ import annotations

import asyncio
from typing import Any, Callable

import faust
from faust.stores.memory import Store as MemoryStore
from faust.types import FutureMessage

from schemas import load_json
from streams.faust_ext.sends import PendingSends


class DeliveredTable(faust.Table):
    """A ``faust.Table`` whose changelog writes can be awaited (``delivered()``), sent straight to
    the producer.

    Why awaited: Faust commits a source offset after ``producer.flush()``, but its buffer flush
    gives up after 100 ms without a send (``ProducerBuffer.flush_atmost``), so under CPU load the
    offset of an event can be committed while the changelog record carrying its effect is still
    unsent; a kill -9 then loses that update for good (found by tests/test_crash.py). Agents await
    ``delivered()`` at the end of each micro-batch, before the worker's ``in_order`` counts its
    events as applied (only applied offsets are committed: streams/state/offset_guard.py), so a
    committed offset always has its table write on the broker.

    Why straight to the producer: Faust's ``send_soon`` wraps each record in a ``FutureMessage``,
    queues it in its ``ProducerBuffer`` and publishes it through ``Topic.publish_message``, which
    yields to the event loop per record; the producer then ships produce requests of a record or
    two. Measured against the bundled broker (2026-12-08, `benchmarks/send_cost.py`): 127-141 µs
    of CPU a 4 KB record that way, 29-30 µs through ``Producer.send``. Here a write's record is
    serialised as Faust would, queued, and sent by one task per table in a run of ``send`` calls;
    the RocksDB store's persisted offset (where a restore resumes) is written once per partition
    per ``delivered()``, not once per record. Inside a transaction, or for a table whose partition
    comes from the producer's partitioner, Faust's own path is kept.
    """

    _pending: PendingSends | None = None  # records handed to the producer, not yet acknowledged
    _queued: list[tuple[int, Any, Any, Any]] | None = None  # (partition, key, value, headers) not yet handed over
    _sender: asyncio.Task | None = None

    @property
    def pending(self) -> PendingSends:
        if self._pending is None:
            self._pending = PendingSends()
        return self._pending

    def send_changelog(self, *args: Any, **kwargs: Any) -> FutureMessage:
        fut = super().send_changelog(*args, **kwargs)
        self.pending.add(fut)
        return fut

    def on_key_set(self, key: Any, value: Any) -> None:
        partition = self.partition_for_key(key)
        if partition is None or self.app.in_transaction:
            super().on_key_set(key, value)
            return
        self._queue(partition, key, value, self.value_serializer)
        self._maybe_set_key_ttl(key, partition)
        self._sensor_on_set(self, key, value)

    def on_key_del(self, key: Any) -> None:
        partition = self.partition_for_key(key)
        if partition is None or self.app.in_transaction:
            super().on_key_del(key)
            return
        self._queue(partition, key, None, "raw")  # a tombstone, as Faust writes it
        self._maybe_del_key_ttl(key, partition)
        self._sensor_on_del(self, key)

    def _queue(self, partition: int, key: Any, value: Any, value_serializer: Any) -> None:
        topic = self.changelog_topic
        key_bytes, headers = topic.prepare_key(key, self.key_serializer, None, {})
        value_bytes, headers = topic.prepare_value(value, value_serializer, None, headers)
        if self._queued is None:
            self._queued = []
        self._queued.append((partition, key_bytes, value_bytes, headers or None))
        self._start_sender()

    def _start_sender(self) -> None:
        if self._sender is None and self._queued:
            self._sender = asyncio.ensure_future(self._send_queued())

    async def _send_queued(self) -> None:
        producer, name = self.app.producer, self.changelog_topic.get_topic_name()
        try:
            while self._queued:
                queued, self._queued = self._queued, None
                for n, (partition, key, value, headers) in enumerate(queued):
                    try:
                        self.pending.add(await producer.send(name, key, value, partition, None, headers))
                    except BaseException:
                        # Not handed over: they go first when a sender starts again (order kept).
                        self._queued = queued[n:] + (self._queued or [])
                        raise
        finally:
            self._sender = None

    async def delivered(self) -> None:
        """Wait until every changelog record written so far is acknowledged by the broker."""
        while self._queued or self._sender is not None:
            self._start_sender()
            assert self._sender is not None
            # Shielded: a cancelled wait (the agent stopping) leaves the records to be sent.
            await asyncio.shield(self._sender)
        pending = self.pending
        await pending.wait()
        for tp, offset in pending.acked.items():  # where a restore of this table resumes
            self.data.set_persisted_offset(tp, offset)
        pending.acked.clear()


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
