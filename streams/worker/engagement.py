"""Item-side behaviour on every worker: the user agent publishes the applied clicks and reviews
of each micro-batch as one ``engagements`` record (streams/worker/users.py); every worker follows the whole topic from the
beginning (streams/worker/follower.py) and folds it into the recommender's ``Engagements``
(decayed popularity, co-engagement, the behaviour facet; streams/state/engagement.py), so each worker can rank any
item for any user.

After a restart the topic is read again from the beginning: the state is rebuilt, not restored.
Popularity and links are sums (order does not matter); the behaviour facet's SGD steps are not, so
the records are published to one partition (read in offset order) and folding starts only once the
catalogue is indexed (its vectors start from the items' texts). A record published twice (a crash
between the send and the commit) is dropped by its (user, event id).
"""

from __future__ import annotations

import logging
from typing import Awaitable, Callable

from aiokafka import ConsumerRecord

from schemas import Engagement, load_json
from streams.state.engagement import Engagements
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

    async def run(self) -> None:
        if self.after is not None:
            # The behaviour facet starts an item's vectors from its text in the index: an item
            # folded before the catalogue is indexed would start elsewhere, and differ by worker.
            await self.after()
        await super().run()

    def _fold(self, records: list[ConsumerRecord]) -> None:
        engagements = self.recommender.engagements
        for r in records:
            try:
                batch = [Engagement.from_dict(e) for e in load_json(r.value)["engagements"]]
            except (KeyError, TypeError, ValueError) as exc:  # only the worker writes the topic: a bug, not input
                self.malformed += 1
                log.warning("engagements[%s]@%s skipped: %s", r.partition, r.offset, exc)
                continue
            for e in batch:
                engagements.observe(e.user_id, e.event_id, e.item_id, e.ts, e.weight, e.previous)
            self.folded += len(batch)

    def restarting(self) -> None:
        # Read again from the beginning: start from nothing, or every engagement would count twice.
        old = self.recommender.engagements
        self.recommender.engagements = Engagements(old.config, old.content)
