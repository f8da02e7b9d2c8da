"""Learned state beside the encoder: the sentiment head (learns from review ratings), the
recommender's ranker (learns from clicks and reviews) and the discovered topics, stored in the
changelogged ``heads`` table and restored at start.

The newest version wins wherever it is read from: each write lands in the partition of the event
that caused it, so a key can be in several partitions of the changelog.
"""

from __future__ import annotations

import time
from typing import Any, Sequence

from faust.types import EventT

from encoders import FacetVectors
from schemas import load_json
from streams.faust_ext import DeliveredTable, event_context, local_rows
from streams.state.ranker import Example
from streams.worker.context import WorkerContext

SENTIMENT_KEY, TOPICS_KEY, RANKER_KEY = "sentiment", "topics", "ranker"


class LearnedHeads:
    def __init__(self, ctx: WorkerContext, table: DeliveredTable, topics_every_s: float = 10.0) -> None:
        self.ctx = ctx
        self.table = table
        self.topics_every_s = topics_every_s  # a few tens of kB per save
        self._topics_saved_at = 0.0

    async def learn_sentiment(self, rated: Sequence[tuple[EventT, str, int, int]], vectors: FacetVectors) -> None:
        """Review ratings are labels for the sentiment head; a kept update is stored as a new version.
        ``rated``: (event, text, row in ``vectors``, rating) of applied reviews."""
        rows = vectors.facets["topic"][[r for _, _, r, _ in rated]]
        changed = await self.ctx.in_encode_thread(
            self.ctx.encoder.learn_sentiment, [t for _, t, _, _ in rated], rows, [r for *_, r in rated])
        if changed:
            with event_context(rated[-1][0]):
                self.table[SENTIMENT_KEY] = self.ctx.encoder.heads["sentiment"].online.to_dict()
            await self.table.delivered()

    async def learn_ranking(self, examples: Sequence[Example], event: EventT) -> None:
        """One bounded step of the recommender's ranker; a kept update is stored as a new version."""
        ranker = self.ctx.recommender.ranker if self.ctx.recommender else None
        if ranker is None or not examples:
            return
        if await self.ctx.in_encode_thread(ranker.learn, examples):
            with event_context(event):
                self.table[RANKER_KEY] = ranker.to_dict()
            await self.table.delivered()

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
        elif key == RANKER_KEY and self.ctx.recommender is not None:
            await self.ctx.in_encode_thread(self.ctx.recommender.ranker.load, value)
        elif key == SENTIMENT_KEY:
            await self.ctx.in_encode_thread(self.ctx.encoder.heads["sentiment"].online.load, value)


