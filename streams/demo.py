"""`interest-stream demo`: bundled broker + a real worker + the bundled sample data, end to end."""

from __future__ import annotations

import asyncio
import os
import sys
import tempfile
import time
from importlib import resources
from pathlib import Path
from typing import Any

from tqdm import tqdm

from streams.broker import EmbeddedBroker
from streams.process import WorkerProcess, get_json
from streams.replay import read_jsonl, replay
from streams.settings import Settings


def bundled_data_dir() -> Path:
    return Path(str(resources.files("streams") / "demo_data"))


def describe_user(base: str, user_id: str, k: int = 5) -> dict[str, Any]:
    _, profile = get_json(f"{base}/users/{user_id}/profile")
    _, recs = get_json(f"{base}/users/{user_id}/recommendations?k={k}")
    return {
        "sentiment": profile["summary"]["sentiment"]["score"],
        "style": profile["summary"]["style"],
        "topics": list(profile["summary"]["topic"]["categories"].items())[:2],
        "top": [item["title"] for item in recs["items"][:3]],
        "counts": profile["event_counts"],
    }


def format_user(user_id: str, before: dict[str, Any], after: dict[str, Any]) -> str:
    def line(tag: str, d: dict[str, Any]) -> str:
        topics = ", ".join(f"{p:.0%} {c}" for c, p in d["topics"])
        style = " ".join(f"{k}={v:+.2f}" for k, v in d["style"].items())
        return (f"  {tag:<6} topic: {topics}\n         sentiment {d['sentiment']:+.2f} | style {style}\n"
                f"         top picks: {'; '.join(d['top'])}")
    return f"user {user_id}\n{line('before', before)}\n{line('after', after)}"


def run_demo(settings: Settings, data_dir: Path | None = None, show_users: int = 3) -> int:
    data = data_dir or bundled_data_dir()
    items = list(read_jsonl(data / "items.jsonl"))
    phases = [list(read_jsonl(data / "before.jsonl")), list(read_jsonl(data / "after.jsonl"))]
    users = sorted({e["user_id"] for e in phases[0] if "user_id" in e})[:show_users]
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="interest-stream-demo-"))
    print(f"interest-stream demo: {len(items)} items, {sum(map(len, phases))} user events; logs in {workdir}")
    with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
        print(f"broker (bundled Tansu) on {broker.url}; starting a worker ...", flush=True)
        worker = WorkerProcess(broker.url, workdir, f"demo-{os.getpid()}", {**broker.worker_env, "INTEREST_STREAM_LOG_LEVEL": "warning"})
        try:
            worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker to start")
            _send(items, broker.url, "catalogue", settings.partitions)
            worker.wait_until(lambda h: h["items_indexed"] >= len(items), 120, "the catalogue to be indexed")
            snapshots, processed, busy_s = [], 0, 0.0
            for name, events in zip(("before the shift", "after the shift"), phases):
                t = time.monotonic()
                _send(events, broker.url, name, settings.partitions)
                processed += len(events)
                health = worker.wait_processed(processed)
                busy_s += time.monotonic() - t
                snapshots.append({u: describe_user(worker.base, u) for u in users})
            print()
            for u in users:
                print(format_user(u, snapshots[0][u], snapshots[1][u]))
            wall = time.monotonic() - started
            print(f"\n{health['events_applied']} events applied, {health['user_events_dead_lettered']} dead-lettered "
                  f"(malformed on purpose), {health['items_indexed']} items indexed")
            print(f"throughput: {processed / busy_s:.0f} events/s (send -> applied); demo wall time {wall:.1f}s")
        finally:
            code = worker.stop()
    print(f"worker stopped (exit {code}); broker stopped. Done.")
    return 0


def _send(events: list[dict[str, Any]], broker_url: str, label: str, partitions: int) -> None:
    with tqdm(total=len(events), unit="ev", desc=f"replay {label}", file=sys.stdout) as bar:
        asyncio.run(replay(events, broker_url, bar.update, partitions))
