"""Item-side behaviour and the ranker's weights on every worker: the user agent publishes the
applied clicks and reviews of each micro-batch as one ``engagements`` record (streams/worker/users.py),
with the ranker step it learned from them if its guard kept one; every worker follows the whole topic
(streams/worker/follower.py), folds the engagements into the recommender's
``Engagements`` (decayed popularity, co-engagement, the behaviour facet; streams/state/engagement.py)
and applies every step to its ranker, so each worker can rank any item for any user, and all of
them with the same weights, learned from every worker's lessons (until the night of 2026-11-30
each worker stepped its own ranker and a newer version from another worker replaced it).

The topic grows with the stream, so a worker writes what it has folded, and the offsets it read
up to, to a snapshot in its data_dir every ``snapshot_every_s`` and as it stops
(streams/worker/snapshot.py); a restart, and the learner process, take the snapshot over and read
the topic from there. Without one
(a new worker, or a snapshot taken under other settings or unreadable) the topic is read from its
beginning: the state is rebuilt. Popularity and links are sums (order does not matter); the
behaviour facet's SGD steps are not, so the records are published to one partition (read in offset
order) and folding starts only once the catalogue is indexed (its vectors start from the items'
texts); a snapshot holds the sampler's state too, so folding on from it takes the same steps as
folding the whole topic. A record published twice (a crash between the send and the commit) is
dropped by its (user, event id); a ranker step by its id.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import OrderedDict
from pathlib import Path
from typing import Any, Awaitable, Callable

import numpy as np
from aiokafka import ConsumerRecord

from schemas import Engagement, RankerStep, load_json
from streams.state.engagement import EngagementConfig, Engagements
from streams.state.ranker import FEATURES, start_weights
from streams.state.recommend import Recommender
from streams.worker.follower import LogFollower
from streams.worker.snapshot import SnapshotFile

log = logging.getLogger(__name__)


class EngagementFollower(LogFollower):
    def __init__(self, bootstrap: str, topic: str, recommender: Recommender, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None,
                 after: Callable[[], Awaitable[object]] | None = None,
                 snapshots: SnapshotFile | None = None, snapshot_every_s: float = 0.0) -> None:
        """``after``: awaited before the first read (the catalogue indexed); ``snapshots``: taken
        over at the start when there is one, and written every ``snapshot_every_s`` of reading
        (0: never written here; the learner process only reads the worker's)."""
        super().__init__(bootstrap, topic, self._fold, fetch_max_wait_ms, on_caught_up)
        self.recommender = recommender
        self.after = after
        self.snapshots, self.snapshot_every_s = snapshots, snapshot_every_s
        self._written_at = time.monotonic()
        self._folded_since_write = False  # records applied since the last snapshot
        self._writing = False
        # /healthz: what was taken over at the start, and the snapshots written since.
        self.snapshot: dict[str, Any] = {"loaded": None, "unusable": None, "written": 0, "write_failures": 0,
                                         "last_write_s": None, "last_bytes": None}
        self.malformed = 0  # records that could not be read
        self.folded = 0  # engagements in the records read
        self.steps = 0  # ranker steps applied
        self.steps_skipped = 0  # ranker steps read twice, or for other features (an older version's)
        self._step_ids: OrderedDict[str, None] = OrderedDict()  # the last few applied, to drop a copy

    async def run(self) -> None:
        if self.after is not None:
            # The behaviour facet starts an item's vectors from its text in the index: an item
            # folded before the catalogue is indexed would start elsewhere, and differ by worker.
            await self.after()
        try:
            await super().run()
        except asyncio.CancelledError:
            # The worker stops: a snapshot of what was folded since the last one, so a planned
            # restart (a deploy) reads next to nothing of the topic again.
            if self.snapshots is not None and self.snapshot_every_s and self._folded_since_write and not self._writing:
                await self.write_snapshot()
            raise

    def _fold(self, records: list[ConsumerRecord]) -> None:
        batch: list[Engagement] = []  # every record's, folded in one call (the ranker is apart from them)
        for r in records:
            try:
                data = load_json(r.value)
                batch += [Engagement.from_dict(e) for e in data["engagements"]]
            except (KeyError, TypeError, ValueError) as exc:  # only the worker writes the topic: a bug, not input
                self.malformed += 1
                log.warning("engagements[%s]@%s skipped: %s", r.partition, r.offset, exc)
                continue
            if (step := self._step_of(data.get("ranker_step"), r)) is not None:
                self.recommender.ranker.apply(np.asarray(step.step, dtype=np.float64))
                self.steps += 1
        self.recommender.engagements.observe_many((e.user_id, e.event_id, e.item_id, e.ts, e.weight, e.previous)
                                                  for e in batch)
        self.folded += len(batch)

    def _step_of(self, data: Any, r: ConsumerRecord) -> RankerStep | None:
        """The record's ranker step (``data``), if it has one to apply."""
        if data is None:
            return None
        try:
            step = RankerStep.from_dict(data)
        except (KeyError, TypeError, ValueError) as exc:
            self.malformed += 1
            log.warning("engagements[%s]@%s: ranker step skipped: %s", r.partition, r.offset, exc)
            return None
        if step.features != list(FEATURES) or step.step_id in self._step_ids:
            self.steps_skipped += 1
            return None
        self._remember(step.step_id)
        return step

    def _remember(self, step_id: str) -> None:
        self._step_ids[step_id] = None
        if len(self._step_ids) > 10_000:
            self._step_ids.popitem(last=False)

    def applied_here(self, step: RankerStep) -> None:
        """Apply a step proposed in this process before it comes back through the log, where its
        copy is then skipped by its id (the weights are the start plus the sum of the steps, so
        applying it early changes only when it counts)."""
        self.recommender.ranker.apply(np.asarray(step.step, dtype=np.float64))
        self.steps += 1
        self._remember(step.step_id)

    def restarting(self) -> None:
        # Read again: from nothing, or every engagement would count twice (or from the snapshot).
        self._start_afresh()

    def resume_refused(self, why: str) -> None:
        self.snapshot["unusable"] = why
        self._start_afresh()

    def _start_afresh(self) -> None:
        old = self.recommender.engagements
        self.recommender.engagements = Engagements(old.config, old.content)
        self.recommender.ranker.restart()  # and every step applied again
        self._step_ids.clear()

    # -- snapshots ---------------------------------------------------------------------------------
    async def before_reading(self) -> None:
        """The snapshot's state in place of this one's, and ``resume`` at its offsets; none (or
        one that cannot be used, logged and shown on /healthz): the topic is read from the start.
        Read and rebuilt in a thread: a large one takes seconds, and the event loop serves on."""
        if self.snapshots is None:
            return
        old, files = self.recommender.engagements, self.snapshots

        def load() -> tuple[dict[str, Any], dict[str, np.ndarray], Engagements] | None:
            found = files.read()
            return None if found is None else (*found, Engagements.from_arrays(old.config, old.content, found[1]))

        try:
            loaded = await asyncio.to_thread(load)
            if loaded is None:
                return
            meta, arrays, engagements = loaded
            positions = {int(p): int(o) for p, o in meta["positions"].items()}
            self.recommender.ranker.restore(arrays["ranker_w"], int(meta["ranker_version"]))
        except (KeyError, TypeError, ValueError) as exc:
            self.snapshot["unusable"] = str(exc)
            log.warning("engagements snapshot not used, reading the topic from its beginning: %s", exc)
            return
        self.recommender.engagements = engagements
        self._step_ids = OrderedDict.fromkeys(meta.get("step_ids", []))
        self.resume = positions
        self.snapshot["loaded"] = {"positions": positions, "engagements": engagements.observed,
                                   "taken_at": meta.get("taken_at")}
        log.info("engagements snapshot taken over: %d engagements, %d items, offsets %s",
                 engagements.observed, len(engagements), positions)

    async def after_apply(self) -> None:
        self._folded_since_write = True
        if self.snapshots is None or not self.snapshot_every_s:
            return
        if time.monotonic() - self._written_at >= self.snapshot_every_s:
            await self.write_snapshot()

    async def write_snapshot(self) -> None:
        """Write what is folded so far, with the offsets read up to. The arrays are made and
        written in a thread while this follower waits (nothing else changes the engagements: they
        are only read meanwhile); the ranker's weights and the step ids are taken here first, as
        a step this worker proposes is applied from the event loop."""
        assert self.snapshots is not None
        ranker = self.recommender.ranker
        w, meta = ranker.w, {"positions": {str(p): o for p, o in self.positions.items()}, "ranker_version": ranker.version,
                             "step_ids": list(self._step_ids), "taken_at": time.time()}
        engagements, files = self.recommender.engagements, self.snapshots

        def write() -> int:
            return files.write({**engagements.to_arrays(), "ranker_w": w}, meta)

        started, self._writing, cancelled = time.monotonic(), True, False
        job = asyncio.ensure_future(asyncio.to_thread(write))
        while not job.done():
            try:
                await asyncio.shield(job)
            except asyncio.CancelledError:  # the worker stops: the write still ends, then this task
                cancelled = True
            except Exception:  # noqa: BLE001 - the job's own error, read from it below
                pass
        self._writing, self._written_at = False, time.monotonic()
        try:
            size = job.result()
        except OSError as exc:  # a full or read-only disk: the worker goes on, restarts read more of the topic
            self.snapshot["write_failures"] += 1
            log.warning("engagements snapshot not written: %s", exc)
        else:
            took = time.monotonic() - started
            self.snapshot.update(written=self.snapshot["written"] + 1, last_write_s=round(took, 3), last_bytes=size)
            self._folded_since_write = False
            log.info("engagements snapshot written: %d engagements, %d bytes in %.2f s", engagements.observed, size, took)
        if cancelled:
            raise asyncio.CancelledError


def snapshot_file(data_dir: str, app_id: str, config: EngagementConfig) -> SnapshotFile:
    """The engagements snapshot of an app in a data dir (the worker's and its learner's): usable
    while the fold's settings, the ranker's features and start weights are the ones it was taken
    under."""
    fingerprint = repr((config, FEATURES, start_weights().tolist()))
    return SnapshotFile(Path(data_dir) / f"{app_id}-engagements.snapshot.npz", fingerprint)
