"""Learned state beside the encoder: the sentiment head (learns from review ratings) and the
discovered topics, stored in the changelogged ``heads`` table and restored at start; and the
recommender's ranker, which proposes steps from this worker's clicks and reviews: every worker
applies every worker's steps from the engagements log (streams/worker/engagement.py), so they all
rank with the same weights, rebuilt from that log at a start.

The newest version wins wherever it is read from: each write lands in the partition of the event
that caused it, so a key can be in several partitions of the changelog.
"""

from __future__ import annotations

import time
import uuid
from typing import Any, Sequence

from faust.types import EventT

from encoders import FacetVectors
from schemas import RankerStep, load_json
from streams.faust_ext import DeliveredTable, event_context, local_rows
from streams.state.ranker import FEATURES, Example
from streams.worker.context import WorkerContext

# "ranker" held the ranker's weights until the night of 2026-11-30; a stored one is not read (the
# weights come from the engagements log now).
SENTIMENT_KEY, TOPICS_KEY = "sentiment", "topics"


class LearnedHeads:
    def __init__(self, ctx: WorkerContext, table: DeliveredTable, topics_every_s: float = 10.0) -> None:
        self.ctx = ctx
        self.table = table
        self.topics_every_s = topics_every_s  # a few tens of kB per save
        self._topics_saved_at = 0.0

    async def learn_sentiment(self, rated: Sequence[tuple[EventT, str, int, int]], vectors: FacetVectors) -> None:
        """Review ratings are labels for the sentiment head; a kept update is stored as a new version.
        ``rated``: (event, text, row in ``vectors``, rating) of applied reviews."""
        assert vectors.sentiment_inputs is not None  # FacetEncoder.encode always sets them
        rows = vectors.sentiment_inputs[[r for _, _, r, _ in rated]]
        changed = await self.ctx.in_encode_thread(
            self.ctx.encoder.learn_sentiment, [t for _, t, _, _ in rated], rows, [r for *_, r in rated])
        if changed:
            with event_context(rated[-1][0]):
                self.table[SENTIMENT_KEY] = self.ctx.encoder.heads["sentiment"].online.to_dict()
            await self.table.delivered()

    async def propose_ranking(self, examples: Sequence[Example]) -> RankerStep | None:
        """One bounded step of the recommender's ranker from this batch's lessons, if the
        held-back guard keeps it; not applied here (see the module's docstring)."""
        ranker = self.ctx.recommender.ranker if self.ctx.recommender else None
        if ranker is None or not examples:
            return None
        step = await self.ctx.in_encode_thread(ranker.propose, examples)
        return None if step is None else RankerStep(uuid.uuid4().hex, list(FEATURES), step.tolist())

    async def save_topics(self, event: EventT) -> None:
        """Store the discovered topics, at most every ``topics_every_s``."""
        topics = self.ctx.topics
        if time.time() - self._topics_saved_at < self.topics_every_s or not topics.counts:
            return
        self._topics_saved_at = time.time()
        with event_context(event):
            self.table[TOPICS_KEY] = topics.to_dict()
        await self.table.delivered()

    async def on_changelog(self, event: EventT) -> None:
        msg = event.message
        if msg.value:
            await self._load(load_json(msg.key), load_json(msg.value))

    async def restore(self) -> None:
        """After recovery, from every local partition (with the memory store the changelog replay
        has done this already; loading again changes nothing)."""
        for key, value in local_rows(self.table):
            await self._load(key, value)

    async def _load(self, key: str, value: dict[str, Any]) -> None:
        if key == TOPICS_KEY:
            self.ctx.topics.load(value)
        elif key == SENTIMENT_KEY:
            await self.ctx.in_encode_thread(self.ctx.encoder.heads["sentiment"].online.load, value)


