"""The whole catalogue in every worker's FAISS index, for any number of workers.

The item agent writes each item's vector to the compacted item vectors log
(``schemas.topics.item_vectors_topic``; it indexes the items of its own partitions at once). Every
worker follows that log from the beginning, or from its snapshot of the index (written every
``catalogue_snapshot_s`` and as it stops; streams/worker/follower.py), and applies each change to
the index in log order, so an upsert or delete made by any worker reaches all of them, whatever the
number of workers (table standby replicas, which only covered workers <= standby replicas + 1,
are not needed for it). Until 2026-12-01 the log was a Faust table's changelog, which each new
worker also restored into a local store it never read (4.5 minutes at 10^6 items).

A change applied by the agent is applied again when its log record arrives (the same
vector: no effect). While the follower lags, an item changed twice in quick succession can
briefly show its previous version; the newest wins once the follower reaches it.

At a start, user records are not fetched until the catalogue is current (``CatalogueGate``): a
click is folded in with its item's vector from the index, so reading a backlog of clicks before
the index holds their items would dead-letter them.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from typing import Any, Awaitable, Callable, Mapping, TypeVar

import numpy as np
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from index import ItemIndex
from schemas import load_json, split_facets, unpack_vector
from streams.end_offsets import exact_end_offsets
from streams.worker.follower import LogFollower, topic_partitions
from streams.worker.snapshot import SnapshotFile

log = logging.getLogger(__name__)
T = TypeVar("T")  # a topic partition

CLOCK_MARGIN_S = 5.0  # how far a producer's clock may be behind the worker's (CatalogueGate.covers)
Apply = Callable[[list[tuple[str, dict[str, Any] | None]]], int]  # (item id, value or None = delete)


def index_vector_rows(index: ItemIndex, layout: Mapping[str, int], rows: list[tuple[str, dict[str, Any] | None]]) -> int:
    """Upsert (a record's value, its vector read by ``vector_row``) or delete (None) items of the
    item vectors log in the FAISS index, in one batch each (no re-encoding); how many were upserted."""
    upserts = [(i, v) for i, v in rows if v is not None]
    if upserts:
        vectors = np.stack([v["vector"] for _, v in upserts])
        metas = [{"title": v.get("title", ""), "category": v.get("category", "")} for _, v in upserts]
        index.upsert([i for i, _ in upserts], split_facets(vectors, layout), metas)
    index.delete(i for i, v in rows if v is None)
    return len(upserts)


def vector_row(record: ConsumerRecord, dims: int) -> tuple[str, dict[str, Any] | None]:
    """(item id, value with its vector unpacked, or None for a tombstone) of an item vectors log
    record; ValueError, with the reason, for one that cannot be indexed."""
    try:
        item_id = load_json(record.key) if record.key is not None else None
        if not isinstance(item_id, str):
            raise ValueError(f"key is not an item id: {record.key!r:.80}")
        if not record.value:  # a tombstone (null; an empty value read as one, as always)
            return item_id, None
        value = load_json(record.value)
        vector = unpack_vector(value["vector"])
    except (KeyError, TypeError, ValueError) as exc:  # binascii.Error is a ValueError
        raise ValueError(f"unreadable: {exc!r:.200}") from None
    if vector.shape != (dims,) or not np.isfinite(vector).all():
        raise ValueError(f"vector of {vector.size} values (finite: {bool(np.isfinite(vector).all())}), "
                         f"expected {dims} finite ones")
    return item_id, {**value, "vector": vector}


class CatalogueFollower(LogFollower):
    def __init__(self, bootstrap: str, topic: str, apply: Apply, dims: int, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None, index: ItemIndex | None = None,
                 snapshots: SnapshotFile | None = None, snapshot_every_s: float = 0.0) -> None:
        """``dims``: the length of an item's joined facet vector (a record's of another length, from
        a worker with another encoder, or any record it cannot read is skipped and counted);
        ``index``: the index ``apply`` writes to, kept in ``snapshots`` (see ``LogFollower``)."""
        super().__init__(bootstrap, topic, self._latest, fetch_max_wait_ms, on_caught_up, snapshots, snapshot_every_s)
        self.apply_rows = apply
        self.dims = dims
        self.index = index
        self.malformed = 0

    # -- snapshots (LogFollower) -------------------------------------------------------------------
    # The item agent changes the index too, between the follower's batches: what it changed and the
    # log has not brought yet is in a snapshot, and its log records in the tail after it (the
    # same vectors again: no effect).
    def capture(self) -> tuple[Callable[[], dict[str, np.ndarray]], dict[str, Any]]:
        assert self.index is not None
        return self.index.to_arrays, {"malformed": self.malformed}

    def rebuild(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> ItemIndex:
        assert self.index is not None
        return ItemIndex.from_arrays(self.index.layout, self.index.config, arrays)

    def resume_refused(self, why: str) -> None:
        # Read from the beginning into an empty index: items of the snapshot the topic does not
        # have would stay in it otherwise (reading it again is idempotent, but deletes nothing).
        super().resume_refused(why)
        if self.index is not None:
            self.index.take_contents(ItemIndex(self.index.layout, self.index.config))
        self.malformed = 0

    def install(self, meta: dict[str, Any], state: ItemIndex) -> dict[str, Any]:
        assert self.index is not None
        malformed = int(meta.get("malformed", 0))  # read before anything changes
        self.index.take_contents(state)
        self.malformed = malformed
        return {"items": len(self.index)}

    def _latest(self, records: list[ConsumerRecord]) -> None:
        # In offset order per partition, and an item lives in one partition: the last one wins.
        changes: dict[str, dict[str, Any] | None] = {}
        for r in records:
            try:
                item_id, value = vector_row(r, self.dims)
            except ValueError as exc:
                # Only workers write this log: a bug or another version's record, not user input.
                # Skipped (the item keeps its previous version), or every start would stop here.
                self.malformed += 1
                log.warning("%s[%s]@%s skipped: %s", r.topic, r.partition, r.offset, exc)
                continue
            changes[item_id] = value
        self.apply_rows(list(changes.items()))


class CatalogueGate:
    """Keeps user records from being fetched until the catalogue is current as of the worker's start.

    Why: a click's vector is its item's vector from the index, and a click on an item the index
    does not have is dead-lettered. At a start the user agent would read its backlog at once, while
    the index is still being rebuilt from the item vectors log (a restart) or the item agents are
    still encoding the items topic's backlog (a new deployment, or a new app id, on topics with
    history); those clicks would be dead-lettered although their items are in the catalogue. So the
    gate opens once
    1. the catalogue follower has read the item vectors log as it was when it started,
    2. the app's consumer group has committed the items topic up to the end offsets it had when
       step 1 was done (any worker's item agents applied those records, and their changelog writes
       landed), and
    3. the follower has read the changelog up to its end offsets at that moment.
    Step 2 gives up after ``max_wait_s`` (0 = never) with a warning: a stuck item pipeline must not
    stop user events for good. Steps 1 and 3 depend only on this worker's follower and the broker.
    Once open, ``catch_up`` runs steps 2 and 3 again for a click on an item not indexed yet.
    Known limits (docs/guarantees.md): a transaction marker at the end of an items partition keeps
    step 2 waiting until the next item or ``max_wait_s``. End offsets are read from the last
    records (``streams/end_offsets.py``), as the bundled Tansu reports them short of a
    multi-record batch.
    """

    def __init__(self, bootstrap: str, group_id: str, items_topic: str, follower: LogFollower,
                 max_wait_s: float, poll_s: float = 0.5, opened: asyncio.Event | None = None,
                 fetching: asyncio.Event | None = None) -> None:
        """``fetching``: set while the consumer may fetch user topics (from the opening on, except
        during a ``catch_up``)."""
        self.bootstrap, self.group_id, self.items_topic = bootstrap, group_id, items_topic
        self.follower, self.max_wait_s, self.poll_s = follower, max_wait_s, poll_s
        self.opened = opened or asyncio.Event()  # set once open (for good)
        self.fetching = fetching or asyncio.Event()
        # Wall time from which on item records were not yet covered by a completed step 2: every
        # item record produced before it is in the index (None: not known for any time yet).
        self.current_as_of: float | None = None
        self.items_behind_at_start: int | None = None  # item records not yet applied when step 2 began
        self.waited_s: float | None = None
        self.gave_up = False
        # Catch-ups after the start (``catch_up``): how many, how many ran out of time, seconds in all.
        self.catch_ups = 0
        self.catch_ups_short = 0
        self.catch_up_s = 0.0

    def to_dict(self) -> dict[str, Any]:
        return {"open": self.opened.is_set(), "items_behind_at_start": self.items_behind_at_start,
                "waited_s": None if self.waited_s is None else round(self.waited_s, 3), "gave_up": self.gave_up,
                "catch_ups": self.catch_ups, "catch_ups_short": self.catch_ups_short,
                "catch_up_s": round(self.catch_up_s, 3)}

    async def run(self) -> None:
        started = time.monotonic()
        while self.follower.caught_up_at is None:
            await asyncio.sleep(self.poll_s)
        step_2_from = time.time()
        try:
            await asyncio.wait_for(self._retrying(self._items_applied), self.max_wait_s or None)
            self.current_as_of = step_2_from
        except asyncio.TimeoutError:
            self.gave_up = True
            log.warning("the items topic was not applied within %.0f s (items_behind_at_start=%s); user events go "
                        "on, and clicks on items not indexed yet are dead-lettered", self.max_wait_s,
                        self.items_behind_at_start)
        await self._retrying(self._changelog_read)
        self.waited_s = time.monotonic() - started
        self.opened.set()
        self.fetching.set()
        log.info("catalogue gate open after %.1f s (%s item records were behind at the start)",
                 self.waited_s, self.items_behind_at_start)

    def covers(self, produced_at: float | None) -> bool:
        """Whether a record produced at ``produced_at`` (its timestamp, the producer's clock) came
        after items that are all in the index already: a completed step 2 began later than that
        (by more than ``CLOCK_MARGIN_S``, for clocks that disagree). Then a click on an item the
        index does not have cannot be waiting for its item: no catch-up is needed for it."""
        return (produced_at is not None and self.current_as_of is not None
                and produced_at < self.current_as_of - CLOCK_MARGIN_S)

    async def catch_up(self, max_wait_s: float) -> bool:
        """Steps 2 and 3 again, now: wait until the group has applied every item record produced so
        far and this worker's follower has read what they wrote. For a click on an item the index
        does not have, whose item may still be being encoded (by any worker). False when it took
        longer than ``max_wait_s`` or the broker did not answer (the caller goes on without).

        User topics are not fetched meanwhile: their records would pile up in Faust's queue while
        the user agent waits here, and a full queue stops the delivery of every topic, the item
        records this waits for included."""
        started, step_2_from = time.monotonic(), time.time()
        self.catch_ups += 1
        self.fetching.clear()

        async def both(consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> None:
            await self._items_applied(consumer, admin)
            await self._changelog_read(consumer, admin)

        try:
            await asyncio.wait_for(self._with_clients(both), max_wait_s)
            self.current_as_of = max(self.current_as_of or 0.0, step_2_from)
            return True
        except asyncio.TimeoutError:
            self.catch_ups_short += 1
            return False
        except Exception:  # noqa: BLE001 - a broker error must not stop the user agent
            self.catch_ups_short += 1
            log.exception("catalogue catch-up failed")
            return False
        finally:
            self.fetching.set()
            self.catch_up_s += time.monotonic() - started

    async def _with_clients(self, step: Callable[[AIOKafkaConsumer, AIOKafkaAdminClient], Awaitable[None]]) -> None:
        """Run ``step`` with a consumer (no group) and an admin client, closed afterwards."""
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False)
        admin = AIOKafkaAdminClient(bootstrap_servers=self.bootstrap)
        try:
            await consumer.start()
            await admin.start()
            await step(consumer, admin)
        finally:
            with contextlib.suppress(Exception):  # a failed close must not end the caller
                await admin.close()
            with contextlib.suppress(Exception):
                await consumer.stop()

    async def _retrying(self, step: Callable[[AIOKafkaConsumer, AIOKafkaAdminClient], Awaitable[None]]) -> None:
        """Run ``step`` with a consumer (no group) and an admin client until it completes; any
        error (the broker went away, an unexpected answer) is logged and the step asked again, as
        a gate that crashed would stop user events for good."""
        while True:
            try:
                return await self._with_clients(step)
            except asyncio.CancelledError:
                raise
            except Exception:  # noqa: BLE001 - see the docstring
                log.exception("catalogue gate: asking again in 2 s")
                await asyncio.sleep(2.0)

    async def _items_applied(self, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> None:
        items = sorted_tps(await topic_partitions(consumer, self.items_topic), self.items_topic)
        end = await exact_end_offsets(consumer, items)
        # Records removed by retention were never there to apply: a new group starts at the first one.
        first = await consumer.beginning_offsets(items)
        while True:
            committed = await admin.list_consumer_group_offsets(self.group_id, partitions=items)
            behind = items_behind(end, first, {tp: c.offset for tp, c in committed.items()})
            if self.items_behind_at_start is None:
                self.items_behind_at_start = behind
            if behind == 0:
                return
            await asyncio.sleep(self.poll_s)

    async def _changelog_read(self, consumer: AIOKafkaConsumer, admin: AIOKafkaAdminClient) -> None:
        changelog = sorted_tps(await topic_partitions(consumer, self.follower.topic), self.follower.topic)
        end = await exact_end_offsets(consumer, changelog)
        while any(self.follower.positions.get(tp.partition, 0) < end[tp] for tp in changelog):
            await asyncio.sleep(self.poll_s)


def items_behind(end: Mapping[T, int], first: Mapping[T, int], committed: Mapping[T, int]) -> int:
    """Records not yet applied by the group: per partition, from its committed offset (-1 or
    missing: never committed) or its first offset, whichever is later (retention may have removed
    the records before it), to its end."""
    return sum(max(0, end[tp] - max(first.get(tp, 0), committed.get(tp, -1), 0)) for tp in end)


def sorted_tps(partitions: set[int], topic: str) -> list[TopicPartition]:
    return [TopicPartition(topic, p) for p in sorted(partitions)]


def catalogue_snapshot(folder: str, app_id: str, index: ItemIndex) -> SnapshotFile:
    """The catalogue snapshot of an app in a folder (``Settings.snapshot_folder``): usable
    while the facet layout, the facet weights and the index factory are the ones it was taken under."""
    return SnapshotFile.in_folder(folder, f"{app_id}-catalogue", index.fingerprint())
