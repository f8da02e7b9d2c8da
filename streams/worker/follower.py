"""Reading a whole topic on every worker: a consumer with no group that reads every partition
from the beginning, then keeps reading, and hands each fetched batch to a callback. The
catalogue (streams/worker/catalogue.py) and the engagements (streams/worker/engagement.py) are
followed this way, so each worker has all of them whatever partitions it owns.

What a follower builds may be kept in a snapshot (streams/worker/snapshot.py) with the offsets it
was read up to: written every ``snapshot_every_s`` and once more as the follower is cancelled (the
worker stops), and taken over at the next start, which then reads only the topic after it. A
subclass says what its state is (``capture``, ``rebuild``, ``install``); the rest is here.
"""

from __future__ import annotations

import asyncio
import logging
import time
import zlib
from typing import Any, Callable

import numpy as np
from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition
from aiokafka.errors import KafkaError

from streams.end_offsets import exact_end_offsets
from streams.worker.snapshot import SnapshotFile

log = logging.getLogger(__name__)

ApplyRecords = Callable[[list[ConsumerRecord]], None]  # in offset order within each partition
Mark = tuple[int, int]  # a record's offset and the CRC-32 of its key and value
# How long a resume may spend reading the marked records back before it goes on unchecked.
MARK_CHECK_S = 10.0


def mark_of(record: ConsumerRecord) -> Mark:
    """What tells this record from another at its offset: a topic deleted and made again since
    has other records there (offsets alone only show it while the new one is shorter)."""
    key, value = record.key or b"", record.value or b""
    return record.offset, zlib.crc32(value, zlib.crc32(len(key).to_bytes(4, "big") + key))


