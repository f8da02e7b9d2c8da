"""The whole catalogue in every worker's FAISS index, for any number of workers.

The item agent writes each item's vector to the changelogged ``items`` table (and indexes the
items of its own partitions at once). Every worker also follows the items changelog from the
beginning (streams/worker/follower.py) and applies each change to the index in changelog order, so
an upsert or delete made by any worker reaches all of them, whatever the number of workers (table
standby replicas, which only covered workers <= standby replicas + 1, are not needed for it).

A change applied by the agent is applied again when its changelog record arrives (the same
vector: no effect). While the follower lags, an item changed twice in quick succession can
briefly show its previous version; the newest wins once the follower reaches it.
"""

from __future__ import annotations

from typing import Any, Callable

from aiokafka import ConsumerRecord

from schemas import load_json
from streams.worker.follower import LogFollower

Apply = Callable[[list[tuple[str, dict[str, Any] | None]]], int]  # (item id, value or None = delete)


class CatalogueFollower(LogFollower):
    def __init__(self, bootstrap: str, topic: str, apply: Apply, fetch_max_wait_ms: int = 100,
                 on_caught_up: Callable[[], None] | None = None) -> None:
        super().__init__(bootstrap, topic, self._latest, fetch_max_wait_ms, on_caught_up)
        self.apply_rows = apply

    def _latest(self, records: list[ConsumerRecord]) -> None:
        # In offset order per partition, and an item lives in one partition: the last one wins.
        changes: dict[str, dict[str, Any] | None] = {}
        for r in records:
            changes[load_json(r.key)] = load_json(r.value) if r.value else None
        self.apply_rows(list(changes.items()))
