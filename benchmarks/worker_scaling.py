"""Clicks per second with 1, 2 and 3 workers of one app on this machine (issue #14's scaling figure).

For each worker count: a fresh bundled broker, the workers started together (one consumer group,
4 partitions per topic), 2,000 items, 200 users; a warm-up round, then R rounds of N clicks, each
timed from the first send until the workers *together* have applied all of them (the sum of
their /healthz counters). Every worker also folds every engagement (popularity, links and the
behaviour facet are kept whole on each: streams/worker/engagement.py), so that part of the work
does not shrink with more workers; on a 2-core machine the workers, the broker and the producer
share two cores. Run: `.venv/bin/python benchmarks/worker_scaling.py 3 5000` (about 10 minutes).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

from streams.tools.bench import BenchConfig, StreamMaker, feed
from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess

COUNTERS = ("events_applied", "user_events_dead_lettered", "redelivered_skipped", "duplicate_skipped")


def processed(workers: list[WorkerProcess]) -> int:
    total = 0
    for w in workers:
        health = w.health() or {}
        total += sum(int(health.get(c, 0)) for c in COUNTERS)
    return total


def round_rate(workers: list[WorkerProcess], events: list[dict], broker_url: str, timeout_s: float = 600) -> float:
    target = processed(workers) + len(events)
    started = time.perf_counter()
    feed(events, broker_url, "clicks", 4)
    deadline = time.monotonic() + timeout_s
    while processed(workers) < target:
        if time.monotonic() > deadline:
            raise TimeoutError(f"{target - processed(workers)} clicks not processed after {timeout_s:.0f} s")
        time.sleep(0.05)
    return len(events) / (time.perf_counter() - started)


def run(count: int, rounds: int, n: int) -> list[float]:
    cfg = BenchConfig()
    maker = StreamMaker(cfg)
    workdir = Path(tempfile.mkdtemp(prefix=f"scaling-{count}-"))
    with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
        workers = []
        for k in range(count):  # one folder each: a worker's RocksDB files are its own
            (workdir / f"w{k}").mkdir()
            workers.append(WorkerProcess(broker.url, workdir / f"w{k}", "scaling", broker.worker_env))
        try:
            for w in workers:
                w.wait_until(lambda h: h["status"] == "ok", 300, "a worker")
            feed(maker.items(cfg.items), broker.url, "catalogue", 4)
            for w in workers:
                w.wait_until(lambda h: h["items_indexed"] >= cfg.items, 600, "the catalogue on every worker")
            round_rate(workers, maker.clicks(1000), broker.url)  # warm-up: the group has settled
            return [round_rate(workers, maker.clicks(n), broker.url) for _ in range(rounds)]
        finally:
            for w in workers:
                w.stop()


def main(rounds: int, n: int) -> None:
    for count in (1, 2, 3):
        rates = run(count, rounds, n)
        print(f"{count} worker(s): clicks/s per round {[round(r) for r in rates]}, median {round(statistics.median(rates))}",
              flush=True)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 3, int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
