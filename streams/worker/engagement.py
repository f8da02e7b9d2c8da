"""Item-side behaviour and the ranker's weights on every worker: the user agent publishes the
applied clicks and reviews of each micro-batch as ``engagements`` records (streams/worker/users.py),
the last with the ranker step it learned from them if its guard kept one; every worker follows the
whole topic (streams/worker/follower.py), folds the engagements into the recommender's
``Engagements`` (decayed popularity, co-engagement, the behaviour facet; streams/state/engagement.py)
and applies every step to its ranker, so each worker can rank any item for any user, and all of
them with the same weights, learned from every worker's lessons (until the night of 2026-11-30
each worker stepped its own ranker and a newer version from another worker replaced it).

The topic grows with the stream, so a worker writes what it has folded, and the offsets it read
up to, to a snapshot in its data_dir every ``snapshot_every_s`` and as it stops
(streams/worker/snapshot.py); a restart, and the learner process, take the snapshot over and read
the topic from there. Without one (a new worker, or a snapshot taken under other settings or
unreadable) the topic is read from its beginning: the state is rebuilt. Popularity and links are sums (order does not matter); the
behaviour facet's SGD steps are not, so the records are published to one partition (read in offset
order) and folding starts only once the catalogue is indexed (its vectors start from the items'
texts); a snapshot holds the sampler's state too, so folding on from it takes the same steps as
folding the whole topic. A record published twice (a crash between the send and the commit) is
dropped by its (user, event id); a ranker step by its id.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Awaitable, Callable, Mapping

import numpy as np
from aiokafka import ConsumerRecord

from schemas import Engagement, RankerStep, load_json
from streams.state.engagement import EngagementConfig, Engagements
from streams.state.ranker import FEATURES, start_weights
from streams.state.recommend import Recommender
from streams.worker.follower import LogFollower
from streams.worker.snapshot import SnapshotFile

log = logging.getLogger(__name__)
# The follower's counts of what it read, kept in a snapshot: after one, they still count from the
# topic's beginning (the ranker's version is the steps applied, /healthz shows both).
COUNTS = ("malformed", "folded", "steps", "steps_skipped")


class EngagementFollower(LogFollower):
    def __init__(self, bootstrap: str, topic: str, recommender: Recommender, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None,
                 after: Callable[[], Awaitable[object]] | None = None,
                 snapshots: SnapshotFile | None = None, snapshot_every_s: float = 0.0) -> None:
        """``after``: awaited before the first read (the catalogue indexed); ``snapshots``: see
        ``LogFollower``."""
        super().__init__(bootstrap, topic, self._fold, fetch_max_wait_ms, on_caught_up, snapshots, snapshot_every_s)
        self.recommender = recommender
        self.after = after
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
        await super().run()

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
        # Read again from the beginning (a refused resume): from nothing, or every engagement counts twice.
        old = self.recommender.engagements
        self.recommender.engagements = Engagements(old.config, old.content)
        self.recommender.ranker.restart()  # and every step applied again
        self._step_ids.clear()
        for key in COUNTS:
            setattr(self, key, 0)

    # -- snapshots (LogFollower) -------------------------------------------------------------------
    def capture(self) -> tuple[Callable[[], dict[str, np.ndarray]], dict[str, Any]]:
        # Only this follower changes the engagements (only read meanwhile, in the thread too); a
        # step this worker proposes is applied from the event loop, so the ranker is taken now.
        engagements, w = self.recommender.engagements, self.recommender.ranker.w
        meta = {"ranker_version": self.recommender.ranker.version, "step_ids": list(self._step_ids),
                "counts": {k: getattr(self, k) for k in COUNTS}}
        return lambda: {**engagements.to_arrays(), "ranker_w": w}, meta

    def rebuild(self, meta: dict[str, Any], arrays: dict[str, np.ndarray]) -> tuple[Engagements, np.ndarray]:
        old, w = self.recommender.engagements, np.asarray(arrays["ranker_w"], dtype=np.float64)
        if w.shape != self.recommender.ranker.w.shape:
            raise ValueError(f"ranker weights of shape {w.shape}, expected {self.recommender.ranker.w.shape}")
        return Engagements.from_arrays(old.config, old.content, arrays), w

    def install(self, meta: dict[str, Any], state: tuple[Engagements, np.ndarray]) -> dict[str, Any]:
        engagements, w = state
        # Everything read first: a bad value raises before anything here has changed.
        version, step_ids = int(meta["ranker_version"]), OrderedDict.fromkeys(map(str, meta.get("step_ids", [])))
        counts = {key: int(value) for key, value in meta.get("counts", {}).items() if key in COUNTS}
        self.recommender.ranker.restore(w, version)  # shape checked in rebuild
        self.recommender.engagements, self._step_ids = engagements, step_ids
        for key, value in counts.items():  # /healthz counts the topic's whole read
            setattr(self, key, value)
        return {"engagements": engagements.observed, "items": len(engagements)}


def snapshot_file(folder: str, app_id: str, config: EngagementConfig, layout: Mapping[str, int]) -> SnapshotFile:
    """The engagements snapshot of an app in a folder (``Settings.snapshot_folder``): usable
    while the fold's settings, the facet layout (the behaviour facet starts from topic vectors),
    the ranker's features and start weights are the ones it was taken under."""
    fingerprint = repr((config, dict(layout), FEATURES, start_weights().tolist()))
    return SnapshotFile.in_folder(folder, f"{app_id}-engagements", fingerprint)
