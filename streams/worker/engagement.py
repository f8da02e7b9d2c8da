"""Item-side behaviour on every worker: the user agent publishes the applied clicks and reviews
of each micro-batch as one ``engagements`` record (streams/worker/users.py); every worker follows the whole topic from the
beginning (streams/worker/follower.py) and folds it into the recommender's ``Engagements``
(decayed popularity, co-engagement, the behaviour facet; streams/state/engagement.py), so each worker can rank any
item for any user.

After a restart the topic is read again from the beginning: the state is rebuilt, not restored.
Folding is a sum, so the order across partitions does not matter; a record published twice (a
crash between the send and the commit) is dropped by its (user, event id).
"""

from __future__ import annotations

import logging
from typing import Callable

from aiokafka import ConsumerRecord

from schemas import Engagement, load_json
from streams.state.engagement import Engagements
from streams.state.recommend import Recommender
from streams.worker.follower import LogFollower

log = logging.getLogger(__name__)


class EngagementFollower(LogFollower):
    def __init__(self, bootstrap: str, topic: str, recommender: Recommender, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None) -> None:
        super().__init__(bootstrap, topic, self._fold, fetch_max_wait_ms, on_caught_up)
        self.recommender = recommender
        self.malformed = 0  # records that could not be read
        self.folded = 0  # engagements in the records read

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
