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

from streams.settings import Settings
from streams.tools.broker import EmbeddedBroker
from streams.tools.process import WorkerProcess, get_json
from streams.tools.replay import read_jsonl, send_with_progress


def bundled_data_dir() -> Path:
    return Path(str(resources.files("streams.tools") / "demo_data"))


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


def run_demo(settings: Settings, data_dir: Path | None = None, show_users: int = 3,
             screenshot_to: Path | None = None) -> int:
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
            send_with_progress(items, broker.url, "catalogue", settings.partitions)
            worker.wait_until(lambda h: h["items_indexed"] >= len(items), 120, "the catalogue to be indexed")
            snapshots, processed, busy_s = [], 0, 0.0
            for name, events in zip(("before the shift", "after the shift"), phases):
                t = time.monotonic()
                send_with_progress(events, broker.url, name, settings.partitions)
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
            print(f"live page: {worker.base}/ui?user={users[0]}")
            if screenshot_to:
                from streams.tools.screenshot import screenshot

                print(f"screenshot of it: {screenshot(f'{worker.base}/ui?user={users[0]}', screenshot_to)}")
        finally:
            code = worker.stop()
    print(f"worker stopped (exit {code}); broker stopped. Done.")
    return 0


NEWS_USERS = [  # a trader who follows TSLA, and a reader whose own searches keep naming Tesla
    {"type": "watchlist", "event_id": "demo-wl-1", "user_id": "trader-1", "entity": "TSLA", "op": "add"},
    {"type": "watchlist", "event_id": "demo-wl-2", "user_id": "trader-1", "entity": "AAPL", "op": "add"},
    {"type": "search", "event_id": "demo-s-1", "user_id": "reader-1", "query": "Tesla delivery numbers"},
    {"type": "search", "event_id": "demo-s-2", "user_id": "reader-1", "query": "$TSLA price target"},
    {"type": "search", "event_id": "demo-s-3", "user_id": "reader-1", "query": "Tesla cybertruck review"},
]


def run_news_demo(settings: Settings, data_dir: Path | None = None, screenshot_to: Path | None = None) -> int:
    """Replay the bundled news stream (TSLA turns negative halfway) and print the alerts."""
    data = data_dir or bundled_data_dir()
    news = list(read_jsonl(data / "news.jsonl"))
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix="interest-stream-news-demo-"))
    print(f"interest-stream news demo: {len(news)} news records; logs in {workdir}")
    first_ts = min(n["ts"] for n in news if isinstance(n.get("ts"), float))
    users = [{**u, "ts": first_ts} for u in NEWS_USERS]
    with EmbeddedBroker(log_file=workdir / "broker.log") as broker:
        print(f"broker (bundled Tansu) on {broker.url}; starting a worker ...", flush=True)
        worker = WorkerProcess(broker.url, workdir, f"news-demo-{os.getpid()}",
                               {**broker.worker_env, "INTEREST_STREAM_LOG_LEVEL": "warning"})
        try:
            worker.wait_until(lambda h: h["status"] == "ok", 180, "the worker to start")
            send_with_progress(users, broker.url, "watchlists and searches", settings.partitions)
            worker.wait_until(lambda h: h["events_applied"] >= 3, 60, "the users' events")
            sent_at = send_paced(news, broker.url, settings.partitions)
            valid = sum(1 for n in news if not str(n["event_id"]).startswith("bad-"))
            health = worker.wait_until(lambda h: h["news_received"] >= valid, 120, "the news to be scored")
            health = worker.wait_settled("mentions")
            _, body = get_json(f"{worker.base}/alerts")
            alerts = body["alerts"]
            print(f"\n{health['news_received']} news scored, {health['mentions']} entity mentions, "
                  f"{health['dead_lettered']} dead-lettered (malformed on purpose), "
                  f"{health['news_without_entity']} naming no known company")
            print(f"{len(alerts)} alert(s):")
            for a in alerts:
                trigger = a["news"][-1]["event_id"]
                latency = a["fired_at"] - sent_at[trigger] if trigger in sent_at else float("nan")
                print(f"  [{a['rule']}] {a['entity']}: {a['detail']}\n    caused by: "
                      + "; ".join(n["headline"] for n in a["news"][-3:])
                      + f"\n    news -> alert latency {latency * 1000:.0f} ms")
            _, tsla = get_json(f"{worker.base}/entities/TSLA")
            w, b = tsla["window"], tsla["baseline"]
            print(f"TSLA now: window mean {w['mean']:+.2f} over {w['count']} news, baseline {b['mean']:+.2f} "
                  f"± {b['std']:.2f} from {b['count']} news")
            for user in ("trader-1", "reader-1"):
                _, profile = get_json(f"{worker.base}/users/{user}/profile")
                print(f"user {user}: follows {profile['summary']['entities']['follows']}, reads about "
                      f"{profile['summary']['entities']['reads_about']}")
            print(f"user alerts sent: {health['user_alerts_sent']}; demo wall time {time.monotonic() - started:.1f}s")
            print(f"live page: {worker.base}/ui/alerts?entity=TSLA")
            if screenshot_to:
                from streams.tools.screenshot import screenshot

                print(f"screenshot of it: {screenshot(f'{worker.base}/ui/alerts?entity=TSLA', screenshot_to)}")
        finally:
            code = worker.stop()
    print(f"worker stopped (exit {code}); broker stopped. Done.")
    return 0


def send_paced(events: list[dict[str, Any]], broker_url: str, partitions: int, rate: float = 50.0) -> dict[str, float]:
    """Send one event at a time at ``rate`` per second (well under the encoder's capacity, so the
    latency measured is the pipeline's, not a backlog's); returns each event's send time."""
    from aiokafka import AIOKafkaProducer

    from schemas import dump_json
    from streams.settings import bootstrap_of
    from streams.tools.replay import route
    from streams.worker.topic_admin import ensure_topics

    async def run(bar: tqdm) -> dict[str, float]:
        routed = [route(e) for e in events]
        await ensure_topics(bootstrap_of(broker_url), sorted({t for t, _ in routed}), partitions)
        producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(broker_url), acks="all")
        await producer.start()
        sent_at: dict[str, float] = {}
        try:
            start = time.monotonic()
            for i, (event, (topic, key)) in enumerate(zip(events, routed)):
                await asyncio.sleep(max(0.0, start + i / rate - time.monotonic()))
                sent_at[event["event_id"]] = time.time()
                await producer.send_and_wait(topic, dump_json(event), key=key)
                bar.update(1)
        finally:
            await producer.stop()
        return sent_at

    with tqdm(total=len(events), unit="ev", desc=f"replay news at {rate:.0f}/s", file=sys.stdout) as bar:
        return asyncio.run(run(bar))
