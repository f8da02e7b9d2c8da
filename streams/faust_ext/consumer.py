"""Faust's aiokafka consumer, with an ``OffsetGuard`` deciding what agents apply and what is committed.

Found by tests/test_crash.py with the RocksDB store (its recovery takes no time, so the timing
lines up on most restarts under load): after table recovery Faust seeks each input partition back
to its committed offset, but a fetch issued before that seek can return after it with records
thousands of offsets ahead. Faust records the offsets in between as a "gap" that counts as
acknowledged, hands over the stale records and drops the re-read ones as already read; a partition
nobody has committed yet is not sought at all. Its next commit then jumped ~8,000 records per
partition that no agent ever applied.

So for the topics the agents read (each agent goes through the worker's ``in_order``):
- after Faust's seek, each partition is sought again, to its committed offset or its first one,
  and the guard starts there;
- Faust's own read-offset filter is switched off (it would drop the records we read again on
  purpose); the guard orders records instead (``admit``), asking for a partition to be read again
  when records are missing;
- the first record after each of our seeks tells whether the offsets before it exist (a hole);
- the committed offset is the guard's, not Faust's: below it every record was applied, and its
  table writes and output records were acknowledged by the broker (``streams/worker/app.py``).
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from typing import Any, AsyncIterator, Iterable, Mapping, Sequence

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.errors import IllegalStateError
from faust.exceptions import ConsumerNotStarted
from faust.transport.consumer import CONSUMER_FETCHING
from faust.transport.drivers.aiokafka import AIOKafkaConsumerThread
from faust.transport.drivers.aiokafka import Consumer as AIOKafkaFaustConsumer
from faust.types import TP, EventT, Message

from streams.end_offsets import exact_end_offsets
from streams.state.offset_guard import OffsetGuard, Verdict


class _ConsumerThread(AIOKafkaConsumerThread):
    # How long a stopping worker waits for aiokafka's consumer to stop (mode's default: 60 s). It
    # stops in about a second with the broker up; with the broker gone it retries until this runs
    # out, which held a SIGTERM'd worker for 62 s, past a supervisor's usual 30 s grace. Offsets are
    # committed before this, and a consumer that did not leave its group is what a crash leaves.
    shutdown_timeout = 10.0

    def _create_worker_consumer(self, transport: Any) -> Any:
        consumer = super()._create_worker_consumer(transport)
        # Faust hard-codes fetch_max_wait_ms=1500; aiokafka reads this attribute when it starts.
        consumer._fetch_max_wait_ms = self.consumer.fetch_max_wait_ms
        return consumer


class GuardedConsumer(AIOKafkaFaustConsumer):
    # How long the broker may hold a fetch that finds no data. Faust's 1.5 s is what an idle
    # worker waits before it sees a new record on a broker that answers only at the deadline
    # (the bundled Tansu answers at about half of it); set per app by ``guarded_consumer``.
    fetch_max_wait_ms: int = 1500
    # Topics whose records are not fetched until the event is set (the catalogue gate: user
    # events wait for the index at a start); set per app by ``guarded_consumer``.
    hold: tuple[frozenset[str], asyncio.Event] | None = None
    bootstrap: str = ""  # host:port, where ``highwaters`` reads the last records from

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.guard: OffsetGuard[TP] = OffsetGuard()
        self._guarded_topics: frozenset[str] | None = None
        self._fetches = 0  # getmany calls begun so far

    def guarded(self, tp: TP) -> bool:
        """The agents' input topics. Not the changelogs: Faust's recovery reads them through this
        consumer too, and positions them itself."""
        if self._guarded_topics is None:
            self._guarded_topics = frozenset(t for agent in self.app.agents.values() for t in agent.channel.topics)
        return tp.topic in self._guarded_topics

    def _new_consumer_thread(self) -> AIOKafkaConsumerThread:
        return _ConsumerThread(self, loop=self.loop, beacon=self.beacon)

    # -- positions -------------------------------------------------------------------------------
    async def perform_seek(self) -> None:
        await super().perform_seek()
        assigned = {tp for tp in self.assignment() if self.guarded(tp)}
        self.guard.keep_only(assigned)
        if not assigned:
            return
        consumer = self._thread._ensure_consumer()
        committed = {tp: await self._thread.call_thread(consumer.committed, _kafka_tp(tp)) for tp in assigned}
        never = [tp for tp, offset in committed.items() if offset is None]
        if never:  # the app's reset policy is "earliest"
            committed.update(await self.earliest_offsets(*never))
        for tp, offset in committed.items():
            await self._seek_guarded(tp, offset)
            self.guard.position(tp, offset)

    async def _seek_guarded(self, tp: TP, offset: int) -> None:
        # In the consumer's own thread, waiting until the position holds (Faust's ``seek`` calls
        # aiokafka from the event loop's thread, which left a partition stalled in the rebalance test).
        await self._thread.seek_wait({_kafka_tp(tp): offset})
        # A fetch begun before the seek completed may still return records from the old position.
        self.guard.sought(tp, offset, self._fetches)

    async def highwaters(self, *partitions: TP) -> Mapping[TP, int]:
        """The end offsets Faust's table recovery reads the changelogs up to, read from the last
        records (``streams/end_offsets.py``: the bundled broker reports them short of the rest of
        a multi-record batch, and recovery would leave those writes out). If that read fails,
        Faust's own answer; either way never below what a local store has already applied (Faust
        refuses to recover a store that is ahead of the end it was given)."""
        if not partitions or not self.bootstrap:
            return await super().highwaters(*partitions)
        try:
            ends = await asyncio.wait_for(self._read_ends(partitions), timeout=30.0)
        except asyncio.CancelledError:
            raise
        except Exception as exc:  # noqa: BLE001 - recovery must go on
            self.log.warning("reading the changelogs' last records failed (%r); using the reported end offsets", exc)
            ends = dict(await super().highwaters(*partitions))
        return self._not_below_applied(ends)

    async def _read_ends(self, partitions: Sequence[TP]) -> dict[TP, int]:
        reader = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                  request_timeout_ms=10_000)
        try:
            await reader.start()
            ends = await exact_end_offsets(reader, [_kafka_tp(tp) for tp in partitions])
            return {tp: ends[_kafka_tp(tp)] for tp in partitions}
        finally:
            with contextlib.suppress(Exception):  # a failed close must not hide the answer
                await reader.stop()

    def _not_below_applied(self, ends: Mapping[TP, int]) -> dict[TP, int]:
        """A local store that has applied offset n shows the changelog reaches n + 1."""
        tables = {table.changelog_topic.get_topic_name(): table for table in self.app.tables.values()}
        out = dict(ends)
        for tp, end in ends.items():
            table = tables.get(tp.topic)
            applied = table.persisted_offset(tp) if table is not None else None
            if applied is not None:
                out[tp] = max(end, applied + 1)
        return out

    # -- records ---------------------------------------------------------------------------------
    async def _getmany(self, active_partitions: set[TP] | None, timeout: float) -> Any:
        """Held topics are left out of the fetch altogether. Holding their agent instead would
        leave fetched records unacknowledged in Faust's queues: one full queue stops delivery of
        every topic (the item records the gate waits for included), and a rebalance waits for
        them to be acknowledged."""
        if self.hold is not None and not self.hold[1].is_set() and active_partitions is not None:
            active_partitions = {tp for tp in active_partitions if tp.topic not in self.hold[0]}
            if not active_partitions:
                await asyncio.sleep(min(timeout, 0.2))
                return {}
        return await super()._getmany(active_partitions, timeout)

    async def getmany(self, timeout: float) -> AsyncIterator[tuple[TP, Message]]:
        # Re-reads first, then this fetch begins: its records come from the sought positions
        # (counted after them, or the record after those it reads would be taken for the end of
        # a hole, and the ones in between skipped if they were lost on their way again).
        for tp, offset in self.guard.stalled(time.monotonic()):
            self.log.warning("%s: records fetched but none reached the agent; reading again from %d", tp, offset)
            await self._seek_guarded(tp, offset)
        self._fetches += 1
        fetch = self._fetches
        async for tp, message in super().getmany(timeout):
            if self.guarded(tp):
                self.guard.fetched(tp, message.offset, time.monotonic(), fetch)
                self._read_offset[tp] = None  # Faust's filter would drop records read again on purpose
            yield tp, message

    async def _drain_messages(self, fetcher: Any) -> None:
        """Faust's loop from fetched records to the agents' streams, with one ``wait_first`` per
        fetch instead of one per record. Faust's races each record's delivery against a
        rebalance's ``suspend_flow`` (and a stop or crash) with four new tasks and an
        ``asyncio.wait``: a no-op agent took 190-220 µs of CPU per record with Faust's loop and
        86-111 µs with this one (``benchmarks/faust_ceiling.py``). The race itself is kept: a
        delivery that blocks when the flow is suspended is abandoned, with the rest of that
        fetch (Faust drops those too: ``getmany`` stops yielding once the flow stops), and the
        offset guard reads whatever was not applied again after the rebalance's seek."""
        callback, getmany = self.callback, self.getmany
        stopped, fetcher_stopped = self._stopped.is_set, fetcher._stopped.is_set
        read_offset = self._read_offset
        acks_enabled_for = self.app.topics.acks_enabled_for

        async def deliver(fetched: AsyncIterator[tuple[TP, Message]]) -> None:
            since_yield = 0
            async for tp, message in fetched:
                since_yield += 1
                if since_yield > 100:  # as Faust: let the event loop run during a long fetch
                    await asyncio.sleep(0)
                    since_yield = 0
                offset, r_offset = message.offset, read_offset[tp]
                if r_offset is not None and offset < r_offset:
                    continue  # read already (Faust's filter; off for the guarded topics)
                if r_offset and offset - r_offset > 1 and acks_enabled_for(message.topic):
                    await self._add_gap(tp, r_offset + 1, offset)
                if self._commit_every is not None and self._n_acked >= self._commit_every:
                    self._n_acked = 0
                    await self.commit()
                await callback(message)
                read_offset[tp] = offset

        try:
            while not (stopped() or fetcher_stopped()):
                self.diag.set_flag(CONSUMER_FETCHING)
                fetched = getmany(timeout=1.0)
                await self.sleep(0)
                if not self.should_stop:
                    await self.wait_first(deliver(fetched), self.suspend_flow.wait())
                self.diag.unset_flag(CONSUMER_FETCHING)
        except (*self.consumer_stopped_errors, asyncio.CancelledError):
            if self.transport.app.should_stop:
                return
            raise
        finally:
            self.diag.unset_flag(CONSUMER_FETCHING)

    async def admit(self, batch: Sequence[EventT]) -> list[EventT]:
        """The events of ``batch`` to apply, in offset order per partition; asks for partitions
        with missing records to be read again."""
        admitted, now = [], time.monotonic()
        for event in batch:
            tp = event.message.tp
            if not self.guarded(tp):
                admitted.append(event)
                continue
            verdict, reread_from = self.guard.admit(tp, event.message.offset, now)
            if verdict is Verdict.APPLY:
                admitted.append(event)
            elif reread_from is not None:
                self.log.warning("%s: record %d came while %d was expected; reading again from %d",
                                 tp, event.message.offset, reread_from, reread_from)
                await self._seek_guarded(tp, reread_from)
        return admitted

    def applied(self, events: Sequence[EventT]) -> None:
        """Every event in ``events`` (as returned by ``admit``) is applied and its writes delivered."""
        for event in events:
            if self.guarded(event.message.tp):
                self.guard.applied(event.message.tp, event.message.offset)

    def input_lag(self) -> tuple[dict[TP, int], int]:
        """Per assigned input partition whose end is known: records not yet applied
        (``OffsetGuard.unapplied``); and how many assigned input partitions are not known yet
        (not fetched since the start). Read from the web handler's loop while the consumer thread
        works: ints, at worst a fetch old; a consumer not started, or an assignment changing
        meanwhile, counts as nothing known."""
        lag: dict[TP, int] = {}
        try:
            guarded = [tp for tp in sorted(self.assignment()) if self.guarded(tp)]
            for tp in guarded:
                end = self.highwater(tp)
                behind = self.guard.unapplied(tp, end) if end is not None and end >= 0 else None
                if behind is not None:
                    lag[tp] = behind
        except (ConsumerNotStarted, IllegalStateError, AssertionError):  # aiokafka asserts a partition is assigned
            return {}, -1
        return lag, len(guarded) - len(lag)

    # -- commits ---------------------------------------------------------------------------------
    def _new_offset(self, tp: TP) -> int | None:
        if not self.guarded(tp):
            return super()._new_offset(tp)
        # Faust's acknowledgements are not what decides here; drop them so they do not pile up.
        self._acked[tp].clear()
        self._acked_index[tp].clear()
        return self.guard.committable(tp)


def guarded_consumer(fetch_max_wait_ms: int, hold: tuple[Iterable[str], asyncio.Event] | None = None,
                     bootstrap: str = "") -> type[GuardedConsumer]:
    """The consumer class for one app (``app.transport.Consumer``), with its fetch wait, the
    topics it does not fetch until an event is set, and the broker (host:port) it reads the
    changelogs' real end offsets from."""
    held = (frozenset(hold[0]), hold[1]) if hold is not None else None
    return type("GuardedConsumer", (GuardedConsumer,),
                {"fetch_max_wait_ms": int(fetch_max_wait_ms), "hold": held, "bootstrap": bootstrap})


def _kafka_tp(tp: TP) -> TopicPartition:
    return TopicPartition(tp.topic, tp.partition)
