"""Clicks per second through one worker, in repeated rounds (the bench's clicks phase alone, to
compare two commits by alternating runs: rounds vary by ±20 % on the 2-core machine).

Bundled broker; 2,000 items, 200 users; R rounds of N clicks each, timed from the first send to
the last event applied. Run from a checkout of the commit to measure:
`.venv/bin/python benchmarks/click_probe.py 4 5000` (about 2 minutes).
"""

from __future__ import annotations

import statistics
import sys
import tempfile
from pathlib import Path

from streams.tools.bench import BenchConfig, StreamMaker, feed, throughput
from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess


def main(rounds: int, n: int) -> None:
    cfg = BenchConfig()
    maker = StreamMaker(cfg)
    workdir = Path(tempfile.mkdtemp(prefix="click-probe-"))
    with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
        worker = WorkerProcess(broker.url, workdir, "probe", broker.worker_env)
        try:
            worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker")
            feed(maker.items(cfg.items), broker.url, "catalogue", 4)
            worker.wait_until(lambda h: h["items_indexed"] >= cfg.items, 600, "the catalogue")
            rates = [throughput(worker, maker.clicks(n), broker.url, "clicks", 4) for _ in range(rounds)]
        finally:
            worker.stop()
    print("clicks/s per round:", [round(r) for r in rates], "median", round(statistics.median(rates)))


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 4, int(sys.argv[2]) if len(sys.argv) > 2 else 5000)
