"""A worker's restart on a big catalogue: from its snapshot of the index (streams/worker/follower.py,
written as it stops) against reading the whole item vectors log, in the same run.

Bundled broker; N synthetic items (default 10^6, the bench's clustered vectors of the worker's
layout) written straight into the item vectors log, as the bench's big catalogue is. Then one
worker (with its learner process): 1. a first start, from the log; its stop, which writes the
snapshot; 2. a start from the snapshot; 3. a start with INTEREST_STREAM_CATALOGUE_SNAPSHOT_S=0,
from the whole log again. Each start is timed to the whole catalogue indexed (user events are held
until then) and to the IVF index in use in the worker and in its learner process.

`.venv/bin/python benchmarks/restart_big_catalogue.py [N]` (10^6: about 12 minutes, 16 GB).
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from schemas.topics import item_vectors_topic
from streams.settings import Settings
from streams.tools.bench_catalogue import _rss_mb, _vectors, learner_settled, write_vectors_log
from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess

LAYOUT = {"sentiment": 3, "topic": 384, "style": 4}  # the bundled encoder's (FacetEncoder.layout)
APP = "restart-big"


def timed_start(broker: EmbeddedBroker, workdir: Path, items: int, env: dict[str, str], label: str) -> WorkerProcess:
    started = time.perf_counter()
    worker = WorkerProcess(broker.url, workdir, APP, {**broker.worker_env, **env})
    health = worker.wait_until(lambda h: h["status"] == "ok" and h["items_indexed"] >= items, 1800, "indexed")
    indexed = time.perf_counter() - started
    if items >= Settings().index.ann_threshold:
        worker.wait_until(lambda h: h["index"]["search"] == "ivf" and not h["index"]["building"], 1800, "IVF")
    ivf = time.perf_counter() - started
    worker.wait_until(learner_settled, 1800, "the learner's index")
    learner = time.perf_counter() - started
    snapshot = health["catalogue_snapshot"]["loaded"]
    print(f"{label}: indexed {indexed:.1f} s, IVF search {ivf:.1f} s, learner's index {learner:.1f} s; "
          f"log records read {health['catalogue_records_read']:,}; snapshot {'taken over' if snapshot else 'none'}; "
          f"worker RSS {_rss_mb(worker.proc.pid)['rss_mb']:,.0f} MB", flush=True)
    return worker


def main(items: int) -> None:
    workdir = Path(tempfile.mkdtemp(prefix="restart-big-"))
    partitions = Settings().partitions
    with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
        _, _, facets, _ = _vectors(LAYOUT, items, 0, 0)
        asyncio.run(write_vectors_log(broker.bootstrap, item_vectors_topic(APP), partitions, LAYOUT, facets))
        del facets
        worker = timed_start(broker, workdir, items, {}, "1. first start, from the log")
        t = time.perf_counter()
        worker.stop(timeout_s=300)
        [snapshot] = (workdir / APP).glob(f"{APP}-catalogue-*.snapshot.npz")
        print(f"   stop (writes the snapshot): {time.perf_counter() - t:.1f} s; snapshot "
              f"{snapshot.stat().st_size / 1e9:.2f} GB", flush=True)
        worker = timed_start(broker, workdir, items, {}, "2. restart, from the snapshot")
        worker.stop(timeout_s=300)
        worker = timed_start(broker, workdir, items, {"INTEREST_STREAM_CATALOGUE_SNAPSHOT_S": "0"},
                             "3. restart with snapshots off, from the log")
        worker.stop(timeout_s=300)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 1_000_000)
