"""The catalogue: item events -> encoder -> FAISS index and the changelogged ``items`` table.

Every worker's index holds the whole catalogue: its own items partitions come from the item
agent (and the rebuild after recovery), the others from their changelogs, which Faust reads as
standby replicas (enough for N workers while N - 1 <= table_standby_replicas).
"""

from __future__ import annotations

import logging
import time
from typing import Any, Sequence

import numpy as np
from faust.types import EventT

from schemas import ItemEvent, join_facets, load_json, pack_vector, split_facets, unpack_vector
from streams.faust_ext import DeliveredTable, event_context, local_rows
from streams.worker.context import WorkerContext
from streams.worker.heads import LearnedHeads

log = logging.getLogger(__name__)


class ItemHandler:
    def __init__(self, ctx: WorkerContext, table: DeliveredTable, heads: LearnedHeads) -> None:
        self.ctx = ctx
        self.table = table
        self.heads = heads
        self._changes: dict[str, dict[str, Any] | None] = {}  # read from changelogs, not yet indexed

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
        for i, (event, record) in enumerate(upserts):
            with event_context(event):
                self.table[record.item_id] = {
                    "vector": pack_vector(join_facets(vectors.row(i), ctx.layout)),
                    "title": record.title,
                    "category": record.category,
                    "ts": record.ts,
                }
        for event, record in deletes:
            with event_context(event):
                self.table.pop(record.item_id, None)
        if upserts:
            await self.heads.save_topics(upserts[-1][0])
        await self.table.delivered()
        ctx.stats.items_applied += len(last)

    async def rebuild_index(self) -> None:
        """After the items table is restored, rebuild FAISS from it (no re-encoding)."""
        count = self._index(local_rows(self.table))
        self.ctx.stats.recovered_after_s = round(time.time() - self.ctx.started_at, 3)
        log.info("item index rebuilt from the items table: %d items", count)

    async def on_changelog(self, event: EventT) -> None:
        """An items changelog record read by this worker (a standby partition, or recovery)."""
        msg = event.message
        self._changes[load_json(msg.key)] = load_json(msg.value) if msg.value else None

    async def apply_changes(self) -> None:
        """Index what the changelogs brought since the last call (a timer: one batch per call)."""
        changes, self._changes = self._changes, {}
        if changes:
            self._index(list(changes.items()))

    def _index(self, rows: list[tuple[str, dict[str, Any] | None]]) -> int:
        """Upsert (value) or delete (None) items in the FAISS index, in one batch each."""
        upserts = [(i, v) for i, v in rows if v is not None]
        if upserts:
            vectors = np.stack([unpack_vector(v["vector"]) for _, v in upserts])
            metas = [{"title": v.get("title", ""), "category": v.get("category", "")} for _, v in upserts]
            self.ctx.index.upsert([i for i, _ in upserts], split_facets(vectors, self.ctx.layout), metas)
        self.ctx.index.delete(i for i, v in rows if v is None)
        return len(upserts)
