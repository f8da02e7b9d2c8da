"""Item-side behaviour and the ranker's weights on every worker: the user agent publishes the
applied clicks and reviews of each micro-batch as one ``engagements`` record (streams/worker/users.py),
with the ranker step it learned from them if its guard kept one; every worker follows the whole topic
from the beginning (streams/worker/follower.py), folds the engagements into the recommender's
``Engagements`` (decayed popularity, co-engagement, the behaviour facet; streams/state/engagement.py)
and applies every step to its ranker, so each worker can rank any item for any user, and all of
them with the same weights, learned from every worker's lessons (until the night of 2026-11-30
each worker stepped its own ranker and a newer version from another worker replaced it).

After a restart the topic is read again from the beginning: the state is rebuilt, not restored.
Popularity and links are sums (order does not matter); the behaviour facet's SGD steps are not, so
the records are published to one partition (read in offset order) and folding starts only once the
catalogue is indexed (its vectors start from the items' texts). A record published twice (a crash
between the send and the commit) is dropped by its (user, event id); a ranker step by its id.
"""

from __future__ import annotations

import logging
from collections import OrderedDict
from typing import Any, Awaitable, Callable

import numpy as np
from aiokafka import ConsumerRecord

from schemas import Engagement, RankerStep, load_json
from streams.state.engagement import Engagements
from streams.state.ranker import FEATURES
from streams.state.recommend import Recommender
from streams.worker.follower import LogFollower

log = logging.getLogger(__name__)


class EngagementFollower(LogFollower):
    def __init__(self, bootstrap: str, topic: str, recommender: Recommender, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None,
                 after: Callable[[], Awaitable[object]] | None = None) -> None:
        """``after``: awaited before the first read (the catalogue indexed)."""
        super().__init__(bootstrap, topic, self._fold, fetch_max_wait_ms, on_caught_up)
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
        # Read again from the beginning: start from nothing, or every engagement would count twice.
        old = self.recommender.engagements
        self.recommender.engagements = Engagements(old.config, old.content)
        self.recommender.ranker.restart()  # and every step applied again
        self._step_ids.clear()
