"""The catalogue: item events -> encoder -> FAISS index and the item vectors log.

The agent indexes the items of its own partitions at once and writes each item's vector to the
compacted item vectors log (``schemas.topics.item_vectors_topic``); every worker's index gets the
whole catalogue from that log (``streams/worker/catalogue.py``), through ``index_rows``.
"""

from __future__ import annotations

from typing import Any, Sequence

import numpy as np
from faust.types import EventT

from schemas import ItemEvent, dump_json, join_facets, pack_vector
from streams.worker.catalogue import index_vector_rows
from streams.worker.context import WorkerContext
from streams.worker.heads import LearnedHeads
from streams.worker.placement import partition_for


def vectors_log_key(item_id: str) -> bytes:
    return dump_json(item_id)


def vectors_log_value(vector: np.ndarray, title: str, category: str, ts: float) -> bytes:
    """An item's record in the item vectors log: its joined facet vector (as ``index_rows`` reads
    it back) and metadata."""
    return dump_json({"vector": pack_vector(vector), "title": title, "category": category, "ts": ts})


class ItemHandler:
    def __init__(self, ctx: WorkerContext, vectors_topic: str, heads: LearnedHeads) -> None:
        """``vectors_topic``: the item vectors log."""
        self.ctx = ctx
        self.vectors_topic = vectors_topic
        self.heads = heads

    async def handle(self, batch: Sequence[EventT]) -> None:
        ctx = self.ctx
        ctx.stats.batches += 1
        last: dict[str, tuple[EventT, ItemEvent]] = {}  # only the last op per item in a batch matters
        for event in batch:
            record = await ctx.decode(event)
            if record is not None:
                last.pop(record.item_id, None)
                last[record.item_id] = (event, record)
        upserts = [(e, r) for e, r in last.values() if r.op == "upsert"]
        deletes = [(e, r) for e, r in last.values() if r.op == "delete"]
        documents = [r.document for _, r in upserts]
        vectors = await ctx.encode(documents)
        if upserts:
            ctx.topics.observe(vectors.facets["topic"], documents)
            metas = [{"title": r.title, "category": r.category} for _, r in upserts]
            ctx.index.upsert([r.item_id for _, r in upserts], vectors.facets, metas)
        ctx.index.delete(r.item_id for _, r in deletes)
        for i, (_, record) in enumerate(upserts):
            await self._log(record.item_id, vectors_log_value(join_facets(vectors.row(i), ctx.layout), record.title,
                                                              record.category, record.ts))
        for _, record in deletes:
            await self._log(record.item_id, None)  # a tombstone: compaction then drops the item
        if upserts:
            await self.heads.save_topics(upserts[-1][0])
        # The caller (in_order) waits for these records before the batch's offsets may be committed.
        ctx.stats.items_applied += len(last)

    async def _log(self, item_id: str, value: bytes | None) -> None:
        """One record of the item vectors log, in the partition the item id hashes to (not the
        items record's: producers with other partitioners must not put one item's versions in two
        partitions, whose relative order no reader could know)."""
        await self.ctx.outbox.send(self.vectors_topic, vectors_log_key(item_id), value,
                                   partition=partition_for(item_id, self.ctx.settings.partitions))

    def index_rows(self, rows: list[tuple[str, dict[str, Any] | None]]) -> int:
        """Items of the item vectors log into this worker's index (the catalogue follower's callback)."""
        return index_vector_rows(self.ctx.index, self.ctx.layout, rows)
