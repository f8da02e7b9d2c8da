"""Event -> profile latency through one worker at a fixed rate of text events (the bench's latency
phase alone, repeated, to compare settings or commits by alternating runs).

Bundled broker; 2,000 items, 200 users; R rounds of S seconds at RATE text events/s, each round's
p50/p95/p99 (ms from send to the profile record) and the worker's mean micro-batch size and encoder
time per batch over the rounds. Extra worker settings as NAME=VALUE arguments
(INTEREST_STREAM_ prefix added):
`.venv/bin/python benchmarks/latency_probe.py 80 3 8 BATCH_WAIT_MS=20` (about 2 minutes).
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
import tempfile
from pathlib import Path
from typing import Iterator

from streams.tools.bench import (
    BenchConfig,
    StreamMaker,
    event_counts,
    feed,
    histogram_mean,
    metrics_text,
    paced_latency,
    percentiles,
    stage_ms_per_batch,
)
from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess


@contextlib.contextmanager
def probe_worker(prefix: str, extra: dict[str, str]) -> Iterator[tuple[EmbeddedBroker, WorkerProcess, StreamMaker]]:
    """A bundled broker and one worker (``extra``: settings without their INTEREST_STREAM_ prefix)
    with the bench's catalogue indexed."""
    cfg = BenchConfig()
    maker = StreamMaker(cfg)
    workdir = Path(tempfile.mkdtemp(prefix=prefix))
    with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
        env = {**broker.worker_env, **{f"INTEREST_STREAM_{k}": v for k, v in extra.items()}}
        worker = WorkerProcess(broker.url, workdir, "probe", env)
        try:
            worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker")
            feed(maker.items(cfg.items), broker.url, "catalogue", 4)
            worker.wait_until(lambda h: h["items_indexed"] >= cfg.items, 600, "the catalogue")
            yield broker, worker, maker
        finally:
            worker.stop()


def split_args(args: list[str]) -> tuple[list[str], dict[str, str]]:
    """Command-line arguments -> (numbers, NAME=VALUE settings)."""
    return [a for a in args if "=" not in a], dict(a.split("=", 1) for a in args if "=" in a)


def main(rate: float, rounds: int, seconds: float, extra: dict[str, str]) -> None:
    with probe_worker("latency-probe-", extra) as (broker, worker, maker):
        feed(maker.text_events(300), broker.url, "warm-up", 4)  # the encoder's first passes are slow
        # Not timed while the warm-up is still being applied (its backlog was the first round's p99).
        worker.wait_until(lambda h: h["events_applied"] >= 300, 300, "the warm-up")
        before = metrics_text(worker)
        for _ in range(rounds):
            counts = event_counts(worker, (f"u{i}" for i in range(maker.cfg.users)))
            lat, to_record = asyncio.run(paced_latency(broker, maker.text_events, rate, seconds, counts))
            print("p50/p95/p99 ms:", {k: round(v) for k, v in percentiles(lat).items()}, f"({len(lat)} events);",
                  "to the record's timestamp:", {k: round(v) for k, v in percentiles(to_record).items()})
        after = metrics_text(worker)
    for name in ("interest_stream_batch_records", "interest_stream_encode_seconds"):
        (s0, c0), (s1, c1) = histogram_mean(before, name), histogram_mean(after, name)
        print(f"{name}: mean {(s1 - s0) / max(1.0, c1 - c0):.3f} over {c1 - c0:.0f}")
    print("ms per user micro-batch by stage:", {k: round(v, 1) for k, v in stage_ms_per_batch(before, after).items()})


if __name__ == "__main__":
    nums, extra = split_args(sys.argv[1:])
    main(float(nums[0]) if nums else 80.0, int(nums[1]) if len(nums) > 1 else 3, float(nums[2]) if len(nums) > 2 else 8.0,
         extra)