class LogFollower:
    def __init__(self, bootstrap: str, topic: str, apply: ApplyRecords, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None, snapshots: SnapshotFile | None = None,
                 snapshot_every_s: float = 0.0) -> None:
        """``snapshots``: taken over at the start when there is one, and written every
        ``snapshot_every_s`` of reading and as the follower stops (0: never written here, as in
        the learner process, which reads the worker's)."""
        self.bootstrap, self.topic, self.apply = bootstrap, topic, apply
        self.snapshots, self.snapshot_every_s = snapshots, snapshot_every_s
        self._written_at = time.monotonic()
        self._applied_since_write = False
        self._writing = False
        self._touched = False  # the state holds something: applied records, or a snapshot taken over
        self._refused = False  # the snapshot was refused: the log is read from its beginning
        self._resume_source = "snapshot"  # where ``resume`` came from: a snapshot, or this state after an error
        # /healthz: what was taken over at the start, and the snapshots written since.
        self.snapshot: dict[str, Any] = {"loaded": None, "unusable": None, "written": 0, "write_failures": 0,
                                         "last_write_s": None, "last_bytes": None}
        self.fetch_max_wait_ms = fetch_max_wait_ms
        self.on_caught_up = on_caught_up
        self.caught_up_at: float | None = None  # when the topic as of the start was all applied
        # Seconds the last read from the beginning took to catch up (applying included): the
        # rebuild time of what the callback builds (the index, the engagements).
        self.rebuild_s: float | None = None
        self.records = 0
        self.positions: dict[int, int] = {}  # partition -> the next offset to read (all before it applied)
        self.marks: dict[int, Mark] = {}  # partition -> the last record applied from it
        # The offsets the state held was read up to (a snapshot's, or its own before an error):
        # the next read starts there instead of at the beginning.
        self.resume: dict[int, int] | None = None
        self.resume_marks: dict[int, Mark] = {}  # the last records the resumed state applied

    async def run(self) -> None:
        """Follow the topic until cancelled; retries while the broker is away."""
        try:
            while True:
                try:
                    await self._follow()
                except KafkaError as exc:  # the consumer gave up on something: a new one reads on
                    log.warning("%s follower: %s; reading on in 2 s", self.topic, exc)
                    await asyncio.sleep(2.0)
        except asyncio.CancelledError:
            # The worker stops: a snapshot of what was applied since the last one, so a planned
            # restart (a deploy) reads next to nothing of the topic again.
            if self.snapshots is not None and self.snapshot_every_s and self._applied_since_write and not self._writing:
                await self.write_snapshot()
            raise

    def restarting(self) -> None:
        """Called before reading from the beginning again with a state that holds something (a
        refused resume): the callback's owner drops what it holds, or is idempotent."""

    def resume_refused(self, why: str) -> None:
        """The state held (a snapshot's, or read before an error) is of offsets this topic does
        not have (it was deleted and made again): it is dropped, and the read starts at the
        beginning."""
        if self._resume_source == "snapshot":
            self.snapshot["unusable"] = why
            self._refused = True  # not taken over again if the read from the beginning is retried
        self.restarting()
        self.positions, self.marks, self._touched = {}, {}, False

    # -- what a subclass with snapshots says about its state -----------------------------------------
    def capture(self) -> tuple[Callable[[], dict[str, np.ndarray]], dict[str, Any]]:
        """On the event loop, between two applied batches: (a function that makes the state's
        arrays, run in a thread while nothing is applied; what to add to the snapshot's meta,
        taken now)."""
        raise NotImplementedError

    def rebuild(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> Any:
        """In a thread: the state a snapshot holds, not yet in use; raises (ValueError, most
        often) if the arrays do not hold one."""
        raise NotImplementedError

    def install(self, meta: dict[str, Any], state: Any) -> dict[str, Any]:
        """On the event loop: ``rebuild``'s state in place of this one's; what it holds (counts,
        for /healthz and the log). Raises before it changes anything, or not at all."""
        raise NotImplementedError

    # -- snapshots -----------------------------------------------------------------------------------
    async def _take_over(self) -> None:
        """The snapshot's state in place of this one's, and ``resume`` at its offsets; none (or
        one that cannot be used, logged and shown on /healthz): the topic is read from the start.
        Read and rebuilt in a thread: a large one takes seconds, and the event loop serves on."""
        if self.snapshots is None:
            return
        files = self.snapshots

        def load() -> tuple[dict[str, Any], Any] | None:
            found = files.read()
            return None if found is None else (found[0], self.rebuild(*found))

        try:
            loaded = await asyncio.to_thread(load)
            if loaded is None:
                return
            meta, state = loaded
            if not isinstance(meta.get("positions"), dict):
                raise ValueError(f"offsets of the wrong type: {meta.get('positions')!r:.80}")
            positions = {int(p): int(o) for p, o in meta["positions"].items()}
            marks = {int(p): (int(o), int(c)) for p, (o, c) in meta.get("marks", {}).items()}
            if any(p not in positions or o >= positions[p] for p, (o, _) in marks.items()):
                raise ValueError(f"marks {marks} outside the offsets {positions}")
            what = self.install(meta, state)  # checks what it reads before it changes anything
        except Exception as exc:  # noqa: BLE001 - a snapshot only saves time: any fault, and the log is read whole
            self.snapshot["unusable"] = f"{type(exc).__name__}: {exc}"
            log.warning("%s snapshot not used, reading the topic from its beginning: %r", self.topic, exc)
            return
        self.resume, self.resume_marks, self._resume_source = positions, marks, "snapshot"
        self.positions, self.marks, self._touched = dict(positions), dict(marks), True
        self.snapshot["loaded"] = {"positions": positions, "taken_at": meta.get("taken_at"), **what}
        log.info("%s snapshot taken over: %s; offsets %s", self.topic, what, positions)

    async def _after_apply(self) -> None:
        self._applied_since_write = True
        if self.snapshots is not None and self.snapshot_every_s and time.monotonic() - self._written_at >= self.snapshot_every_s:
            await self.write_snapshot()

    async def write_snapshot(self) -> None:
        """Write the state with the offsets read up to: its arrays are made and written in a
        thread while this follower waits (nothing is applied meanwhile); cancelled meanwhile (the
        worker stops), the write still ends, then the cancellation goes on."""
        assert self.snapshots is not None
        make, extra = self.capture()
        meta = {**extra, "positions": {str(p): o for p, o in self.positions.items()},
                "marks": {str(p): list(m) for p, m in self.marks.items()}, "taken_at": time.time()}
        files = self.snapshots
        started, self._writing, cancelled = time.monotonic(), True, False
        job = asyncio.ensure_future(asyncio.to_thread(lambda: files.write(make(), meta)))
        while not job.done():
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:
                cancelled = True
            except Exception:  # noqa: BLE001 - the job's own error, read from it below
                pass
        self._writing, self._written_at = False, time.monotonic()
        try:
            size = job.result()
        except Exception as exc:  # noqa: BLE001 - a full disk, or no memory for the arrays: the worker goes on
            self.snapshot["write_failures"] += 1
            log.warning("%s snapshot not written: %s", self.topic, exc)
        else:
            took = time.monotonic() - started
            self.snapshot.update(written=self.snapshot["written"] + 1, last_write_s=round(took, 3), last_bytes=size)
            self._applied_since_write = False
            log.info("%s snapshot written: %d bytes in %.2f s", self.topic, size, took)
        if cancelled:
            raise asyncio.CancelledError

    async def _follow(self) -> None:
        consumer = AIOKafkaConsumer(bootstrap_servers=self.bootstrap, group_id=None, enable_auto_commit=False,
                                    auto_offset_reset="earliest", fetch_max_wait_ms=self.fetch_max_wait_ms)
        await consumer.start()
        try:
            partitions = await topic_partitions(consumer, self.topic)
            tps = [TopicPartition(self.topic, p) for p in sorted(partitions)]
            # What "caught up" means at start (read before assigning: it leaves no assignment).
            end = await exact_end_offsets(consumer, tps)
            consumer.assign(tps)
            await consumer.seek_to_beginning(*tps)
            if self.resume is not None:
                pass  # not done yet: an error came while it was checked against the topic
            elif self._touched:
                # Read again after an error: on from where this state was left (it always matches
                # ``positions``: a snapshot's offsets, then the records applied), checked against
                # the topic as a snapshot's are; no snapshot is taken over in its place.
                self.resume, self.resume_marks, self._resume_source = dict(self.positions), dict(self.marks), "memory"
            elif not self._refused:
                await self._take_over()
            await self._resume(consumer, tps, end)
            started, caught_up = time.monotonic(), False
            while True:
                # Checked before waiting for more, so an idle wait never counts as rebuilding.
                if not caught_up and all([await consumer.position(tp) >= end[tp] for tp in tps]):
                    caught_up, self.rebuild_s = True, time.monotonic() - started
                    if self.caught_up_at is None:
                        self.caught_up_at = time.time()
                        if self.on_caught_up:
                            self.on_caught_up()
                    log.info("%s follower caught up: %d records in %.1f s", self.topic, self.records, self.rebuild_s)
                batch = await consumer.getmany(timeout_ms=1000, max_records=5000)
                records = [r for rs in batch.values() for r in rs]
                if records:
                    self.records += len(records)
                    self._touched = True
                    self.apply(records)
                    # Before any await: a task cancelled below still has positions that match what
                    # was applied (a snapshot written as the worker stops takes both).
                    self.positions.update({r.partition: r.offset + 1 for r in records})
                    self.marks.update({tp.partition: mark_of(rs[-1]) for tp, rs in batch.items() if rs})
                # Past what was applied too (a compacted or aborted range the consumer skipped).
                self.positions = {tp.partition: await consumer.position(tp) for tp in tps}
                if records:
                    await self._after_apply()
        finally:
            await consumer.stop()

    async def _resume(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition], end: dict[TopicPartition, int]) -> None:
        """Seek to ``resume`` (once: it is cleared when done, not if an error stops it). An offset
        past a partition's end, or a partition the topic lacks, means the topic is not the one it
        was read from: from the beginning then. Offsets that retention has removed since are read
        from the first one kept (aiokafka resets them)."""
        resume = self.resume
        if resume is None:
            return
        ends = {tp.partition: end[tp] for tp in tps}
        wrong = [f"{p}@{o} (end {ends.get(p)})" for p, o in sorted(resume.items()) if p not in ends or o > ends[p]]
        if wrong:
            log.warning("%s follower: cannot resume at %s; reading from the beginning", self.topic, ", ".join(wrong))
            self.resume = None
            self.resume_refused(f"offsets past the topic's end: {', '.join(wrong)}")
            return
        differ = await self._marks_differ(consumer, tps, end, {p: m for p, m in self.resume_marks.items() if p in ends})
        if differ:
            log.warning("%s follower: other records at %s than the state applied; reading from the beginning",
                        self.topic, ", ".join(differ))
            self.resume = None
            self.resume_refused(f"other records than the state applied at {', '.join(differ)}")
            await consumer.seek_to_beginning(*tps)
            return
        self.resume = None
        for tp in tps:  # every checked partition has an offset past its mark (``_take_over``)
            if resume.get(tp.partition):
                consumer.seek(tp, resume[tp.partition])
        log.info("%s follower resumes at %s", self.topic, resume)

    async def _marks_differ(self, consumer: AIOKafkaConsumer, tps: list[TopicPartition],
                            end: dict[TopicPartition, int], marks: dict[int, Mark]) -> list[str]:
        """The partitions ("p@offset") whose marked record is another one now. A record that is
        gone (compacted away, or removed by retention) cannot be compared and passes, as do
        those not read back within ``MARK_CHECK_S``."""
        todo = {tp: marks[tp.partition] for tp in tps if tp.partition in marks and marks[tp.partition][0] < end[tp]}
        if not todo:
            return []
        others = [tp for tp in tps if tp not in todo]
        consumer.pause(*others)
        for tp, (offset, _) in todo.items():
            consumer.seek(tp, offset)
        differ, deadline = [], time.monotonic() + MARK_CHECK_S
        try:
            while todo and time.monotonic() < deadline:
                batch = await consumer.getmany(*todo, timeout_ms=500, max_records=len(todo))
                for tp, records in batch.items():
                    if records and tp in todo:
                        offset, crc = todo.pop(tp)
                        if records[0].offset == offset and mark_of(records[0])[1] != crc:
                            differ.append(f"{tp.partition}@{offset}")
        finally:
            consumer.resume(*others)
        if todo:
            log.warning("%s follower: records at %s not read back in %.0f s; resuming unchecked", self.topic,
                        ", ".join(f"{tp.partition}@{m[0]}" for tp, m in todo.items()), MARK_CHECK_S)
        return sorted(differ)


async def topic_partitions(consumer: AIOKafkaConsumer, topic: str) -> set[int]:
    """The topic's partitions, once it exists (the worker creates its topics when it starts)."""
    while True:
        await consumer.topics()  # refreshes metadata
        partitions = consumer.partitions_for_topic(topic)
        if partitions:
            return partitions
        await asyncio.sleep(0.5)
