"""Recovery time after a restart, per table store: `/healthz` `recovered_after_s` (process start ->
tables restored and item index rebuilt) and the time until `status: ok`.

Bundled broker; N click events of 1,000 users on 300 items are applied, the worker is stopped
gracefully and started again, twice per store. Run: `.venv/bin/python benchmarks/recovery.py`
(EVENTS=50000 by default). Results: benchmarks/RESULTS.md, "Recovery after a restart"."""

from __future__ import annotations

import asyncio
import os
import random
import tempfile
import time
import uuid
from pathlib import Path

from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess
from streams.tools.replay import replay


def click_stream(n: int, seed: int = 5) -> tuple[list[dict], list[dict]]:
    rng, now = random.Random(seed), time.time() - 86400
    items = [{"type": "item", "event_id": f"ri-{i}", "item_id": f"r{i}", "title": f"Product {i} {w}", "ts": now}
             for i, w in enumerate(rng.choices(["shoes", "headphones", "pan", "tent", "novel", "game"], k=300))]
    clicks = [{"type": "click", "event_id": f"rc{k}", "user_id": f"ru{rng.randrange(1000)}",
               "item_id": f"r{rng.randrange(300)}", "ts": now + rng.uniform(-20 * 86400, 0)} for k in range(n)]
    return items, clicks


def main() -> None:
    n = int(os.environ.get("EVENTS", 50_000))
    items, clicks = click_stream(n)
    workdir = Path(tempfile.mkdtemp(prefix="interest-stream-recovery-"))
    with EmbeddedBroker(log_file=workdir / "tansu.log") as broker:
        asyncio.run(replay(items + clicks, broker.url, partitions=3))
        for store in ("rocksdb://", "memory://"):
            app_id = f"recovery-{store[:-3]}-{uuid.uuid4().hex[:4]}"
            env = {**broker.worker_env, "INTEREST_STREAM_STORE": store}
            worker = WorkerProcess(broker.url, workdir, app_id, env)
            worker.wait_processed(n, timeout_s=900)
            worker.stop()
            for attempt in (1, 2):
                started = time.monotonic()
                worker = WorkerProcess(broker.url, workdir, app_id, env)
                health = worker.wait_until(lambda h: h["status"] == "ok", 300, "the restarted worker")
                print(f"{store:12} restart {attempt}: recovered_after_s {health['recovered_after_s']:.2f}, "
                      f"ready after {time.monotonic() - started:.1f} s, users {health['users']}", flush=True)
                worker.stop()


if __name__ == "__main__":
    main()
