"""What a worker's start costs to rebuild its engagements from a long log, from the beginning and
from a snapshot (streams/worker/snapshot.py) plus the tail after it; beside the ceiling of only
reading the same records (the raw broker, no folding).

In process, bundled broker: N engagements (default 10^6) in records of 250, as the user agent
publishes them, over ITEMS items (Zipf-like popularity) and 50,000 users with up to 5 earlier
items each; content vectors random per item (the behaviour facet starts there). Then:
1. read only (the ceiling), 2. the engagement follower from the beginning, 3. its snapshot written,
4. 5 % more engagements, 5. a new follower from the snapshot and that tail, 6. one from the
beginning over the whole log, whose state must equal 5's.

`.venv/bin/python benchmarks/engagements_rebuild.py [N] [ITEMS]` (10^6: about 3 minutes, 3 GB).
"""

from __future__ import annotations

import asyncio
import os
import resource
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from schemas import dump_json
from streams.state.engagement import EngagementConfig, Engagements
from streams.state.ranker import OnlineRanker
from streams.state.recommend import Recommender
from streams.tools.broker import EmbeddedBroker
from streams.worker.engagement import EngagementFollower, snapshot_file
from streams.worker.topic_admin import ensure_topics

PER_RECORD = 250
LAYOUT = {"sentiment": 3, "topic": 384, "style": 4}  # the bundled encoder's: the snapshot's fingerprint
USERS = 50_000


def records(n: int, items: int, start: int, seed: int) -> list[bytes]:
    rng = np.random.default_rng(seed)
    picks = np.minimum(rng.zipf(1.3, size=n) - 1, items - 1)
    users = rng.integers(0, USERS, size=n)
    history: dict[int, list[str]] = {}
    out, batch = [], []
    for k in range(n):
        u, item = int(users[k]), f"i{int(picks[k])}"
        earlier = history.setdefault(u, [])
        batch.append({"user_id": f"u{u}", "event_id": f"e{start + k}", "item_id": item, "ts": 1.7e9 + (start + k) * 0.01,
                      "weight": 1.0, "previous": earlier[:5]})
        earlier.insert(0, item)
        del earlier[5:]
        if len(batch) == PER_RECORD:
            out.append(dump_json({"engagements": batch}))
            batch = []
    if batch:
        out.append(dump_json({"engagements": batch}))
    return out


async def produce(bootstrap: str, values: list[bytes]) -> None:
    await ensure_topics(bootstrap, ["engagements"], 1)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=20, max_batch_size=1 << 20,
                                max_request_size=1 << 24)
    await producer.start()
    try:
        for i in range(0, len(values), 200):
            await asyncio.gather(*[await producer.send("engagements", v, partition=0) for v in values[i : i + 200]])
    finally:
        await producer.stop()


async def read_only(bootstrap: str) -> tuple[float, int]:
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, group_id=None, enable_auto_commit=False,
                                auto_offset_reset="earliest", fetch_max_wait_ms=100)
    await consumer.start()
    tp = TopicPartition("engagements", 0)
    end = (await consumer.end_offsets([tp]))[tp]
    consumer.assign([tp])
    await consumer.seek_to_beginning(tp)
    started, n = time.monotonic(), 0
    while await consumer.position(tp) < end:
        n += sum(map(len, (await consumer.getmany(timeout_ms=1000, max_records=5000)).values()))
    await consumer.stop()
    return time.monotonic() - started, n


def content_of(dim: int = 384):
    def lookup(item_ids):
        out = np.empty((len(item_ids), dim))
        for r, item in enumerate(item_ids):
            out[r] = np.random.default_rng(int(item[1:])).normal(size=dim)
        return out
    return lookup


async def follow(bootstrap: str, data_dir: str, read_snapshot: bool) -> tuple[EngagementFollower, float]:
    """A follower until caught up; the seconds from its start (a snapshot's load included)."""
    config = EngagementConfig()
    rec = Recommender(Engagements(config, content_of()), OnlineRanker(), None)  # type: ignore[arg-type]  # no index: nothing recommended here
    follower = EngagementFollower(bootstrap, "engagements", rec, 100,
                                  snapshots=snapshot_file(data_dir, "bench", config, LAYOUT) if read_snapshot else None)
    started = time.monotonic()
    task = asyncio.create_task(follower.run())
    while follower.caught_up_at is None:
        await asyncio.sleep(0.05)
        if task.done():
            task.result()
    took = time.monotonic() - started
    task.cancel()
    await asyncio.gather(task, return_exceptions=True)
    return follower, took


def rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024


async def main(n: int, items: int) -> None:
    data_dir = tempfile.mkdtemp(prefix="engagements-rebuild-")
    with EmbeddedBroker(log_file=Path(data_dir) / "broker.log") as broker:
        values = records(n, items, 0, 1)
        await produce(broker.bootstrap, values)
        print(f"{n:,} engagements in {len(values):,} records of {PER_RECORD} ({sum(map(len, values)) / 1e6:.0f} MB), "
              f"{items:,} items")
        raw_s, count = await read_only(broker.bootstrap)
        print(f"1. read only (the ceiling): {raw_s:.1f} s, {count:,} records")
        whole, whole_s = await follow(broker.bootstrap, data_dir, read_snapshot=False)
        print(f"2. from the beginning: {whole_s:.1f} s ({whole_s / raw_s:.1f}x reading alone; "
              f"{whole_s / n * 1e6:.1f} us an engagement); {len(whole.recommender.engagements):,} items engaged")
        whole.snapshots = snapshot_file(data_dir, "bench", whole.recommender.engagements.config, LAYOUT)
        started = time.monotonic()
        await whole.write_snapshot()
        print(f"3. snapshot written in {time.monotonic() - started:.1f} s: {whole.snapshot['last_bytes'] / 1e6:.0f} MB")
        tail = records(n // 20, items, n, 2)
        await produce(broker.bootstrap, tail)
        resumed, resumed_s = await follow(broker.bootstrap, data_dir, read_snapshot=True)
        print(f"5. from the snapshot and a tail of {n // 20:,}: {resumed_s:.1f} s ({resumed.records:,} records read)")
        again, again_s = await follow(broker.bootstrap, data_dir, read_snapshot=False)
        print(f"6. from the beginning over all {n + n // 20:,}: {again_s:.1f} s; "
              f"the snapshot's start is {again_s / resumed_s:.1f}x faster")
        a, b = again.recommender.engagements, resumed.recommender.engagements
        n = a.behaviour.n
        same = (a.status() == b.status() and np.array_equal(a.popularity()[1], b.popularity()[1])
                and all(a.links_of(i) == b.links_of(i) for i in a.ids_of(range(len(a))))
                and all(a._links[r].total == b._links[r].total for r in a._links)
                and np.array_equal(a.behaviour.W[:n], b.behaviour.W[:n]) and np.array_equal(a.behaviour.C[:n], b.behaviour.C[:n]))
        print(f"   state from the snapshot equals the state from the beginning: {same}; peak RSS {rss_mb():,.0f} MB")
    os.system(f"rm -rf {data_dir}")


if __name__ == "__main__":
    asyncio.run(main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000, int(sys.argv[2]) if len(sys.argv) > 2 else 20_000))
