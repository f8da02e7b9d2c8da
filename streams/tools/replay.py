"""Send a JSONL file of events to the broker, each to its type's topic, keyed for co-partitioning."""

from __future__ import annotations

from pathlib import Path
from typing import Any, Callable, Iterable, Iterator

import orjson
from aiokafka import AIOKafkaProducer

from schemas import EVENT_TYPES, dump_json
from schemas.topics import TOPIC_OF_KIND
from schemas.topics import route as topic_route
from streams.errors import ReplayError
from streams.settings import bootstrap_of
from streams.worker.topic_admin import ensure_topics


def read_jsonl(path: Path) -> Iterator[dict[str, Any]]:
    with open(path, "rb") as fh:
        for lineno, line in enumerate(fh, 1):
            if line.strip():
                try:
                    yield orjson.loads(line)
                except orjson.JSONDecodeError as exc:
                    raise ReplayError(f"{path}:{lineno}: not valid JSON: {exc}") from exc


def route(event: dict[str, Any]) -> tuple[str, bytes]:
    """An event with a 'type' field -> (topic, key bytes)."""
    kind = event.get("type")
    if kind not in EVENT_TYPES:
        raise ReplayError(f"event has type {kind!r}; expected one of {sorted(EVENT_TYPES)}: {event}")
    topic, key = topic_route(kind, event)
    if key is None:
        raise ReplayError(f"{kind} event has no {TOPIC_OF_KIND[kind].key_field!r} to key it by: {event}")
    return topic, key.encode()


async def replay(
    events: Iterable[dict[str, Any]],
    broker_url: str,
    on_sent: Callable[[int], None] | None = None,
    partitions: int = 4,
) -> int:
    """Produce every event in order; returns how many were acknowledged by the broker.

    Missing topics are created first with ``partitions`` partitions, so that a broker's
    auto-creation default never decides the layout the workers must then live with.
    """
    events = list(events)
    routed = [route(e) for e in events]  # refuse an unroutable file before sending anything
    await ensure_topics(bootstrap_of(broker_url), sorted({t for t, _ in routed}), partitions)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap_of(broker_url), linger_ms=5, acks="all")
    await producer.start()
    sent = 0
    try:
        futures = []
        for event, (topic, key) in zip(events, routed):
            futures.append(await producer.send(topic, dump_json(event), key=key))
            if len(futures) >= 500:
                for f in futures:
                    await f
                sent += len(futures)
                if on_sent:
                    on_sent(len(futures))
                futures.clear()
        for f in futures:
            await f
        sent += len(futures)
        if on_sent and futures:
            on_sent(len(futures))
    finally:
        await producer.stop()
    return sent


def send_with_progress(events: list[dict[str, Any]], broker_url: str, label: str, partitions: int) -> int:
    """``replay`` from synchronous code, with a progress bar on stdout."""
    import asyncio
    import sys

    from tqdm import tqdm

    with tqdm(total=len(events), unit="ev", desc=f"replay {label}", file=sys.stdout) as bar:
        return asyncio.run(replay(events, broker_url, bar.update, partitions))
